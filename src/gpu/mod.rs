//! The GPU path (wgpu, WGSL compute shaders in `shaders/`).
//!
//! Each shader has a CPU twin of the same name in [`crate::cpu`]; the tests hold them to the same
//! results. Layers, bottom up:
//!
//! * [`kernels`]: one descriptor per kernel (shader files, bindings, uniform, tile constants,
//!   grid), checked against the WGSL by naga reflection in the tests; [`tuning`]: which variant
//!   serves a call, by the kind of adapter.
//! * `context` ([`Gpu`]), `dispatch`, `recording`, `readback`, [`stats`]: the device, prepared
//!   dispatches, the compute pass they are recorded into (which a [`profile`] may split),
//!   single-mapping readback, counters.
//! * `layout` and `plan`: parameter arenas, and per batch shape the buffers and dispatches of a
//!   whole pass.
//! * [`GpuLstm`] and [`ops`] (single kernels run on their own) on top; [`peak`] measures what
//!   the adapter does at best, to read them against.

pub mod caller_buffer;
pub mod context;
pub(crate) mod dispatch;
pub(crate) mod error_scope;
pub mod kernels;
pub(crate) mod layout;
pub mod lstm;
pub(crate) mod mapping;
pub mod ops;
pub mod peak;
pub(crate) mod plan;
pub mod profile;
pub(crate) mod readback;
pub(crate) mod recording;
pub(crate) mod region;
pub mod stats;
pub mod stream;
pub mod tuning;
pub(crate) mod weight_texels;

pub use caller_buffer::GpuTensor;
pub use context::Gpu;
pub use kernels::shader_sources;
pub use lstm::{ForwardTargets, GpuLstm};
pub use peak::Peak;
pub use profile::{Profile, ProfileTiming};
pub use stats::GpuStats;
pub use stream::{GpuStream, StreamTargets};
pub use tuning::Tuning;
