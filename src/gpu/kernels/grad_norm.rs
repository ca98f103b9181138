//! `shaders/grad_norm.wgsl`: the global gradient norm and clipping factor in two passes (entry
//! points `partial` and `finish`); CPU twin [`crate::cpu::grad_norm`].

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, ShaderFile, shader_file, u32_of};
use crate::error::Result;

/// Invocations per workgroup (a power of two, for the tree sum).
const WG: [u32; 3] = [256, 1, 1];
const _: () = assert!(WG[0].is_power_of_two());
/// Workgroups of the first pass at most, each summing one chunk of the gradients; `partials`
/// holds one float per workgroup.
pub(crate) const GROUPS: usize = 256;
/// Gradients per workgroup of the first pass, at least (while the workgroups number fewer than
/// [`GROUPS`]): a workgroup costs its tree sum's barriers whatever its chunk, and on a software
/// adapter 256 of them took 2.6 ms, a quarter of a training step of a model with 9k parameters.
const MIN_CHUNK: usize = 8192;

/// Workgroups of the first pass for `len` gradients: one per [`MIN_CHUNK`], from 1 to
/// [`GROUPS`].
fn groups(len: usize) -> usize {
    len.div_ceil(MIN_CHUNK).clamp(1, GROUPS)
}

const FILES: &[ShaderFile] = &[
    shader_file!("non_finite.wgsl"),
    shader_file!("workgroup_sum.wgsl"),
    shader_file!("grad_norm.wgsl"),
];
const STORAGE: &[Access] = &[Access::Read, Access::ReadWrite, Access::ReadWrite];

pub(crate) const PARTIAL: KernelDesc = KernelDesc {
    name: "grad_norm_partial",
    files: FILES,
    entry: "partial",
    workgroup_size: WG,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    textures: 0,
    written_textures: 0,
    subgroups: false,
    storage: STORAGE,
};

pub(crate) const FINISH: KernelDesc = KernelDesc {
    name: "grad_norm_finish",
    entry: "finish",
    ..PARTIAL
};

/// `struct Params` of `grad_norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub len: u32,
    pub chunk: u32,
    pub groups: u32,
    pub max_norm: f32,
}

/// One pass over the `len` gradients in `grads`: `partials` holds [`GROUPS`] floats, `clip`
/// receives `(norm, scale)`.
pub(crate) struct GradNorm<'a> {
    pub finish: bool,
    pub grads: &'a wgpu::Buffer,
    pub len: usize,
    pub max_norm: f32,
    pub partials: &'a wgpu::Buffer,
    pub clip: &'a wgpu::Buffer,
}

impl GradNorm<'_> {
    /// Both passes, in order.
    pub(crate) fn passes(self) -> [Self; 2] {
        [
            GradNorm {
                finish: false,
                ..self
            },
            GradNorm {
                finish: true,
                ..self
            },
        ]
    }
}

impl Call for GradNorm<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        match self.finish {
            false => Kernel::GradNormPartial,
            true => Kernel::GradNormFinish,
        }
    }

    fn params(&self) -> Result<Params> {
        Ok(Params {
            len: u32_of("gradients", self.len)?,
            chunk: u32_of("gradients", self.len.div_ceil(groups(self.len)))?,
            groups: u32_of("gradients", groups(self.len))?,
            max_norm: self.max_norm,
        })
    }

    /// The partial pass squares and adds every gradient; the finish adds the partial sums.
    fn work(&self) -> super::Work {
        let groups = groups(self.len);
        if self.finish {
            super::Work::new(2 * groups, groups + 2)
        } else {
            super::Work::new(2 * self.len, self.len + groups)
        }
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.grads, self.partials, self.clip]
    }

    /// [`groups`] workgroups for the partial sums, one to finish.
    fn grid(&self, _: &wgpu::Limits) -> Result<[u32; 3]> {
        let partial = u32_of("gradients", groups(self.len))?;
        Ok([if self.finish { 1 } else { partial }, 1, 1])
    }
}
