//! Host side of `shaders/grad_norm.wgsl`.

use crate::gpu::context::Gpu;
use crate::gpu::kernels::{Dispatch, GradNormParams, Kernel, bind};
use crate::gpu::stats::Counters;

/// Workgroups of the first pass (each sums one chunk of the gradients).
pub(crate) const GROUPS: usize = 256;

/// Prepares both passes over the `len` gradients in `grads`; `partials` holds [`GROUPS`] floats,
/// `clip` receives `(norm, scale)`.
pub(crate) fn prepare(
    gpu: &Gpu,
    counters: &Counters,
    grads: &wgpu::Buffer,
    len: usize,
    max_norm: f32,
    partials: &wgpu::Buffer,
    clip: &wgpu::Buffer,
) -> [Dispatch; 2] {
    let params = GradNormParams {
        len: len as u32,
        chunk: len.div_ceil(GROUPS) as u32,
        groups: GROUPS as u32,
        max_norm,
    };
    let uniform = gpu.uniform("grad_norm", bytemuck::bytes_of(&params), counters);
    [
        (Kernel::GradNormPartial, GROUPS as u32),
        (Kernel::GradNormFinish, 1),
    ]
    .map(|(kernel, groups)| Dispatch {
        kernel,
        bind_group: bind(
            gpu.device(),
            gpu.kernels(),
            kernel,
            uniform.as_entire_binding(),
            &[grads, partials, clip],
        ),
        workgroups: [groups, 1, 1],
        _uniform: Some(uniform.clone()),
    })
}
