//! LSTM networks trained and run on any GPU through wgpu.
pub mod cpu;
pub mod data;
pub mod error;
pub mod gpu;
pub mod lstm;
pub mod real;
pub mod rng;
pub mod shape;
pub(crate) mod tensor_file;
pub mod train;
pub mod weights;

pub use error::{Error, GpuErrorKind, Result};
pub use lstm::{GradRequest, LstmGrads, LstmOutput, LstmState, Tape, Upstream};
pub use ndarray;
pub use real::Real;
pub use weights::{LayerWeights, LstmConfig, LstmWeights};
pub use wgpu;
