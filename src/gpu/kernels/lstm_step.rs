//! What the two step kernels share (`shaders/lstm_step.wgsl`): the per-step uniform and the
//! tiling of their staged variants (the forward step's direct variants have their own, in
//! [`super::lstm_forward_step`]). CPU twins: [`crate::cpu::lstm_forward_step`], [`crate::cpu::lstm_backward_step`].
//!
//! One uniform entry per (layer, step) lives in one buffer and is selected with a dynamic offset,
//! so nothing is written between steps.

use bytemuck::{Pod, Zeroable};

use super::{Access, KernelDesc, ShaderFile, shader_file, u32_of, within_limit};
use crate::error::Result;

/// Hidden units per workgroup (one per invocation in x).
pub(crate) const TU: u32 = 16;
/// Batch rows per workgroup.
pub(crate) const TB: u32 = 16;
/// Width of one staged chunk of the reduction over hidden units.
pub(crate) const KC: u32 = 16;
/// Invocations per workgroup: `TU` units by 4, each of those owning `TB / 4` batch rows.
pub(crate) const WORKGROUP: [u32; 3] = [TU, 4, 1];
/// The tile constants both step shaders read.
pub(crate) const CONSTANTS: &[(&str, u32)] = &[("TU", TU), ("TB", TB), ("KC", KC)];

// The shaders split the rows and both staged tiles evenly over the invocations.
const INVOCATIONS: u32 = WORKGROUP[0] * WORKGROUP[1];
const _: () = assert!(TB.is_multiple_of(WORKGROUP[1]));
const _: () =
    assert!((TB * KC).is_multiple_of(INVOCATIONS) && (TU * KC).is_multiple_of(INVOCATIONS));

/// The files in front of each step kernel: the NaN tests, the nonlinearities and this shared part.
pub(crate) const PRELUDE: [ShaderFile; 3] = [
    shader_file!("non_finite.wgsl"),
    shader_file!("activations.wgsl"),
    shader_file!("lstm_step.wgsl"),
];

/// The descriptor of a step kernel: its own file after the shared prelude, its storage bindings.
pub(crate) const fn step_kernel(
    name: &'static str,
    files: &'static [ShaderFile; 4],
    storage: &'static [Access],
) -> KernelDesc {
    KernelDesc {
        name,
        files,
        entry: "main",
        workgroup_size: WORKGROUP,
        constants: CONSTANTS,
        uniform_size: std::mem::size_of::<StepParams>(),
        dynamic_offset: true,
        textures: 0,
        storage,
    }
}

/// `struct Step` of `lstm_step.wgsl`: one per layer and step.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct StepParams {
    pub batch: u32,
    pub seq: u32,
    pub hidden: u32,
    pub t: u32,
    /// Element offset of this layer's `h` in a `[2, L, B, H]` state buffer.
    pub h_off: u32,
    /// Element offset of this layer's `c` in a `[2, L, B, H]` state buffer.
    pub c_off: u32,
    /// Nonzero: keep `c_t` and the gates for backward.
    pub save: u32,
    /// vec4 offset of `W_hh` (gate-interleaved) in the parameter arena.
    pub w_off: u32,
    /// vec4 offset of `b_hh` in the parameter arena.
    pub b_off: u32,
    /// The layer's input size `I` (read by the forward step's direct variants only, as are
    /// the next two).
    pub input: u32,
    /// vec4 offset of `W_ih` (gate-interleaved) in the parameter arena.
    pub wi_off: u32,
    /// vec4 offset of `b_ih` in the parameter arena.
    pub bi_off: u32,
}

/// Workgroups for a step over `batch` rows of `hidden` units in tiles of `units x rows`, or
/// [`Error::DeviceLimit`] when either exceeds what one grid dimension of the device holds.
///
/// [`Error::DeviceLimit`]: crate::Error::DeviceLimit
pub(crate) fn grid(
    batch: usize,
    hidden: usize,
    (units, rows): (u32, u32),
    limits: &wgpu::Limits,
) -> Result<[u32; 3]> {
    Ok([
        within_limit(u32_of("hidden units", hidden)?.div_ceil(units), limits)?,
        within_limit(u32_of("batch", batch)?.div_ceil(rows), limits)?,
        1,
    ])
}
