//! `shaders/lstm_backward_hidden_step.wgsl`: the gradient on `h` of one backward timestep of a
//! projected layer, `dh_t = dy_t + dgates_next · W_hh` (or `dh_n`), and the `dh0` dispatch after
//! step 0; CPU twin [`crate::cpu::lstm_backward_hidden_step`]. Uniform: [`super::lstm_step`].
//!
//! Bindings: `params`, `state0` (the lengths), `dy`, `d_gates` (read), `d_state`, `dh_seq`.

use super::lstm_step::{self, PRELUDE, step_kernel};
use super::{Access, KernelDesc, Work, shader_file};
use crate::error::Result;

/// Tiled as [`lstm_step::ROW_TILE`].
pub(crate) const DESC: KernelDesc = KernelDesc {
    workgroup_size: lstm_step::ROW_TILE_WORKGROUP,
    constants: lstm_step::ROW_TILE_CONSTANTS,
    ..step_kernel(
        "lstm_backward_hidden_step",
        &[
            PRELUDE[0],
            PRELUDE[1],
            PRELUDE[2],
            shader_file!("lstm_backward_hidden_step.wgsl"),
        ],
        &[
            Access::Read,
            Access::Read,
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
        ],
    )
};

/// Workgroups for `batch` rows of `out` features in `dirs` directions.
pub(crate) fn grid(
    (batch, out, dirs): (usize, usize, usize),
    limits: &wgpu::Limits,
) -> Result<[u32; 3]> {
    lstm_step::row_tile_grid((batch, out, dirs), limits)
}

/// `dgates_next · W_hh` for `batch` rows of `hidden` units into `out` features in `dirs`
/// directions; `W_hh`, `dgates_next` and `dy_t` read once, `dh_t` written.
pub(crate) fn work(batch: usize, hidden: usize, out: usize, dirs: usize) -> Work {
    let (b, h, o, d) = (batch, hidden, out, dirs);
    Work::new(d * 8 * b * h * o, d * (4 * o * h + 4 * b * h + 2 * b * o))
}
