//! `shaders/lstm_forward_step.wgsl`: one forward timestep of one layer for the whole batch; CPU
//! twin [`crate::cpu::lstm_forward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `xproj`, `params` (read), `state0` (read), `y`, `state_n`, `c_seq`, `gates`.

use super::lstm_step::{CONSTANTS, PRELUDE, StepParams, WORKGROUP};
use super::{Access, KernelDesc, shader_file};

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "lstm_forward_step",
    files: &[
        PRELUDE[0],
        PRELUDE[1],
        shader_file!("lstm_forward_step.wgsl"),
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
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};
