//! `shaders/sgd.wgsl`: one step of gradient descent with optional momentum over a whole arena;
//! CPU twin [`crate::cpu::sgd`].

use bytemuck::{Pod, Zeroable};

use super::arena_update::{self, ArenaUpdate};
use super::{Access, Call, Kernel, KernelDesc, shader_file, u32_of};
use crate::error::Result;

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "sgd",
    files: &[arena_update::PRELUDE, shader_file!("sgd.wgsl")],
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
        [p, g, c, Access::ReadWrite]
    },
};
/// `struct Params` of `sgd.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub len: u32,
    pub lr: f32,
    pub momentum: f32,
    pub pad: u32,
}

/// The uniform for a step at learning rate `lr` over `len` floats; a learning-rate schedule
/// rewrites it before every step.
pub(crate) fn params(len: usize, lr: f32, momentum: f32) -> Result<Params> {
    Ok(Params {
        len: u32_of("arena", len)?,
        lr,
        momentum,
        pad: 0,
    })
}

/// Updates the arena's parameters from its gradients (scaled by `clip[1]`) with the momentum
/// buffer `buf` of the same length.
pub(crate) struct Sgd<'a> {
    pub arena: ArenaUpdate<'a>,
    pub buf: &'a wgpu::Buffer,
    pub lr: f32,
    pub momentum: f32,
}

impl Call for Sgd<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        Kernel::Sgd
    }

    fn params(&self) -> Result<Params> {
        params(self.arena.len, self.lr, self.momentum)
    }

    /// About 4 operations per parameter; parameter, gradient and momentum read, parameter and
    /// momentum written.
    fn work(&self) -> super::Work {
        let n = self.arena.len;
        super::Work::new(4 * n, 5 * n)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        self.arena.buffers(&[self.buf])
    }

    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        self.arena.grid(limits)
    }
}
