//! `shaders/lstm_forward_step.wgsl`: one forward timestep of one layer for the whole batch; CPU
//! twin [`crate::cpu::lstm_forward_step`]. Uniform: [`super::lstm_step`].
//!
//! Two variants of the kernel, chosen by the batch size ([`variant`]):
//!
//! * [`DESC`] (entry `main`) stages `h_{t-1}` and `W_hh` in workgroup memory, a tile of
//!   [`lstm_step::TU`] units by [`lstm_step::TB`] rows at a time (the tiling it shares with the
//!   backward step);
//! * [`SMALL_BATCH`] (entry `main_small_batch`), for at most [`SMALL_BATCH_MAX`] rows, reads them
//!   straight from storage: with so few rows, a staged weight would serve almost nobody and most
//!   of a 16-row tile would be padding. It also computes the step's input projection
//!   `x_t · W_ihᵀ + b_ih` from the layer's input, so its forward pass has no projection GEMM
//!   ([`projects_input`]).
//!
//! Bindings: `xproj`, `params` (read), `state0` (read), `y`, `state_n`, `c_seq`, `gates`,
//! `input` (read; the layer's input `[B, T, I]`, read by the small-batch variant only).

use super::lstm_step::{self, PRELUDE, step_kernel};
use super::{Access, Kernel, KernelDesc, shader_file, u32_of, within_limit};
use crate::error::Result;

pub(crate) const DESC: KernelDesc = step_kernel(
    "lstm_forward_step",
    &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_forward_step.wgsl"),
    ],
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Read,
    ],
);

/// Batches of at most this many rows use [`SMALL_BATCH`].
pub(crate) const SMALL_BATCH_MAX: usize = 4;
/// Hidden units per workgroup of [`SMALL_BATCH`].
const SMALL_TU: u32 = 64;
/// Batch rows per workgroup of [`SMALL_BATCH`] (a workgroup per row).
const SMALL_TB: u32 = 1;
/// Invocations of [`SMALL_BATCH`]: each owns `SMALL_TU / 32` units of one row.
const SMALL_WORKGROUP: [u32; 3] = [32, 1, 1];
const _: () = assert!(
    SMALL_TU.is_multiple_of(SMALL_WORKGROUP[0]) && SMALL_TB.is_multiple_of(SMALL_WORKGROUP[1])
);

/// The variant for a few rows (entry `main_small_batch`; `KC` only sizes the staged tiles of
/// `main`).
pub(crate) const SMALL_BATCH: KernelDesc = KernelDesc {
    name: "lstm_forward_step_small_batch",
    entry: "main_small_batch",
    workgroup_size: SMALL_WORKGROUP,
    constants: &[("TU", SMALL_TU), ("TB", SMALL_TB), ("KC", lstm_step::KC)],
    ..DESC
};

/// The kernel for a batch of `batch` rows on a device with `limits`, and its tile: `(kernel,
/// units, rows)` per workgroup. The small-batch variant needs a workgroup per row in one grid
/// dimension.
pub(crate) fn variant(batch: usize, limits: &wgpu::Limits) -> (Kernel, u32, u32) {
    let fits = batch <= limits.max_compute_workgroups_per_dimension as usize;
    if batch <= SMALL_BATCH_MAX && fits {
        (Kernel::LstmForwardStepSmallBatch, SMALL_TU, SMALL_TB)
    } else {
        (Kernel::LstmForwardStep, lstm_step::TU, lstm_step::TB)
    }
}

/// Whether the step `kernel` computes its own input projection (the small-batch variant), so the
/// forward pass needs no projection GEMM and no `xproj` buffer.
pub(crate) fn projects_input(kernel: Kernel) -> bool {
    kernel == Kernel::LstmForwardStepSmallBatch
}

/// Workgroups for a step of [`variant`]`(batch, limits)` over `hidden` units, or
/// [`Error::DeviceLimit`] when either exceeds what one grid dimension of the device holds.
///
/// [`Error::DeviceLimit`]: crate::Error::DeviceLimit
pub(crate) fn grid(batch: usize, hidden: usize, limits: &wgpu::Limits) -> Result<[u32; 3]> {
    let (_, units, rows) = variant(batch, limits);
    Ok([
        within_limit(u32_of("hidden units", hidden)?.div_ceil(units), limits)?,
        within_limit(u32_of("batch", batch)?.div_ceil(rows), limits)?,
        1,
    ])
}
