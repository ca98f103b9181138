//! `shaders/cross_entropy.wgsl`: softmax cross-entropy of a batch of logits, its gradient and the
//! batch metrics `(loss sum, correct, count)`; CPU twin [`crate::cpu::cross_entropy`].

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, shader_file, u32_of};
use crate::error::Result;

/// One workgroup of this many invocations walks every row (a power of two, for the tree sum).
const WG: [u32; 3] = [256, 1, 1];
const _: () = assert!(WG[0].is_power_of_two());

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "cross_entropy",
    files: &[
        shader_file!("non_finite.wgsl"),
        shader_file!("workgroup_sum.wgsl"),
        shader_file!("cross_entropy.wgsl"),
    ],
    entry: "main",
    workgroup_size: WG,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    textures: 0,
    written_textures: 0,
    subgroups: false,
    storage: &[
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
    ],
};

/// `struct Params` of `cross_entropy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub rows: u32,
    pub classes: u32,
    /// Nonzero: add to the metrics instead of overwriting them.
    pub accumulate: u32,
    pub pad: u32,
}

/// The loss over `rows x classes` logits `[B, C]` with labels `[B]` (u32; `>= C` marks padding):
/// writes `dlogits` `[B, C]` and `metrics` `[3]` (added to when `accumulate`).
pub(crate) struct CrossEntropy<'a> {
    pub logits: &'a wgpu::Buffer,
    pub labels: &'a wgpu::Buffer,
    pub dlogits: &'a wgpu::Buffer,
    pub metrics: &'a wgpu::Buffer,
    pub rows: usize,
    pub classes: usize,
    pub accumulate: bool,
}

impl Call for CrossEntropy<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        Kernel::CrossEntropy
    }

    fn params(&self) -> Result<Params> {
        Ok(Params {
            rows: u32_of("cross-entropy rows", self.rows)?,
            classes: u32_of("classes", self.classes)?,
            accumulate: self.accumulate as u32,
            pad: 0,
        })
    }

    /// Max, exp, sum and the gradient per logit (~5 operations); logits read, gradients written.
    fn work(&self) -> super::Work {
        let n = self.rows * self.classes;
        super::Work::new(5 * n, 2 * n + self.rows + 3)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.logits, self.labels, self.dlogits, self.metrics]
    }

    /// A single workgroup.
    fn grid(&self, _: &wgpu::Limits) -> Result<[u32; 3]> {
        Ok([1, 1, 1])
    }
}
