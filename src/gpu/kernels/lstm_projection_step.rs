//! `shaders/lstm_projection_step.wgsl`: the projection `h = r · W_hrᵀ` of one forward timestep of
//! a projected layer, for the whole batch and every direction; CPU twin
//! [`crate::cpu::lstm_projection_step`]. Uniform: [`super::lstm_step`].
//!
//! Bindings: `params` (read, as f32), `state0` (read; the lengths), `saved` (read; `r`), `y`,
//! `state_n`.

use super::lstm_step::{self, PRELUDE, step_kernel};
use super::{Access, KernelDesc, Work, shader_file};
use crate::error::Result;

/// Outputs per workgroup, batch rows per workgroup, invocations (one row of them, each owning
/// `TU / WG_X` outputs of every row).
const TU: u32 = 64;
const TB: u32 = 4;
const WG: [u32; 3] = [16, 1, 1];
const _: () = assert!(TU.is_multiple_of(WG[0]));

pub(crate) const DESC: KernelDesc = KernelDesc {
    workgroup_size: WG,
    constants: &[("TU", TU), ("TB", TB)],
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
    lstm_step::grid((batch, out, dirs), (TU, TB), limits)
}

/// `r · W_hrᵀ` for `batch` rows of `hidden` into `out` features in `dirs` directions; `W_hr`
/// and `r` read once, `h` written.
pub(crate) fn work(batch: usize, hidden: usize, out: usize, dirs: usize) -> Work {
    let (b, h, o, d) = (batch, hidden, out, dirs);
    Work::new(d * 2 * b * h * o, d * (o * h + b * h + b * o))
}
