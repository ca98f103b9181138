//! Host side of `shaders/column_sum.wgsl`.

use crate::error::Result;
use crate::gpu::context::Gpu;
use crate::gpu::kernels::{ColumnSumParams, Dispatch, Kernel, bind};
use crate::gpu::stats::Counters;

/// Prepares `out[off0 + n] = out[off1 + n] = Σ_r input[in_off + r·cols + n]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    gpu: &Gpu,
    counters: &Counters,
    input: &wgpu::Buffer,
    in_off: usize,
    rows: usize,
    cols: usize,
    out: &wgpu::Buffer,
    out_offsets: [usize; 2],
) -> Result<Dispatch> {
    let params = ColumnSumParams {
        rows: rows as u32,
        cols: cols as u32,
        in_off: in_off as u32,
        out_off0: out_offsets[0] as u32,
        out_off1: out_offsets[1] as u32,
        pad: [0; 3],
    };
    let uniform = gpu.uniform("column_sum", bytemuck::bytes_of(&params), counters);
    let bind_group = bind(
        gpu.device(),
        gpu.kernels(),
        Kernel::ColumnSum,
        uniform.as_entire_binding(),
        &[input, out],
    );
    Ok(Dispatch {
        kernel: Kernel::ColumnSum,
        bind_group,
        workgroups: [(cols as u32).div_ceil(64), 1, 1],
        _uniform: Some(uniform),
    })
}
