//! `shaders/column_sum.wgsl`: column sums of a row-major `[rows, cols]` matrix written to two
//! places (the LSTM's two equal bias gradients); CPU twin [`crate::cpu::column_sum`].

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, shader_file, u32_of};
use crate::error::Result;

const WG: [u32; 3] = [64, 1, 1];

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "column_sum",
    files: &[shader_file!("column_sum.wgsl")],
    entry: "main",
    workgroup_size: WG,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    textures: 0,
    written_textures: 0,
    subgroups: false,
    storage: &[Access::Read, Access::ReadWrite],
};

/// `struct Params` of `column_sum.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub rows: u32,
    pub cols: u32,
    pub in_off: u32,
    pub out_off0: u32,
    pub out_off1: u32,
    pub pad: [u32; 3],
}

/// `out[out_offsets[0] + n] = out[out_offsets[1] + n] = Σ_r input[in_off + r·cols + n]`.
pub(crate) struct ColumnSum<'a> {
    pub input: &'a wgpu::Buffer,
    pub in_off: usize,
    pub rows: usize,
    pub cols: usize,
    pub out: &'a wgpu::Buffer,
    pub out_offsets: [usize; 2],
}

impl Call for ColumnSum<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        Kernel::ColumnSum
    }

    fn params(&self) -> Result<Params> {
        let what = "column sum";
        Ok(Params {
            rows: u32_of(what, self.rows)?,
            cols: u32_of(what, self.cols)?,
            in_off: u32_of(what, self.in_off)?,
            out_off0: u32_of(what, self.out_offsets[0])?,
            out_off1: u32_of(what, self.out_offsets[1])?,
            pad: [0; 3],
        })
    }

    /// An add per element; the matrix once, two rows written.
    fn work(&self) -> super::Work {
        super::Work::new(self.rows * self.cols, (self.rows + 2) * self.cols)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.input, self.out]
    }

    /// One invocation per column.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        super::grid_x(self.cols, WG[0], limits)
    }
}
