//! `shaders/adam.wgsl`: one Adam (AdamW with a weight decay) step over a whole arena; CPU twin
//! [`crate::cpu::adam`]. The uniform carries the step's learning rate, bias corrections and
//! decay factor, so it is rewritten before every step ([`params`]).

use bytemuck::{Pod, Zeroable};

use super::arena_update::{self, ArenaUpdate};
use super::{Access, Call, Kernel, KernelDesc, shader_file, u32_of};
use crate::error::Result;
use crate::optim::AdamConfig;

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "adam",
    files: &[arena_update::PRELUDE, shader_file!("adam.wgsl")],
    entry: "main",
    workgroup_size: arena_update::WORKGROUP,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    textures: 0,
    written_textures: 0,
    subgroups: false,
    storage: &{
        let [p, g, c] = arena_update::STORAGE;
        [p, g, c, Access::ReadWrite, Access::ReadWrite]
    },
};
/// `struct Params` of `adam.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub len: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub bias_correction1: f32,
    pub bias_correction2_sqrt: f32,
    /// `1 − lr·λ` ([`AdamConfig::decay_factor`]).
    pub decay: f32,
}

/// The uniform for optimizer step `step` (1-based) over `len` floats.
pub(crate) fn params(len: usize, config: &AdamConfig, step: u64) -> Result<Params> {
    let (bias_correction1, bias_correction2_sqrt) = config.bias_corrections(step);
    Ok(Params {
        len: u32_of("arena", len)?,
        lr: config.lr,
        beta1: config.beta1,
        beta2: config.beta2,
        eps: config.eps,
        bias_correction1,
        bias_correction2_sqrt,
        decay: config.decay_factor(),
    })
}

/// Updates the arena's parameters from its gradients (scaled by `clip[1]`) with moments `m`,
/// `v` of the same length.
pub(crate) struct Adam<'a> {
    pub arena: ArenaUpdate<'a>,
    pub m: &'a wgpu::Buffer,
    pub v: &'a wgpu::Buffer,
    pub config: AdamConfig,
    pub step: u64,
}

impl Call for Adam<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        Kernel::Adam
    }

    fn params(&self) -> Result<Params> {
        params(self.arena.len, &self.config, self.step)
    }

    /// About 16 operations per parameter (moments, square root, update); parameter, gradient
    /// and both moments read, parameter and moments written.
    fn work(&self) -> super::Work {
        let n = self.arena.len;
        super::Work::new(16 * n, 7 * n)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        self.arena.buffers(&[self.m, self.v])
    }

    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        self.arena.grid(limits)
    }
}
