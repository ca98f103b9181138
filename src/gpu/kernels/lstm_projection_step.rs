//! `shaders/lstm_projection_step.wgsl`: the projection `h = r · W_hrᵀ` of one forward timestep of
//! a projected layer, for the whole batch and every direction; CPU twin
//! [`crate::cpu::lstm_projection_step`]. Uniform: [`super::lstm_step`].
//!
//! Bindings: `params` (read, as f32), `state0` (read; the lengths), `saved` (read; `r`), `y`,
//! `state_n`.

use super::lstm_step::{self, PRELUDE, step_kernel};
use super::{Access, KernelDesc, Work, shader_file};
use crate::error::Result;

/// Tiled as [`lstm_step::ROW_TILE`].
pub(crate) const DESC: KernelDesc = KernelDesc {
    workgroup_size: lstm_step::ROW_TILE_WORKGROUP,
    constants: lstm_step::ROW_TILE_CONSTANTS,
    ..step_kernel(
        "lstm_projection_step",
        &[
            PRELUDE[0],
            PRELUDE[1],
            PRELUDE[2],
            shader_file!("lstm_projection_step.wgsl"),
        ],
        &[
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

/// `r · W_hrᵀ` for `batch` rows of `hidden` into `out` features in `dirs` directions; `W_hr`
/// and `r` read once, `h` written.
pub(crate) fn work(batch: usize, hidden: usize, out: usize, dirs: usize) -> Work {
    let (b, h, o, d) = (batch, hidden, out, dirs);
    Work::new(d * 2 * b * h * o, d * (o * h + b * h + b * o))
}
