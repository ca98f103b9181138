//! `shaders/lstm_backward_step.wgsl`: one backward timestep of one layer for the whole batch;
//! CPU twin [`crate::cpu::lstm_backward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `params`, `gates`, `c_seq`, `state0`, `dy` (read), `d_state`, `d_gates`.

use super::lstm_step::{CONSTANTS, PRELUDE, StepParams, WORKGROUP};
use super::{Access, KernelDesc, shader_file};

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "lstm_backward_step",
    files: &[
        PRELUDE[0],
        PRELUDE[1],
        shader_file!("lstm_backward_step.wgsl"),
    ],
    entry: "main",
    workgroup_size: WORKGROUP,
    constants: CONSTANTS,
    uniform_size: std::mem::size_of::<StepParams>(),
    dynamic_offset: true,
    storage: &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};
