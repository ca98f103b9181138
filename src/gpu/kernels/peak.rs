//! `shaders/peak.wgsl`: the peak probe's kernels (FMA chains, a vec4 copy, an empty dispatch,
//! sums of vec4 loads from storage and from a texture), which [`crate::gpu::peak`] times; CPU
//! twins of the chains and the sums in [`crate::cpu::peak`].

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
    textures: 1,
    written_textures: 0,
    subgroups: false,
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

/// The sums of loads from storage.
pub(crate) const LOAD_STORAGE: KernelDesc = KernelDesc {
    name: "peak_load_storage",
    entry: "load_storage",
    ..FMA
};

/// The sums of loads from a texture.
pub(crate) const LOAD_TEXTURE: KernelDesc = KernelDesc {
    name: "peak_load_texture",
    entry: "load_texture",
    ..FMA
};

/// `struct Peak` of `peak.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub n: u32,
    pub iters: u32,
    pub width: u32,
    pub pad: u32,
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
    /// `n` sums of `iters` vec4s each from a grid `width` vec4s wide, in `src` or in `texels`.
    Load {
        iters: u32,
        width: u32,
        texture: bool,
    },
}

/// One dispatch of a probe over `n` invocations (FMA, loads) or elements (copy); `dst` `[n]`
/// vec4; `src` `[n]` vec4 for the copy, the `[n / width · iters, width]` vec4 grid for the
/// storage loads; `texels` that grid as an `rgba32float` texture for the texture loads (every
/// probe binds one; the others read neither `src` nor `texels`).
pub(crate) struct PeakCall<'a> {
    pub probe: Probe,
    pub n: usize,
    pub src: &'a wgpu::Buffer,
    pub dst: &'a wgpu::Buffer,
    pub texels: &'a wgpu::TextureView,
}

impl Call for PeakCall<'_> {
    type Params = Params;

    fn kernel(&self, _limits: &wgpu::Limits) -> Kernel {
        match self.probe {
            Probe::Fma { .. } => Kernel::PeakFma,
            Probe::Copy => Kernel::PeakCopy,
            Probe::Empty => Kernel::PeakEmpty,
            Probe::Load { texture: false, .. } => Kernel::PeakLoadStorage,
            Probe::Load { texture: true, .. } => Kernel::PeakLoadTexture,
        }
    }

    fn params(&self) -> Result<Params> {
        let (iters, width) = match self.probe {
            Probe::Fma { iters } => (iters, 0),
            Probe::Load { iters, width, .. } => (iters, width),
            _ => (0, 0),
        };
        Ok(Params {
            n: u32_of("peak probe", self.n)?,
            iters,
            width,
            pad: 0,
        })
    }

    /// The chains' FMAs (one vec4 written per invocation), the copy's 32 bytes per element, or
    /// the loads' 16 bytes per vec4 summed (and one vec4 written per invocation).
    fn work(&self) -> super::Work {
        match self.probe {
            Probe::Fma { iters } => super::Work {
                flop: self.n as u64 * u64::from(iters) * 64,
                bytes: 16 * self.n as u64,
            },
            Probe::Copy => super::Work::new(0, 8 * self.n),
            Probe::Empty => super::Work::default(),
            Probe::Load { iters, .. } => {
                let sums = self.n * iters as usize;
                super::Work::new(4 * sums, 4 * (sums + self.n))
            }
        }
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        vec![self.src, self.dst]
    }

    fn textures(&self) -> Vec<&wgpu::TextureView> {
        vec![self.texels]
    }

    /// One invocation per chain set or element, folded into y past the grid's limit.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        match self.probe {
            Probe::Empty => Ok([1, 1, 1]),
            _ => grid_1d(self.n, WG[0], limits),
        }
    }
}
