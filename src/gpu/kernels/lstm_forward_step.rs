//! `shaders/lstm_forward_step.wgsl`: one forward timestep of one layer for the whole batch; CPU
//! twin [`crate::cpu::lstm_forward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `xproj`, `params` (read), `state0` (read), `y`, `state_n`, `c_seq`, `gates`.

use super::lstm_step::{PRELUDE, step_kernel};
use super::{Access, KernelDesc, shader_file};

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
    ],
);
