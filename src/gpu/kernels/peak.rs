//! `shaders/peak.wgsl`: the peak probe's kernels (FMA chains, a vec4 copy, an empty dispatch),
//! which [`crate::gpu::peak`] times; CPU twin of the chains [`crate::cpu::peak`].

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, grid_1d, shader_file, u32_of};
use crate::error::Result;

const WG: [u32; 3] = [64, 1, 1];

/// The FMA chains.
pub(crate) const FMA: KernelDesc = KernelDesc {
    name: "peak_fma_chains",
    files: &[shader_file!("peak.wgsl")],
    entry: "fma_chains",
    workgroup_size: WG,
    constants: &[],
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    storage: &[Access::Read, Access::ReadWrite],
};

/// The vec4 copy.
pub(crate) const COPY: KernelDesc = KernelDesc {
    name: "peak_copy",
    entry: "copy",
    ..FMA
};

/// The empty kernel.
pub(crate) const EMPTY: KernelDesc = KernelDesc {
    name: "peak_empty",
    entry: "empty",
    ..FMA
};

/// `struct Peak` of `peak.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub n: u32,
    pub iters: u32,
    pub pad: [u32; 2],
}

/// Which probe a [`PeakCall`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `n` invocations of `iters` steps each.
    Fma { iters: u32 },
    /// `n` vec4 elements.
    Copy,
    /// One workgroup that does nothing.
    Empty,
}

/// One dispatch of a probe over `n` invocations (FMA) or elements (copy); `src` `[n]` vec4 and
/// `dst` `[n]` vec4 (`src` is only read by the copy; the empty kernel touches neither).
pub(crate) struct PeakCall<'a> {
    pub probe: Probe,
    pub n: usize,
    pub src: &'a wgpu::Buffer,
    pub dst: &'a wgpu::Buffer,
}

impl Call for PeakCall<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        match self.probe {
            Probe::Fma { .. } => Kernel::PeakFma,
            Probe::Copy => Kernel::PeakCopy,
            Probe::Empty => Kernel::PeakEmpty,
        }
    }

    fn params(&self) -> Result<Params> {
        let iters = match self.probe {
            Probe::Fma { iters } => iters,
            _ => 0,
        };
        Ok(Params {
            n: u32_of("peak probe", self.n)?,
            iters,
            pad: [0; 2],
        })
    }

    /// The chains' FMAs (one vec4 written per invocation), or the copy's 32 bytes per element.
    fn work(&self) -> super::Work {
        match self.probe {
            Probe::Fma { iters } => super::Work {
                flop: self.n as u64 * u64::from(iters) * 64,
                bytes: 16 * self.n as u64,
            },
            Probe::Copy => super::Work::new(0, 8 * self.n),
            Probe::Empty => super::Work::default(),
        }
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.src, self.dst]
    }

    /// One invocation per chain set or element, folded into y past the grid's limit.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        match self.probe {
            Probe::Empty => Ok([1, 1, 1]),
            _ => grid_1d(self.n, WG[0], limits),
        }
    }
}
