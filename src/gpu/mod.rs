//! The GPU path (wgpu, WGSL compute shaders in `shaders/`).
//!
//! Each shader has a CPU twin of the same name in [`crate::cpu`]; the tests hold them to the same
//! results.

pub(crate) mod column_sum;
pub mod context;
pub(crate) mod cross_entropy;
pub(crate) mod grad_norm;
pub(crate) mod kernels;
pub(crate) mod layout;
pub mod lstm;
pub(crate) mod lstm_workspace;
pub(crate) mod matmul;
pub(crate) mod optimizer;
pub(crate) mod readback;
pub mod stats;

pub use context::Gpu;
pub use kernels::shader_sources;
pub use lstm::GpuLstm;
pub use stats::GpuStats;
