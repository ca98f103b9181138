//! What the optimizer kernels share (`shaders/arena_update.wgsl`): one invocation per element of
//! the parameter arena, the first three storage bindings (parameters, gradients, clipping
//! result), and the grid.

use super::{Access, ShaderFile, grid_1d, shader_file};
use crate::error::Result;

/// Invocations per workgroup of both optimizer kernels.
pub(crate) const WORKGROUP: [u32; 3] = [256, 1, 1];

/// The prelude in front of each optimizer kernel.
pub(crate) const PRELUDE: ShaderFile = shader_file!("arena_update.wgsl");

/// Bindings 1-3: parameters (updated), gradients, `[norm, scale]`.
pub(crate) const STORAGE: [Access; 3] = [Access::ReadWrite, Access::Read, Access::Read];

/// The buffers every optimizer update reads or writes, each holding `len` floats (`clip`: 2).
#[derive(Clone, Copy)]
pub(crate) struct ArenaUpdate<'a> {
    pub params: &'a wgpu::Buffer,
    pub grads: &'a wgpu::Buffer,
    pub clip: &'a wgpu::Buffer,
    pub len: usize,
}

impl<'a> ArenaUpdate<'a> {
    /// The arena bindings followed by an optimizer's moment buffers.
    pub(crate) fn buffers(&self, moments: &[&'a wgpu::Buffer]) -> Vec<&'a wgpu::Buffer> {
        let mut out = vec![self.params, self.grads, self.clip];
        out.extend_from_slice(moments);
        out
    }

    /// One invocation per element.
    pub(crate) fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        grid_1d(self.len, WORKGROUP[0], limits)
    }
}
