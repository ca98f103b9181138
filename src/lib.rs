//! LSTM networks trained and run on any GPU through wgpu (Vulkan, Metal, DX12), with an ndarray
//! CPU reference that computes the same forward and backward passes.
//!
//! # The math
//!
//! Exactly PyTorch's `nn.LSTM` (`batch_first=True`), gate order i, f, g, o. For each layer and
//! step `t`:
//!
//! ```text
//! a_t = x_t · W_ihᵀ + b_ih + h_{t-1} · W_hhᵀ + b_hh          [B, 4H]
//! i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//!
//! Inputs `x` are `[B, T, I]`, outputs `y` `[B, T, H]`, states `h0`, `c0`, `h_n`, `c_n`
//! `[L, B, H]`; parameters are stored as PyTorch stores them ([`weights`]), so models move
//! between the two in safetensors files. Backpropagation through time runs the steps in reverse
//! ([`cpu::lstm_backward_step`]) and takes the weight gradients as whole-sequence GEMMs.
//!
//! The rest of `nn.LSTM` too ([`LstmConfig`], [`cpu::general_lstm`]): `bidirectional` layers
//! (a reverse direction reading each sequence from its end; `y` `[B, T, 2·H_out]`, states
//! `[2L, B, ·]`), `proj_size` (`h_t = (o ⊙ tanh c_t) · W_hrᵀ`, `H_out` features), `bias=False`,
//! `dropout` between layers in training ([`Dropout`]), and batches of sequences of different
//! lengths ([`Lstm::forward_lengths`]: PyTorch's packed sequences).
//!
//! # Layout of the crate
//!
//! * [`cpu`]: the reference, one module per kernel; also a fast multi-threaded CPU path.
//! * [`gpu`]: the same kernels in WGSL (`shaders/`, each the twin of a [`cpu`] module), the
//!   context ([`gpu::Gpu`]) and [`gpu::GpuLstm`] (with async calls, and calls recorded into the
//!   caller's encoder on the caller's buffers).
//! * [`stream`]: streaming sessions ([`gpu::GpuStream`], [`cpu::stream::CpuStream`]) that keep
//!   the state on their device between pushes of a sequence's chunks.
//! * [`train`]: the reference classifier (LSTM + dense head + cross-entropy), SGD, Adam and
//!   AdamW, learning-rate schedules, gradient clipping, checkpoints, TensorBoard event files and
//!   the training loop, on either device.
//! * [`data`]: the IDX (MNIST, Fashion-MNIST) reader and the temporal-order task.
//! * [`convert`]: weights of ONNX `LSTM` nodes and Keras `LSTM` layers, to and from PyTorch's
//!   layout.
//! * Shared by all of them, at the bottom: [`Lstm`] and its inputs and outputs ([`lstm`]),
//!   [`weights`], the hyper-parameters ([`optim`]), the GEMM contract ([`gemm`]), the
//!   nonlinearities ([`activations`]), [`Error`].
//!
//! `ARCHITECTURE.md` in the repository shows how data flows between them and how to add a
//! kernel.
//!
//! # Example
//!
//! ```
//! use lstm_wgpu::ndarray::Array3;
//! use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmWeights, Upstream, cpu::lstm::CpuLstm};
//!
//! // An LSTM with 3 inputs and 8 hidden units, PyTorch's initialisation.
//! let weights = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 1)?, 42);
//! let mut lstm = CpuLstm::new(weights)?; // or gpu::GpuLstm::new(&gpu, &weights)?
//!
//! let x = Array3::<f32>::from_elem((2, 5, 3), 0.5); // [B, T, I]
//! let (out, tape) = lstm.forward_train(x.view(), None)?;
//! assert_eq!(out.y.shape(), &[2, 5, 8]); // [B, T, H]
//!
//! // Gradients of sum(h_n): dL/dh_n = 1.
//! let upstream = Upstream { dh_n: Some(Array3::ones((1, 2, 8))), ..Default::default() };
//! let grads = lstm.backward(&tape, &upstream, GradRequest::ALL)?;
//! assert_eq!(grads.x.unwrap().shape(), &[2, 5, 3]);
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```
//!
//! Both devices implement the [`Lstm`] trait: on a GPU the same calls run on [`gpu::GpuLstm`],
//! where a whole sequence is one submission and [`gpu::GpuLstm::stats`] shows what each call
//! dispatched, submitted and transferred.

pub mod activations;
pub mod convert;
pub mod cpu;
pub mod data;
pub mod error;
pub mod gemm;
pub mod gpu;
pub mod host_memory;
pub mod lstm;
pub mod optim;
pub mod real;
pub mod rng;
pub mod shape;
pub mod stream;
pub(crate) mod tensor_file;
pub mod train;
pub mod weights;

pub use error::{Error, GpuErrorKind, Result};
pub use lstm::{Dropout, GradRequest, Lstm, LstmGrads, LstmOutput, LstmState, Tape, Upstream};
pub use real::Real;
pub use stream::{LstmStream, StreamOutput, StreamRequest};
pub use weights::{LayerWeights, LstmConfig, LstmWeights};

pub use ndarray;
pub use wgpu;

/// The README's code, compiled as a doc test so it cannot go stale.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
