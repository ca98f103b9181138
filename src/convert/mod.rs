//! Parameters of other frameworks' LSTMs, converted to and from PyTorch's layout
//! ([`LstmWeights`](crate::LstmWeights), see [`crate::weights`]).
//!
//! * [`onnx`]: the tensors `W`, `R`, `B` of ONNX `LSTM` nodes, one node per layer.
//!
//! Each converter checks every shape against the others and names the tensor it rejects
//! ([`Error::Shape`](crate::Error::Shape)); what a layout cannot express (a projection in
//! ONNX, a lone reverse direction in PyTorch) is an [`Error::Config`](crate::Error::Config).
//! Converting changes no value: weights are copied or reordered.
//!
//! ```
//! use lstm_wgpu::convert::onnx;
//! use lstm_wgpu::{LstmConfig, LstmWeights};
//!
//! let weights = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 2)?, 0);
//! let nodes = onnx::from_pytorch(&weights)?; // one ONNX LSTM node per layer
//! assert_eq!(nodes[1].w.shape(), &[1, 32, 8]); // W [D, 4H, I_l]
//! assert_eq!(onnx::to_pytorch(&nodes)?, weights);
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```

pub mod onnx;
