//! `shaders/lstm_backward_step.wgsl`: one backward timestep of one layer for the whole batch;
//! CPU twin [`crate::cpu::lstm_backward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `params`, `gates`, `c_seq`, `state0`, `dy` (read), `d_state`, `d_gates`.

use super::lstm_step::{PRELUDE, step_kernel};
use super::{Access, KernelDesc, shader_file};

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
