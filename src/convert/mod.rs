//! Parameters of other frameworks' LSTMs, converted to and from PyTorch's layout
//! ([`LstmWeights`](crate::LstmWeights), see [`crate::weights`]).
//!
//! * [`onnx`]: the tensors `W`, `R`, `B` of ONNX `LSTM` nodes, one node per layer.
//! * [`keras`]: the `kernel`, `recurrent_kernel` and `bias` of Keras `LSTM` layers, and of
//!   `Bidirectional(LSTM(..))`.
//!
//! Each converter checks every shape against the others and names the tensor it rejects
//! ([`Error::Shape`](crate::Error::Shape)); what a layout cannot express (a projection in
//! ONNX or Keras, a lone reverse direction in PyTorch) is an
//! [`Error::Config`](crate::Error::Config). Converting changes no value: weights are copied,
//! transposed or reordered, and only a Keras bias, the sum of PyTorch's two, is computed.
//!
//! ```
//! use lstm_wgpu::convert::{keras, onnx};
//! use lstm_wgpu::{LstmConfig, LstmWeights};
//!
//! let weights = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 2)?, 0);
//! let nodes = onnx::from_pytorch(&weights)?; // one ONNX LSTM node per layer
//! assert_eq!(nodes[1].w.shape(), &[1, 32, 8]); // W [D, 4H, I_l]
//! assert_eq!(onnx::to_pytorch(&nodes)?, weights);
//!
//! let layers = keras::from_pytorch(&weights)?; // one Keras LSTM layer per layer
//! let from_keras = keras::to_pytorch(&layers)?;
//! assert_eq!(from_keras.layer(0, 0).weight_ih, weights.layer(0, 0).weight_ih);
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```

pub mod keras;
pub mod onnx;
