//! Host side of `shaders/matmul.wgsl`: describing one GEMM and preparing its dispatch.

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::kernels::{
    ACCUMULATE, BIAS, Dispatch, IDENTITY_GROUP, Kernel, MatmulParams, TRANS_A, TRANS_B, bind,
};
use crate::gpu::stats::Counters;

/// Output tile edge of the kernel.
const TILE: u32 = 64;

/// One operand of a GEMM: a row-major matrix inside `buffer` at element `offset` with leading
/// dimension `ld`, optionally transposed, with an optional row map (see the shader).
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub ld: usize,
    pub trans: bool,
    pub group: u32,
    pub group_stride: u32,
}

impl<'a> Operand<'a> {
    /// A plain row-major matrix.
    pub(crate) fn new(buffer: &'a wgpu::Buffer, offset: usize, ld: usize) -> Self {
        Operand {
            buffer,
            offset,
            ld,
            trans: false,
            group: IDENTITY_GROUP,
            group_stride: 0,
        }
    }

    /// Use the stored matrix transposed.
    pub(crate) fn t(mut self) -> Self {
        self.trans = true;
        self
    }

    /// Stored row `r` is read from row `(r / group) · stride + r % group`.
    pub(crate) fn rows(mut self, group: usize, stride: usize) -> Self {
        self.group = group as u32;
        self.group_stride = stride as u32;
        self
    }
}

/// `C = op(A) · op(B) (+ bias) (+ C)`, `op(A)` `[m, k]`, `op(B)` `[k, n]`, `C` `[m, n]`.
pub(crate) struct Gemm<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand<'a>,
    pub b: Operand<'a>,
    /// Buffer and element offset of a `[n]` bias.
    pub bias: Option<(&'a wgpu::Buffer, usize)>,
    /// Buffer, element offset and leading dimension of `C`.
    pub c: (&'a wgpu::Buffer, usize, usize),
    pub accumulate: bool,
}

fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::DeviceLimit {
        tensor: what.to_string(),
        bytes: v as u64 * 4,
        limit_name: "u32 element index",
        limit: u32::MAX as u64 * 4,
    })
}

impl Gemm<'_> {
    /// Prepares the dispatch: uniform, bind group and grid (row tiles past the per-dimension
    /// limit continue in z).
    pub(crate) fn prepare(&self, gpu: &Gpu, label: &str, counters: &Counters) -> Result<Dispatch> {
        let mut flags = 0;
        if self.a.trans {
            flags |= TRANS_A;
        }
        if self.b.trans {
            flags |= TRANS_B;
        }
        if self.bias.is_some() {
            flags |= BIAS;
        }
        if self.accumulate {
            flags |= ACCUMULATE;
        }
        let params = MatmulParams {
            m: u32_of(label, self.m)?,
            n: u32_of(label, self.n)?,
            k: u32_of(label, self.k)?,
            flags,
            a_off: u32_of(label, self.a.offset)?,
            lda: u32_of(label, self.a.ld)?,
            a_group: self.a.group,
            a_group_stride: self.a.group_stride,
            b_off: u32_of(label, self.b.offset)?,
            ldb: u32_of(label, self.b.ld)?,
            b_group: self.b.group,
            b_group_stride: self.b.group_stride,
            c_off: u32_of(label, self.c.1)?,
            ldc: u32_of(label, self.c.2)?,
            bias_off: u32_of(label, self.bias.map_or(0, |b| b.1))?,
            pad: 0,
        };
        let max = gpu.limits().max_compute_workgroups_per_dimension;
        let col_tiles = (self.n as u32).div_ceil(TILE);
        let row_tiles = (self.m as u32).div_ceil(TILE);
        let (y, z) = (row_tiles.min(max), row_tiles.div_ceil(max.max(1)));
        if col_tiles > max || z > max {
            return Err(Error::DeviceLimit {
                tensor: label.to_string(),
                bytes: col_tiles.max(z) as u64,
                limit_name: "max_compute_workgroups_per_dimension",
                limit: max as u64,
            });
        }
        let uniform = gpu.uniform(label, bytemuck::bytes_of(&params), counters);
        let bias = self.bias.map_or(self.a.buffer, |b| b.0);
        let bind_group = bind(
            gpu.device(),
            gpu.kernels(),
            Kernel::Matmul,
            uniform.as_entire_binding(),
            &[self.a.buffer, self.b.buffer, bias, self.c.0],
        );
        Ok(Dispatch {
            kernel: Kernel::Matmul,
            bind_group,
            workgroups: [col_tiles, y.max(1), z.max(1)],
            _uniform: Some(uniform),
        })
    }
}
