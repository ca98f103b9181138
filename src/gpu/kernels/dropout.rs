//! `shaders/dropout.wgsl`: inverted dropout of a flat tensor, from a counter-based generator;
//! CPU twin [`crate::cpu::dropout`]. The LSTM's forward runs it on each lower layer's output in a
//! training pass, and its backward on the gradient coming down, with the same key.

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, Work, grid_1d, shader_file, u32_of};
use crate::error::Result;
use crate::lstm::Dropout as DropoutConfig;

const WG: [u32; 3] = [64, 1, 1];

pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "dropout",
    files: &[shader_file!("dropout.wgsl")],
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

/// `struct Params` of `dropout.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub len: u32,
    pub in_off: u32,
    pub out_off: u32,
    pub threshold: u32,
    pub key0: u32,
    pub key1: u32,
    pub scale: f32,
    pub pad: u32,
}

/// `out[out_off + i] = input[in_off + i]` through the mask of `layer` under `dropout`, for
/// `i < len`. The uniform carries the pass, so a plan rewrites it before each training pass
/// ([`params`]).
pub(crate) struct Dropout<'a> {
    pub input: &'a wgpu::Buffer,
    pub in_off: usize,
    pub out: &'a wgpu::Buffer,
    pub out_off: usize,
    pub len: usize,
    pub dropout: DropoutConfig,
    pub layer: usize,
}

/// The uniform of `len` elements from `in_off` to `out_off` through the mask of `layer` under
/// `dropout` (its pass included).
pub(crate) fn params(
    (len, in_off, out_off): (usize, usize, usize),
    dropout: &DropoutConfig,
    layer: usize,
) -> Result<Params> {
    let what = "dropout";
    let [key0, key1] = dropout.key(layer);
    Ok(Params {
        len: u32_of(what, len)?,
        in_off: u32_of(what, in_off)?,
        out_off: u32_of(what, out_off)?,
        threshold: dropout.threshold(),
        key0,
        key1,
        scale: dropout.scale(),
        pad: 0,
    })
}

impl Call for Dropout<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        Kernel::Dropout
    }

    fn params(&self) -> Result<Params> {
        params(
            (self.len, self.in_off, self.out_off),
            &self.dropout,
            self.layer,
        )
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.input, self.out]
    }

    /// One invocation per element, continuing in y past one dimension.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        grid_1d(self.len, WG[0], limits)
    }

    /// A hash of ~14 integer operations and a multiply per element; read once, written once.
    fn work(&self) -> Work {
        Work::new(15 * self.len, 2 * self.len)
    }
}
