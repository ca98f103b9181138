//! `shaders/lstm_backward_step.wgsl`: one backward timestep of one layer for the whole batch;
//! CPU twin [`crate::cpu::lstm_backward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `params`, `gates`, `c_seq`, `state0`, `dy` (read), `d_state`, `d_gates`.

use super::lstm_step::{PRELUDE, step_kernel};
use super::{Access, KernelDesc, Work, shader_file};

pub(crate) const DESC: KernelDesc = step_kernel(
    "lstm_backward_step",
    &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_backward_step.wgsl"),
    ],
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
);

/// What one backward step does for `batch` rows and `hidden` units: `dgates_t · W_hh` (the
/// gradient into `h_{t-1}`), ~20 operations per unit for the gate derivatives; `W_hh`, the
/// saved gates, `c_t`, `c_{t-1}`, `dy_t` and the carried `dh`, `dc` read once, `dgates_t` and
/// the new `dh`, `dc` written.
pub(crate) fn work(batch: usize, hidden: usize) -> Work {
    let (b, h) = (batch, hidden);
    Work::new(
        2 * b * 4 * h * h + 20 * b * h,
        4 * h * h + 4 * b * h + 5 * b * h + 6 * b * h,
    )
}
