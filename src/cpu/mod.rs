//! The CPU path (ndarray): the specification the GPU kernels are checked against.
//!
//! Each public module but [`lstm`] and [`isa`] is the twin of the shader of the same name in
//! `shaders/`; [`lstm`] runs the whole network from them, as [`crate::gpu::GpuLstm`] does from
//! the kernels, with its matrix products in `blocked_gemm` (packed operands, SIMD micro-kernels
//! for the instruction set [`isa`] chooses).

/// The activations are used by [`crate::real::Real`] too, so they live at the crate's bottom
/// level ([`crate::activations`]); re-exported here beside the other shader twins.
pub use crate::activations;
pub mod adam;
mod blocked_gemm;
mod cache;
pub mod column_sum;
mod contiguous;
pub mod cross_entropy;
pub mod dropout;
pub mod general_lstm;
pub mod grad_norm;
pub mod isa;
pub mod lstm;
pub mod lstm_backward_hidden_step;
pub mod lstm_backward_step;
pub mod lstm_forward_step;
pub mod lstm_projection_step;
pub mod matmul;
mod microkernel;
pub(crate) mod parallel;
pub mod peak;
pub mod sgd;
mod simd;
mod steps_by_units;
pub mod stream;
