//! `shaders/matmul.wgsl`: `C = op(A) · op(B) (+ bias) (+ C)` as described by a
//! [`GemmSpec`]; CPU twin [`crate::cpu::matmul`].
//!
//! Each workgroup computes a `TM x TN` tile of `C` with `WG_X x WG_Y` invocations, each owning a
//! `(TM / WG_Y) x (TN / WG_X)` block. Three variants of the shader share that layout:
//!
//! * [`DESC`] (entry `main`) walks `K` in chunks of `TK` staged in workgroup memory, so each
//!   element read from storage serves a whole row or column of the tile;
//! * [`DIRECT`] (entry `main_direct`), for products of at most [`DIRECT_MAX_ROWS`] rows and no
//!   row map, reads its operands straight from storage with no barrier: with so few rows a
//!   staged element of `B` would serve almost nobody, and a tile of 64 rows would compute mostly
//!   padding. (An input projection of one step of a small batch: on a software adapter, 1 x 512
//!   x 32 took 1.7 ms staged and 0.09 ms direct.)
//! * [`BLOCKED`] (entry `main_blocked`), for a long `K` (at least [`BLOCKED_MIN_K`], or
//!   [`BLOCKED_MIN_K_FEW_ROWS`] for products the direct variant would take: the weight
//!   gradients, whose `K` is `B·T`), also reads straight from storage, each invocation walking
//!   all of `K` with a `BLOCKED_TM x (BLOCKED_TN / 16)` block in registers. Its invocations share
//!   their rows, so an element of `A` is one load for the workgroup, and no barrier interrupts
//!   the loop. (dW_hh of the reference classifier, 512 x 128 x 3456, on a software adapter:
//!   staged 280-320 ms, blocked 100-150 ms.)
//! * [`BLOCKED_VEC4`] (`shaders/matmul_blocked_vec4.wgsl`) is [`BLOCKED`] for the weight
//!   gradients' layout (`A` transposed, `B` not) when every row of 4 floats it reads is aligned
//!   (see [`vec4_aligned`]): it loads 4 columns of `B` and 4 rows of `A` at once, and gives each
//!   invocation 8 columns, 4 loads per step of `K` for 64 products where [`BLOCKED`] spends 12
//!   for 32, with the same multiply-adds in the same order.
//! * [`SUBGROUP`] (`shaders/matmul_subgroup.wgsl`) is [`BLOCKED_VEC4`] with the rows of `A`
//!   shared through a subgroup of 8: each lane loads 4 of the tile's 32 rows and takes the other
//!   28 from its neighbours (`subgroupBroadcast`), 3 vec4 loads per step of `K` for 256
//!   products, again with the same multiply-adds in the same order. [`SUBGROUP_TALL`] does the
//!   same with 64 rows (two groups of 32) for products of more than one column tile, so that
//!   `B` is read by half as many tiles. Only devices whose
//!   subgroups are exactly 8 wide run it ([`crate::gpu::Tuning::subgroups`]).
//! * [`SUBGROUP_NT`] (`shaders/matmul_subgroup_nt.wgsl`) takes [`BLOCKED`]'s products whose
//!   operands both run along `K` (`A` not transposed, `B` transposed: backward's input gradient
//!   `dgates · W_ih`) where every vec4 along `K` is aligned (see [`nt_aligned`]), on the same
//!   devices: each lane loads 4 of the tile's 32 rows of `A` and 4 columns of `B`, 4 terms of `K`
//!   to a load, the rows shared through the subgroup, with [`BLOCKED`]'s multiply-adds in its
//!   order.
//!
//! [`Matmul`] picks the variant from the spec and the device's tuning.

use bytemuck::{Pod, Zeroable};

use super::{Access, Call, Kernel, KernelDesc, shader_file, u32_of, within_limit};
use crate::error::{Error, Result};
use crate::gemm::{GemmSpec, MatrixLayout};

/// Output tile rows per workgroup.
pub(crate) const TM: u32 = 64;
/// Output tile columns per workgroup.
pub(crate) const TN: u32 = 64;
/// Depth of one staged chunk of `K`.
pub(crate) const TK: u32 = 16;
const WG: [u32; 3] = [16, 16, 1];

/// Products with at most this many rows use [`DIRECT`].
pub(crate) const DIRECT_MAX_ROWS: usize = 32;
/// Output tile rows per workgroup of [`DIRECT`]: one, so a single-row product wastes nothing.
pub(crate) const DIRECT_TM: u32 = 1;
/// Output tile columns per workgroup of [`DIRECT`] (one per invocation).
pub(crate) const DIRECT_TN: u32 = 64;
const DIRECT_WG: [u32; 3] = [DIRECT_TN, 1, 1];

/// Flag bits of `Params::flags`.
pub(crate) const TRANS_A: u32 = 1;
pub(crate) const TRANS_B: u32 = 2;
pub(crate) const BIAS: u32 = 4;
pub(crate) const ACCUMULATE: u32 = 8;
/// Row-map group that leaves row indices as they are.
pub(crate) const IDENTITY_GROUP: u32 = u32::MAX;

// The shader splits each tile evenly over the invocations.
const _: () = assert!(TM.is_multiple_of(WG[1]) && TN.is_multiple_of(WG[0]));
const _: () =
    assert!((TK * TM).is_multiple_of(WG[0] * WG[1]) && (TK * TN).is_multiple_of(WG[0] * WG[1]));

/// The shader's constants for an output tile of `tm x tn` (`TK` sizes the staged variant's
/// chunks; the others read it without using it).
const fn constants(tm: u32, tn: u32) -> [(&'static str, u32); 7] {
    [
        ("TM", tm),
        ("TN", tn),
        ("TK", TK),
        ("TRANS_A", TRANS_A),
        ("TRANS_B", TRANS_B),
        ("BIAS", BIAS),
        ("ACCUMULATE", ACCUMULATE),
    ]
}

/// The staged variant (entry `main`).
pub(crate) const DESC: KernelDesc = KernelDesc {
    name: "matmul",
    files: &[
        shader_file!("matmul_output.wgsl"),
        shader_file!("matmul.wgsl"),
    ],
    entry: "main",
    workgroup_size: WG,
    constants: &constants(TM, TN),
    uniform_size: std::mem::size_of::<Params>(),
    dynamic_offset: false,
    textures: 0,
    written_textures: 0,
    subgroups: false,
    storage: &[Access::Read, Access::Read, Access::Read, Access::ReadWrite],
};

/// The variant for few rows (entry `main_direct`; `TK` only sizes the staged variant's tiles).
pub(crate) const DIRECT: KernelDesc = KernelDesc {
    name: "matmul_direct",
    entry: "main_direct",
    workgroup_size: DIRECT_WG,
    constants: &constants(DIRECT_TM, DIRECT_TN),
    ..DESC
};

const _: () =
    assert!(DIRECT_TM.is_multiple_of(DIRECT_WG[1]) && DIRECT_TN.is_multiple_of(DIRECT_WG[0]));

/// Products with at least this many terms per element (and [`BLOCKED_TM`] rows) use
/// [`BLOCKED`].
pub(crate) const BLOCKED_MIN_K: usize = 256;
/// Products of at most [`DIRECT_MAX_ROWS`] rows (and at least [`BLOCKED_TM`]) use [`BLOCKED`]
/// from this many terms on: the direct variant walks `K` one term at a time per element. The
/// weight gradients of the small size (B8 T28 I28 H32, `K = 224`) on a software adapter took
/// 2.8 and 1.9 ms direct, 0.33 and 0.32 ms blocked (vec4).
pub(crate) const BLOCKED_MIN_K_FEW_ROWS: usize = 128;
/// Output tile rows per workgroup of [`BLOCKED`], the same rows for every invocation (so on a
/// SIMD adapter each element of `A` is one load for the whole workgroup).
pub(crate) const BLOCKED_TM: u32 = 8;
/// Output tile columns per workgroup of [`BLOCKED`]. Of the tiles tried on a software adapter
/// (4, 8 or 16 rows by 32, 64 or 128 columns, and an invocation's columns side by side rather
/// than 16 apart), 8 x 64 was the fastest for the reference classifier's weight gradients.
pub(crate) const BLOCKED_TN: u32 = 64;
/// Invocations of [`BLOCKED`], one row of them: each owns all `BLOCKED_TM` rows of its
/// `BLOCKED_TN / 16` columns.
const BLOCKED_WG: [u32; 3] = [16, 1, 1];

/// The register-blocked variant for a long `K` (entry `main_blocked`; `TK` unused).
pub(crate) const BLOCKED: KernelDesc = KernelDesc {
    name: "matmul_blocked",
    entry: "main_blocked",
    workgroup_size: BLOCKED_WG,
    constants: &constants(BLOCKED_TM, BLOCKED_TN),
    ..DESC
};

// `main_blocked` gives every invocation the tile's rows: one row of invocations.
const _: () = assert!(BLOCKED_WG[1] == 1 && BLOCKED_TN.is_multiple_of(BLOCKED_WG[0]));

/// [`BLOCKED`] reading 4 floats per load, for aligned operands (see [`vec4_aligned`]).
pub(crate) const BLOCKED_VEC4: KernelDesc = KernelDesc {
    name: "matmul_blocked_vec4",
    files: &[
        shader_file!("matmul_output.wgsl"),
        shader_file!("matmul_blocked_vec4.wgsl"),
    ],
    entry: "main",
    constants: &constants(BLOCKED_TM, BLOCKED_VEC4_TN),
    ..BLOCKED
};

/// Output tile columns per workgroup of [`BLOCKED_VEC4`]: 8 adjacent columns per invocation,
/// twice [`BLOCKED`]'s, so that each step of `K` loads 4 vec4s for 64 products (with 4 columns,
/// 3 for 32: the reference classifier's `dW_hh` took 51 ms on a software adapter that way,
/// 35-41 ms this way, and `dW_ih` 14 ms against 10).
pub(crate) const BLOCKED_VEC4_TN: u32 = 128;

// The shader spells out the 8 rows of its tile, and gives each invocation 8 adjacent columns.
const _: () = assert!(BLOCKED_TM == 8 && BLOCKED_VEC4_TN == 8 * BLOCKED_WG[0]);

/// [`BLOCKED_VEC4`] sharing the rows of `A` through a subgroup (`shaders/matmul_subgroup.wgsl`),
/// for devices whose subgroups are exactly [`SUBGROUP_WIDTH`] wide.
pub(crate) const SUBGROUP: KernelDesc = KernelDesc {
    name: "matmul_subgroup",
    files: &[
        shader_file!("matmul_output.wgsl"),
        shader_file!("subgroup_rows.wgsl"),
        shader_file!("matmul_subgroup.wgsl"),
    ],
    entry: "main",
    workgroup_size: [SUBGROUP_WIDTH, 1, 1],
    constants: &constants(SUBGROUP_TM, SUBGROUP_TN),
    subgroups: true,
    ..BLOCKED
};

/// [`SUBGROUP`] with [`SUBGROUP_TALL_TM`] rows per tile, for products of more than one column
/// tile ([`SUBGROUP_TN`]) and at least as many rows.
pub(crate) const SUBGROUP_TALL: KernelDesc = KernelDesc {
    name: "matmul_subgroup_tall",
    constants: &constants(SUBGROUP_TALL_TM, SUBGROUP_TN),
    ..SUBGROUP
};

/// [`BLOCKED`] for products whose operands both run along `K` (`shaders/matmul_subgroup_nt.wgsl`),
/// sharing the rows of `A` through a subgroup of [`SUBGROUP_WIDTH`]: 32 rows by 32 columns per
/// workgroup, where [`nt_aligned`]. On lavapipe with 8-wide subgroups, a forward+backward pass
/// with every gradient (best of 20, three alternating rounds): the reference size (its input
/// gradient `3584 x 28 x 512`) 57.5-59.2 ms against 87.4-98.2 with [`BLOCKED`], B64 T50 I64
/// H256 171.6-181.0 against 235.6-247.2.
pub(crate) const SUBGROUP_NT: KernelDesc = KernelDesc {
    name: "matmul_subgroup_nt",
    files: &[
        shader_file!("matmul_output.wgsl"),
        shader_file!("subgroup_rows.wgsl"),
        shader_file!("matmul_subgroup_nt.wgsl"),
    ],
    entry: "main",
    workgroup_size: [SUBGROUP_WIDTH, 1, 1],
    constants: &constants(SUBGROUP_NT_TM, SUBGROUP_NT_TN),
    subgroups: true,
    ..BLOCKED
};

/// Output tile rows per workgroup of [`SUBGROUP_NT`]: 4 per lane.
pub(crate) const SUBGROUP_NT_TM: u32 = 32;
/// Output tile columns per workgroup of [`SUBGROUP_NT`]: 4 per invocation, 8 apart.
pub(crate) const SUBGROUP_NT_TN: u32 = 32;

// The shader spells out each lane's 4 rows and each invocation's 4 columns.
const _: () = assert!(
    SUBGROUP_WIDTH == 8
        && SUBGROUP_NT_TM == 4 * SUBGROUP_WIDTH
        && SUBGROUP_NT_TN == 4 * SUBGROUP_WIDTH
);

/// The subgroup width [`SUBGROUP`] is written for: its workgroup is one subgroup, whose lanes
/// 0..8 each load 4 of the tile's rows.
pub(crate) const SUBGROUP_WIDTH: u32 = crate::gpu::Tuning::SUBGROUP_WIDTH;
/// Output tile rows per workgroup of [`SUBGROUP`]: 4 per lane. At the reference classifier's
/// `dW_hh` (512 x 128 x 3584) on a software adapter with 8-wide subgroups, in one run, best of
/// 12 (ms): 16 rows by 8 columns per invocation 12.0-13.2, 32 rows by 4 columns 13.6-16.8,
/// 16 by 4 16.0-16.1, 8 by 8 17.9-18.6, and [`BLOCKED_VEC4`]'s tile without subgroups 24.0-24.6.
/// Later, 32 rows by 8 columns (the sums in two arrays of 32 vec4s) against 16 by 8, GPU
/// timestamps of the reference forward+backward, four alternating runs: `dW_hh` 13.9-15.0
/// against 16.5-19.7, `dW_ih` 3.8-4.1 against 4.4-5.0.
pub(crate) const SUBGROUP_TM: u32 = 32;
/// Output tile rows per workgroup of [`SUBGROUP_TALL`]: two groups of 32. `B` is read once per
/// row tile, so twice the rows read it half as often; a product of one column tile gains
/// nothing but loses half its workgroups, and one of fewer rows computes padding. GPU timestamps of the reference forward+backward and
/// of B64 T100 I64 H256, three alternating runs against [`SUBGROUP_TM`] for every product (ms):
/// `dW_hh` (N = 128, 256) 11.3-12.0 against 13.9-15.1 and 106-118 against 133-139; the
/// reference `dW_ih` (28 rows, so 36 of a 64-row tile's rows are padding) 6.3-8.9 against
/// 3.8-4.0. With the choice here, three more: `dW_hh` 11.5-11.7 against 16.2-24.3 and 93-141
/// against 120-268; the medium `dW_ih` (64 x 1024) 25-28 against 25-26.
pub(crate) const SUBGROUP_TALL_TM: u32 = 64;
/// Output tile columns per workgroup of [`SUBGROUP`]: 8 adjacent columns per invocation.
pub(crate) const SUBGROUP_TN: u32 = 64;

// The shader spells out the 8 lanes' 4 rows each (of one or two groups of 32) and each
// invocation's 8 columns.
const _: () = assert!(
    SUBGROUP_WIDTH == 8
        && SUBGROUP_TM == 4 * SUBGROUP_WIDTH
        && SUBGROUP_TALL_TM == 2 * SUBGROUP_TM
        && SUBGROUP_TN == 8 * SUBGROUP_WIDTH
);

/// Whether [`BLOCKED_VEC4`] can compute `spec`: `A` transposed and `B` not (the weight
/// gradients' `dgatesᵀ · input`), and `A`'s and `B`'s offsets and leading dimensions, `M` and
/// `N` all multiples of 4, so that each vec4 it loads lies in one row, and 4 rows or columns of
/// `C` are all inside it or all outside.
pub(crate) fn vec4_aligned(spec: &GemmSpec) -> bool {
    spec.a.transposed
        && !spec.b.transposed
        && [
            spec.a.offset,
            spec.a.ld,
            spec.b.offset,
            spec.b.ld,
            spec.m,
            spec.n,
        ]
        .iter()
        .all(|v| v % 4 == 0)
}

/// Whether [`SUBGROUP_NT`] can compute `spec`: `A` not transposed and `B` transposed (both
/// stored along `K`), neither with a row map, and their offsets, leading dimensions and `K` all
/// multiples of 4, so that each vec4 it loads lies in one row of `A` or `B`.
pub(crate) fn nt_aligned(spec: &GemmSpec) -> bool {
    !spec.a.transposed
        && spec.b.transposed
        && spec.a.row_map.is_none()
        && spec.b.row_map.is_none()
        && [spec.a.offset, spec.a.ld, spec.b.offset, spec.b.ld, spec.k]
            .iter()
            .all(|v| v % 4 == 0)
}

/// `struct Params` of `matmul_output.wgsl` (see `matmul.wgsl` for the meaning of each field).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub a_off: u32,
    pub lda: u32,
    pub a_group: u32,
    pub a_group_stride: u32,
    pub b_off: u32,
    pub ldb: u32,
    pub b_group: u32,
    pub b_group_stride: u32,
    pub c_off: u32,
    pub ldc: u32,
    pub bias_off: u32,
    pub pad: u32,
}

/// The variant that computes `spec` on a device with `limits`: [`Kernel::MatmulBlocked`] for at
/// least [`BLOCKED_MIN_K`] terms ([`BLOCKED_MIN_K_FEW_ROWS`] for at most [`DIRECT_MAX_ROWS`]
/// rows) and [`BLOCKED_TM`] rows ([`Kernel::MatmulBlockedVec4`] when [`vec4_aligned`]),
/// [`Kernel::MatmulDirect`] for at most [`DIRECT_MAX_ROWS`] rows without a row map (and its
/// one-row tiles within one grid dimension), else [`Kernel::Matmul`]. Where `subgroups` (the
/// device runs [`SUBGROUP`]), [`Kernel::MatmulSubgroup`] takes [`Kernel::MatmulBlockedVec4`]'s
/// products, [`Kernel::MatmulSubgroupTall`] those of more than one column tile and at least
/// [`SUBGROUP_TALL_TM`] rows, and [`Kernel::MatmulSubgroupNt`] [`Kernel::MatmulBlocked`]'s
/// products that are [`nt_aligned`].
pub(crate) fn variant(spec: &GemmSpec, limits: &wgpu::Limits, subgroups: bool) -> Kernel {
    let unmapped = spec.a.row_map.is_none() && spec.b.row_map.is_none();
    let row_tiles = spec.m.div_ceil(DIRECT_TM as usize);
    let fits = row_tiles <= limits.max_compute_workgroups_per_dimension as usize;
    let min_k = match spec.m <= DIRECT_MAX_ROWS {
        true => BLOCKED_MIN_K_FEW_ROWS,
        false => BLOCKED_MIN_K,
    };
    if spec.k >= min_k && spec.m >= BLOCKED_TM as usize {
        let tall = spec.n > SUBGROUP_TN as usize && spec.m >= SUBGROUP_TALL_TM as usize;
        return if vec4_aligned(spec) && subgroups && tall {
            Kernel::MatmulSubgroupTall
        } else if vec4_aligned(spec) && subgroups {
            Kernel::MatmulSubgroup
        } else if vec4_aligned(spec) {
            Kernel::MatmulBlockedVec4
        } else if nt_aligned(spec) && subgroups {
            Kernel::MatmulSubgroupNt
        } else {
            Kernel::MatmulBlocked
        };
    }
    if spec.m <= DIRECT_MAX_ROWS && unmapped && fits {
        Kernel::MatmulDirect
    } else {
        Kernel::Matmul
    }
}

/// One GEMM: its [`GemmSpec`] and the buffers holding `A`, `B`, the bias (present exactly when
/// `spec.bias` is) and `C`; `subgroups` where the device runs [`SUBGROUP`]
/// ([`crate::gpu::Tuning::subgroups`]).
pub(crate) struct Matmul<'a> {
    pub spec: GemmSpec,
    pub subgroups: bool,
    pub a: &'a wgpu::Buffer,
    pub b: &'a wgpu::Buffer,
    pub bias: Option<&'a wgpu::Buffer>,
    pub c: &'a wgpu::Buffer,
}

fn elements(buffer: &wgpu::Buffer) -> usize {
    (buffer.size() / 4) as usize
}

/// `(offset, ld, group, group stride)` of an operand, narrowed for the shader.
fn operand(what: &str, m: &MatrixLayout) -> Result<[u32; 4]> {
    let (group, stride) = match m.row_map {
        None => (IDENTITY_GROUP, 0),
        Some(r) => (u32_of(what, r.group)?, u32_of(what, r.stride)?),
    };
    Ok([u32_of(what, m.offset)?, u32_of(what, m.ld)?, group, stride])
}

impl Call for Matmul<'_> {
    type Params = Params;

    fn kernel(&self, limits: &wgpu::Limits) -> Kernel {
        variant(&self.spec, limits, self.subgroups)
    }

    fn params(&self) -> Result<Params> {
        let s = &self.spec;
        if s.bias.is_some() != self.bias.is_some() {
            return Err(Error::config(
                "GEMM bias",
                "a bias offset needs a bias buffer and vice versa",
            ));
        }
        let bias_len = self.bias.map_or(0, elements);
        s.check(
            elements(self.a),
            elements(self.b),
            bias_len,
            elements(self.c),
        )?;
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        let flags = flag(s.a.transposed, TRANS_A)
            | flag(s.b.transposed, TRANS_B)
            | flag(s.bias.is_some(), BIAS)
            | flag(s.accumulate, ACCUMULATE);
        let [a_off, lda, a_group, a_group_stride] = operand("GEMM A", &s.a)?;
        let [b_off, ldb, b_group, b_group_stride] = operand("GEMM B", &s.b)?;
        Ok(Params {
            m: u32_of("GEMM m", s.m)?,
            n: u32_of("GEMM n", s.n)?,
            k: u32_of("GEMM k", s.k)?,
            flags,
            a_off,
            lda,
            a_group,
            a_group_stride,
            b_off,
            ldb,
            b_group,
            b_group_stride,
            c_off: u32_of("GEMM C", s.c.offset)?,
            ldc: u32_of("GEMM C", s.c.ld)?,
            bias_off: u32_of("GEMM bias", s.bias.unwrap_or(0))?,
            pad: 0,
        })
    }

    /// `2·m·n·k`; `A`, `B`, the bias and `C` once each (`C` twice when accumulating).
    fn work(&self) -> super::Work {
        let s = &self.spec;
        let c = s.m * s.n * (1 + usize::from(s.accumulate));
        let bias = if s.bias.is_some() { s.n } else { 0 };
        super::Work::new(2 * s.m * s.n * s.k, s.m * s.k + s.k * s.n + bias + c)
    }

    fn buffers(&self) -> Vec<&wgpu::Buffer> {
        // Without a bias the binding still needs a buffer; the shader never reads it.
        vec![self.a, self.b, self.bias.unwrap_or(self.a), self.c]
    }

    /// Column tiles in x, row tiles in y, continuing in z past the per-dimension limit.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]> {
        let max = limits.max_compute_workgroups_per_dimension.max(1);
        let (tm, tn) = match self.kernel(limits) {
            Kernel::MatmulDirect => (DIRECT_TM, DIRECT_TN),
            Kernel::MatmulBlocked => (BLOCKED_TM, BLOCKED_TN),
            Kernel::MatmulBlockedVec4 => (BLOCKED_TM, BLOCKED_VEC4_TN),
            Kernel::MatmulSubgroup => (SUBGROUP_TM, SUBGROUP_TN),
            Kernel::MatmulSubgroupTall => (SUBGROUP_TALL_TM, SUBGROUP_TN),
            Kernel::MatmulSubgroupNt => (SUBGROUP_NT_TM, SUBGROUP_NT_TN),
            _ => (TM, TN),
        };
        let col_tiles = within_limit(u32_of("GEMM n", self.spec.n)?.div_ceil(tn), limits)?;
        let row_tiles = u32_of("GEMM m", self.spec.m)?.div_ceil(tm);
        let z = within_limit(row_tiles.div_ceil(max), limits)?;
        Ok([col_tiles.max(1), row_tiles.clamp(1, max), z.max(1)])
    }
}
