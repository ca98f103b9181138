//! Host side of `shaders/cross_entropy.wgsl`.

use crate::gpu::context::Gpu;
use crate::gpu::kernels::{CrossEntropyParams, Dispatch, Kernel, bind};
use crate::gpu::stats::Counters;

/// Prepares the loss over `rows` x `classes` logits; `accumulate` adds to `metrics` instead of
/// overwriting them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    gpu: &Gpu,
    counters: &Counters,
    logits: &wgpu::Buffer,
    labels: &wgpu::Buffer,
    dlogits: &wgpu::Buffer,
    metrics: &wgpu::Buffer,
    rows: usize,
    classes: usize,
    accumulate: bool,
) -> Dispatch {
    let params = CrossEntropyParams {
        rows: rows as u32,
        classes: classes as u32,
        logits_off: 0,
        accumulate: accumulate as u32,
    };
    let uniform = gpu.uniform("cross_entropy", bytemuck::bytes_of(&params), counters);
    let bind_group = bind(
        gpu.device(),
        gpu.kernels(),
        Kernel::CrossEntropy,
        uniform.as_entire_binding(),
        &[logits, labels, dlogits, metrics],
    );
    Dispatch {
        kernel: Kernel::CrossEntropy,
        bind_group,
        workgroups: [1, 1, 1],
        _uniform: Some(uniform),
    }
}
