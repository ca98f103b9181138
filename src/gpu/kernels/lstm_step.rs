//! What the step kernels share (`shaders/lstm_step.wgsl`): the per-step uniform and the tiling
//! of the staged variants (the direct variants have their own, in their modules). CPU twins:
//! [`crate::cpu::lstm_forward_step`], [`crate::cpu::lstm_backward_step`],
//! [`crate::cpu::lstm_projection_step`], [`crate::cpu::lstm_backward_hidden_step`].
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

/// The tile of the kernels that finish a step's rows with one more product (the projection and
/// the gradient on `h` of a projected layer): `ROW_TILE.0` outputs by `ROW_TILE.1` rows per
/// workgroup of one row of [`ROW_TILE_WORKGROUP`] invocations, each owning `64 / 16` outputs of
/// every row, so the workgroup's invocations share their rows.
pub(crate) const ROW_TILE: (u32, u32) = (64, 4);
/// Invocations per workgroup of [`ROW_TILE`].
pub(crate) const ROW_TILE_WORKGROUP: [u32; 3] = [16, 1, 1];
/// The tile constants of [`ROW_TILE`] kernels.
pub(crate) const ROW_TILE_CONSTANTS: &[(&str, u32)] = &[("TU", ROW_TILE.0), ("TB", ROW_TILE.1)];
const _: () = assert!(ROW_TILE.0.is_multiple_of(ROW_TILE_WORKGROUP[0]));

/// Workgroups of a [`ROW_TILE`] kernel for `batch` rows of `width` outputs in `dirs`
/// directions.
pub(crate) fn row_tile_grid(
    (batch, width, dirs): (usize, usize, usize),
    limits: &wgpu::Limits,
) -> Result<[u32; 3]> {
    grid((batch, width, dirs), ROW_TILE, limits)
}

/// The files in front of each step kernel: the NaN tests, the nonlinearities and this shared part.
pub(crate) const PRELUDE: [ShaderFile; 3] = [
    shader_file!("non_finite.wgsl"),
    shader_file!("activations.wgsl"),
    shader_file!("lstm_step.wgsl"),
];

/// The descriptor of a step kernel: its own file after the shared prelude, its storage bindings
/// (the tiles are those of the staged steps; the direct variants set their own).
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
        written_textures: 0,
        subgroups: false,
        storage,
    }
}

/// `struct Step` of `lstm_step.wgsl`: one per layer and step (and one per layer for the
/// backward pass's `dh0` dispatch). Offsets in elements; see the shader for the layouts.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub(crate) struct StepParams {
    pub batch: u32,
    pub seq: u32,
    /// Hidden units `H` (the width of `c` and of the gates).
    pub hidden: u32,
    /// Features of `h`, `O`: the projection's size, or `H`.
    pub out: u32,
    /// The processing step `s`.
    pub step: u32,
    /// Directions `D`, one per workgroup layer in z.
    pub dirs: u32,
    /// Nonzero: keep `c`, the gates and `h_prev` for backward.
    pub save: u32,
    /// The layer's input size `I` (read by the forward step's direct variants only, as are
    /// `wi_off` and `bi_off`).
    pub input: u32,
    /// Offset of this layer's `h` `[D, B, O]` in a `[h | c]` state buffer.
    pub h_off: u32,
    /// Offset of this layer's `c` `[D, B, H]` in a `[h | c]` state buffer.
    pub c_off: u32,
    /// Offset of the lengths `[B]` (u32 bits) in the `h0/c0` buffer.
    pub len_off: u32,
    /// Nonzero: the backward pass's extra dispatch that writes `dh0`.
    pub dh0: u32,
    /// vec4 offset of direction 0's `W_hh` (gate-interleaved) in the parameter arena.
    pub w_off: u32,
    /// vec4 offset of direction 0's `b_hh`.
    pub b_off: u32,
    /// vec4 offset of direction 0's `W_ih` (gate-interleaved).
    pub wi_off: u32,
    /// vec4 offset of direction 0's `b_ih`.
    pub bi_off: u32,
    /// f32 offset of direction 0's `W_hr` `[O, H]` (projected layers).
    pub wr_off: u32,
    /// vec4s from direction 0's parameters to direction 1's.
    pub dir_params: u32,
    pub pad: [u32; 2],
}

/// Workgroups for a step over `batch` rows of `width` outputs (hidden units, or the
/// projection's features) in tiles of `units x rows`, one layer of them per direction, or
/// [`Error::DeviceLimit`] when either exceeds what one grid dimension of the device holds.
///
/// [`Error::DeviceLimit`]: crate::Error::DeviceLimit
pub(crate) fn grid(
    (batch, width, dirs): (usize, usize, usize),
    (units, rows): (u32, u32),
    limits: &wgpu::Limits,
) -> Result<[u32; 3]> {
    Ok([
        within_limit(u32_of("hidden units", width)?.div_ceil(units), limits)?,
        within_limit(u32_of("batch", batch)?.div_ceil(rows), limits)?,
        u32_of("directions", dirs)?,
    ])
}
