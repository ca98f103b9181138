//! `shaders/sgd.wgsl`: one step of gradient descent with optional momentum over a whole arena;
//! CPU twin [`crate::cpu::sgd`].

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, grid_1d, shader_file, u32_of};
use crate::error::Result;

const WG: [u32; 3] = [256, 1, 1];

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "sgd",
    files: &[shader_file!("sgd.wgsl")],
    entry: "main",
    workgroup_size: WG,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    storage: &[
        Access::ReadWrite,
        Access::Read,
        Access::ReadWrite,
        Access::Read,
    ],
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

/// The uniform for a step over `len` floats.
pub(crate) fn params(len: usize, lr: f32, momentum: f32) -> Result<Params> {
    Ok(Params {
        len: u32_of("arena", len)?,
        lr,
        momentum,
        pad: 0,
    })
}

/// Updates `params` from `grads` (scaled by `clip[1]`) with momentum buffer `buf`; every buffer
/// holds `len` floats (`clip`: `[norm, scale]`).
pub(crate) struct Sgd<'a> {
    pub params: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    pub buf: &'a wgpu::Buffer,
    pub clip: &'a wgpu::Buffer,
    pub len: usize,
    pub lr: f32,
    pub momentum: f32,
}

impl Call for Sgd<'_> {
    type Params = Params;

    fn kernel(&self) -> Kernel {
        Kernel::Sgd
    }

    fn params(&self) -> Result<Params> {
        params(self.len, self.lr, self.momentum)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.params, self.grads, self.buf, self.clip]
    }

    /// One invocation per element.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        grid_1d(self.len, WG[0], limits)
    }
}
