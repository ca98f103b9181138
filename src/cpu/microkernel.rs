//! The innermost loop of the CPU GEMM ([`super::blocked_gemm`]): one tile of up to `MR` rows
//! by one or more panels of [`NR`] columns of `C`, from packed panels of `A` and `B`:
//!
//! ```text
//! C[r, j] = init[r, j] + Σ_{k < kc} A[k][r] · B[k][j]        r < rows ≤ MR, j < panels · NR
//! ```
//!
//! `B` is packed `[kc][NR]`, contiguous, and `A` is either packed `[kc][MR]` or read in place
//! row by row ([`ARef`]), from one column block of `A` or two ([`ABlocks`]), so each step of `k`
//! loads one row of `B` (two 512-bit or four 256-bit vectors) and broadcasts `MR` values of `A`;
//! the `MR × NR` sums stay in registers for the whole `kc` loop. `init` is zero, the tile of `C`
//! itself, or a bias row repeated down the rows. A tile of fewer rows than `MR` (the last rows
//! of `C`, or a batch of one) runs a kernel of exactly that many rows, spanning several panels
//! when the rows are few, so no multiply-add is spent on padding and enough independent sums
//! stay in flight.
//!
//! Each sum is built the same way on every path: start from `init`, then one fused multiply-add
//! per `k`, in order. The AVX-512, AVX2 and NEON kernels therefore give the same bits, and so
//! does a tile computed in one call or split over several calls along `k` (the partial sums pass
//! through `C` exactly). The portable kernel, for processors without FMA, multiplies and adds
//! separately: same order, one more rounding per step.

use super::isa::Isa;
use crate::real::Real;

/// Columns of a packed panel of `B`, the same on every path, so one packed `B` serves them all.
pub(crate) const NR: usize = 32;

/// Rows of a packed panel of `A` on the AVX-512 path: 12 rows × 2 vectors = 24 accumulators of
/// 32 registers, with two for the row of `B` and one for a broadcast. Against 8 rows (16
/// accumulators), single-threaded on an AVX-512 Xeon (criterion, one run): the seed's and
/// medium's forward+backward 8.6% and 6.4% faster, the medium forward 11%; products of many
/// rows 10-13% (`[800×512]·[512×2048]` 153 → 165-175 GFLOP/s).
const MR_AVX512: usize = 12;
/// Rows of a packed panel of `A` on the AVX2 path: 6 rows × 2 vectors (half a panel at a time)
/// = 12 accumulators of 16 registers, leaving room for two values of `B` and a broadcast (a
/// whole panel's 4 vectors per row would leave too few, and the compiler spills).
const MR_AVX2: usize = 6;
/// Rows of a packed panel of `A` on the NEON path: 6 rows × 4 vectors (half a panel at a time,
/// as on AVX2) = 24 accumulators of 32 registers, with four for the row of `B` and a broadcast.
const MR_NEON: usize = 6;
/// Rows of a packed panel of `A` for the portable kernel.
const MR_PORTABLE: usize = 4;
/// The largest `MR` of any path (for tiles on the stack).
pub(crate) const MR_MAX: usize = 12;

/// How a tile's sums start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TileInit<F> {
    /// From zero.
    Zero,
    /// From the tile of `C` itself (accumulate).
    Load,
    /// From a row of values at this address (as many as the tile has columns), the same for
    /// every row.
    Bias(*const F),
}

/// Where a tile's rows of `A` are: element `(r, k)` at `ptr + r·rs + k·ks`. A packed panel
/// has `rs = 1`, `ks = MR` ([`ARef::packed`]); a row-major `A` read in place has `rs` its row
/// stride and `ks = 1`.
#[derive(Debug)]
pub(crate) struct ARef<F> {
    pub(crate) ptr: *const F,
    pub(crate) rs: usize,
    pub(crate) ks: usize,
}

impl<F> Clone for ARef<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for ARef<F> {}

impl<F: Copy> ARef<F> {
    /// A packed row panel of `mr` lanes.
    pub(crate) fn packed(ptr: *const F, mr: usize) -> Self {
        ARef { ptr, rs: 1, ks: mr }
    }

    /// Element `(r, k)`.
    ///
    /// # Safety
    /// The element lies inside the memory `ptr` points into.
    #[inline(always)]
    unsafe fn get(&self, r: usize, k: usize) -> F {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.add(r * self.rs + k * self.ks) }
    }
}

/// A tile's rows of `A` over its `kc` steps of `k`: `head` for `k < split`, then `tail`
/// (its element `(r, k - split)`) up to `kc`. Two column blocks of `A` read in place, a
/// step's `[x_t | h_{t-1}]`, are so one pass of the tile, whose sums stay in registers from
/// one block to the next instead of passing through `C`; one block has `split = kc`. Either
/// way each sum is the same chain of multiply-adds over `k` in order.
#[derive(Debug)]
pub(crate) struct ABlocks<F> {
    pub(crate) head: ARef<F>,
    pub(crate) split: usize,
    pub(crate) tail: ARef<F>,
}

impl<F> Clone for ABlocks<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F> Copy for ABlocks<F> {}

impl<F: Copy> ABlocks<F> {
    /// One block of `kc` steps.
    pub(crate) fn one(a: ARef<F>, kc: usize) -> Self {
        ABlocks {
            head: a,
            split: kc,
            tail: a,
        }
    }

    /// Element `(r, k)`.
    ///
    /// # Safety
    /// The element lies inside the memory of the block it falls in.
    #[inline(always)]
    unsafe fn get(&self, r: usize, k: usize) -> F {
        // SAFETY: the caller's contract.
        unsafe {
            if k < self.split {
                self.head.get(r, k)
            } else {
                self.tail.get(r, k - self.split)
            }
        }
    }
}

/// Rows of a packed panel of `A` for `F` on `isa`: the layout packed `A` must have.
pub(crate) fn mr<F: Real>(isa: Isa) -> usize {
    match (is_f32::<F>(), isa) {
        (true, Isa::Avx512) => MR_AVX512,
        (true, Isa::Avx2) => MR_AVX2,
        (true, Isa::Neon) => MR_NEON,
        _ => MR_PORTABLE,
    }
}

/// How many panels of `B` one tile of `rows` rows spans for `F` on `isa`: a tile of few rows
/// (down to a single one, a matrix-vector product) takes several panels at once, so it still
/// keeps enough independent sums in flight to hide the multiply-add latency.
pub(crate) fn panels_per_tile<F: Real>(isa: Isa, rows: usize) -> usize {
    match (is_f32::<F>(), isa) {
        (true, Isa::Avx512) if rows <= 2 => 4,
        (true, Isa::Avx512) if rows <= 4 => 2,
        (true, Isa::Avx2 | Isa::Neon) if rows == 1 => 2,
        _ => 1,
    }
}

fn is_f32<F: 'static>() -> bool {
    std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()
}

/// Computes one tile of `rows` rows (`1 ..= mr::<F>(isa)`) and `panels` panels
/// (a power of two up to [`panels_per_tile`]) of `NR` columns (see the module docs).
///
/// # Safety
/// `a` holds elements `(r, k)` for `r < rows`, `k < kc` (a packed panel of `mr::<F>(isa)`
/// lanes, which is one block, or rows of `A` read in place). `b` is the first of
/// `panels` packed panels of `B`, `b_stride` values apart, each holding `kc · NR` values. `c`
/// points at `rows` rows of `panels · NR` values each, `ldc` apart, valid for reads and writes;
/// a [`TileInit::Bias`] address holds `panels · NR` values; `isa` is supported by this
/// processor.
///
/// Always inlined into the GEMM's loop, so the tile's arguments reach the kernel from
/// registers: called out of line, it copied the caller's just-stored [`ARef`] with one wider
/// load right after those stores, where about a tenth of the seed forward's samples sat.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn tile<F: Real>(
    isa: Isa,
    rows: usize,
    panels: usize,
    kc: usize,
    a: ABlocks<F>,
    b: *const F,
    b_stride: usize,
    c: *mut F,
    ldc: usize,
    init: TileInit<F>,
) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if is_f32::<F>() && isa != Isa::Scalar {
        let init = match init {
            TileInit::Zero => TileInit::Zero,
            TileInit::Load => TileInit::Load,
            TileInit::Bias(p) => TileInit::Bias(p.cast::<f32>()),
        };
        let cast = |a: ARef<F>| ARef {
            ptr: a.ptr.cast::<f32>(),
            rs: a.rs,
            ks: a.ks,
        };
        let a = ABlocks {
            head: cast(a.head),
            split: a.split,
            tail: cast(a.tail),
        };
        let (b, c) = (b.cast::<f32>(), c.cast::<f32>());
        let args = Args {
            kc,
            a,
            b,
            b_stride,
            c,
            ldc,
            init,
        };
        // SAFETY (every arm): the caller's contract; F is f32, so the casts change nothing.
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => return x86::avx512(rows, panels, &args),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => return x86::avx2(rows, panels, &args),
                #[cfg(target_arch = "aarch64")]
                Isa::Neon => return arm::neon(rows, panels, &args),
                // Another architecture's set, never supported here (the GEMM runs the
                // portable kernel instead).
                _ => {}
            }
        }
    }
    let _ = (isa, panels, b_stride);
    // SAFETY: the caller's contract, for the portable kernel's one panel.
    unsafe { tile_portable(rows, kc, a, b, c, ldc, init) }
}

/// The portable kernel: plain loops the compiler vectorises for the baseline target; one panel,
/// `rows ≤ MR_PORTABLE`.
///
/// # Safety
/// As [`tile`].
unsafe fn tile_portable<F: Real>(
    rows: usize,
    kc: usize,
    a: ABlocks<F>,
    b: *const F,
    c: *mut F,
    ldc: usize,
    init: TileInit<F>,
) {
    let mut acc = [[F::zero(); NR]; MR_PORTABLE];
    for (r, row) in acc.iter_mut().enumerate().take(rows) {
        match init {
            TileInit::Zero => {}
            // SAFETY: the tile and the bias row hold NR values per row (the caller's contract).
            TileInit::Load => {
                row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) })
            }
            TileInit::Bias(p) => row.copy_from_slice(unsafe { std::slice::from_raw_parts(p, NR) }),
        }
    }
    // SAFETY: b holds kc · NR values (the caller's contract).
    let b = unsafe { std::slice::from_raw_parts(b, kc * NR) };
    for (k, b_k) in b.chunks_exact(NR).enumerate() {
        for (r, row) in acc.iter_mut().enumerate().take(rows) {
            // SAFETY: element (r, k) of A (the caller's contract).
            let a_rk = unsafe { a.get(r, k) };
            for (v, &b_kj) in row.iter_mut().zip(b_k) {
                *v += a_rk * b_kj;
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: the tile holds NR values per row, ldc apart (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) }.copy_from_slice(row);
    }
}

/// The arguments of [`tile`] after the shape, for the f32 vector kernels, passed to them by
/// reference (not copied once more on the way).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[derive(Clone, Copy)]
struct Args {
    kc: usize,
    a: ABlocks<f32>,
    b: *const f32,
    b_stride: usize,
    c: *mut f32,
    ldc: usize,
    init: TileInit<f32>,
}

/// A vector of `W` floats of one instruction set, as [`vector_tile`] uses it. The operations
/// are `unsafe` because they need the instruction set: they are inlined into a kernel compiled
/// for it.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
trait Lanes: Copy {
    /// Floats per vector.
    const W: usize;

    /// `x` in every lane.
    ///
    /// # Safety
    /// The processor has the instruction set.
    unsafe fn splat(x: f32) -> Self;

    /// `acc + a·b` in each lane, rounded once.
    ///
    /// # Safety
    /// As [`Lanes::splat`].
    unsafe fn fma(acc: Self, a: Self, b: Self) -> Self;

    /// `W` floats from `p`.
    ///
    /// # Safety
    /// As [`Lanes::splat`]; `p` is valid for reads of `W` floats.
    unsafe fn load(p: *const f32) -> Self;

    /// `v` to `W` floats at `p`.
    ///
    /// # Safety
    /// As [`Lanes::splat`]; `p` is valid for writes of `W` floats.
    unsafe fn store(p: *mut f32, v: Self);
}

/// The AVX2 and NEON kernels: `R` rows × `P` panels, in each panel the `V` vectors of `L::W`
/// columns from column `col`, in `R·P·V` accumulators. Step `k` broadcasts row `r`'s value of
/// `A` and adds its products with the row of `B` to the row's sums.
///
/// # Safety
/// As [`tile`] with `rows = R`, `panels = P`; `col + L::W·V ≤ NR`; the processor has `L`'s
/// instruction set, and the caller is compiled for it (this is inlined into it).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
unsafe fn vector_tile<L: Lanes, const R: usize, const P: usize, const V: usize>(
    g: &Args,
    col: usize,
) {
    let w = L::W;
    let Args {
        kc,
        a,
        b,
        b_stride,
        c,
        ldc,
        init,
    } = *g;
    // SAFETY (every block below): `col` columns into the panels, their tile of `C` and the
    // bias row, and the pointer ranges of the caller's contract; the instruction set is there.
    unsafe {
        let (b, c) = (b.add(col), c.add(col));
        let mut acc = [[[L::splat(0.0); V]; P]; R];
        match init {
            TileInit::Zero => {}
            TileInit::Load => {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (p, panel) in row.iter_mut().enumerate() {
                        for (v, x) in panel.iter_mut().enumerate() {
                            *x = L::load(c.add(r * ldc + p * NR + v * w));
                        }
                    }
                }
            }
            TileInit::Bias(bias) => {
                let bias = bias.add(col);
                for row in acc.iter_mut() {
                    for (p, panel) in row.iter_mut().enumerate() {
                        for (v, x) in panel.iter_mut().enumerate() {
                            *x = L::load(bias.add(p * NR + v * w));
                        }
                    }
                }
            }
        }
        // Each block of A in turn, the sums carried over in registers.
        let split = a.split.min(kc);
        for (a, k0, steps) in [(a.head, 0, split), (a.tail, split, kc - split)] {
            let rows: [*const f32; R] = std::array::from_fn(|r| a.ptr.wrapping_add(r * a.rs));
            for k in 0..steps {
                for (r, row) in acc.iter_mut().enumerate() {
                    let ar = L::splat(*rows[r].add(k * a.ks));
                    for (p, panel) in row.iter_mut().enumerate() {
                        for (v, x) in panel.iter_mut().enumerate() {
                            let at = p * b_stride + (k0 + k) * NR + v * w;
                            *x = L::fma(*x, ar, L::load(b.add(at)));
                        }
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (p, panel) in row.iter().enumerate() {
                for (v, &x) in panel.iter().enumerate() {
                    L::store(c.add(r * ldc + p * NR + v * w), x);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Args, MR_AVX512, NR, TileInit};

    /// Picks the AVX-512 kernel for a tile shape.
    ///
    /// # Safety
    /// As [`super::tile`]; the processor has AVX-512 F.
    pub(super) unsafe fn avx512(rows: usize, panels: usize, g: &Args) {
        // SAFETY: the caller's contract, for the shape each arm names.
        unsafe {
            match (rows, panels) {
                (1, 4) => avx512_tile::<1, 4>(g),
                (2, 4) => avx512_tile::<2, 4>(g),
                (3, 2) => avx512_tile::<3, 2>(g),
                (4, 2) => avx512_tile::<4, 2>(g),
                (1, 2) => avx512_tile::<1, 2>(g),
                (2, 2) => avx512_tile::<2, 2>(g),
                (1, _) => avx512_tile::<1, 1>(g),
                (2, _) => avx512_tile::<2, 1>(g),
                (3, _) => avx512_tile::<3, 1>(g),
                (4, _) => avx512_tile::<4, 1>(g),
                (5, _) => avx512_tile::<5, 1>(g),
                (6, _) => avx512_tile::<6, 1>(g),
                (7, _) => avx512_tile::<7, 1>(g),
                (8, _) => avx512_tile::<8, 1>(g),
                (9, _) => avx512_tile::<9, 1>(g),
                (10, _) => avx512_tile::<10, 1>(g),
                (11, _) => avx512_tile::<11, 1>(g),
                _ => avx512_tile::<12, 1>(g),
            }
        }
    }

    /// Picks the AVX2 kernel for a tile shape.
    ///
    /// # Safety
    /// As [`super::tile`]; the processor has AVX2 and FMA.
    pub(super) unsafe fn avx2(rows: usize, panels: usize, g: &Args) {
        // SAFETY: the caller's contract, for the shape each arm names.
        unsafe {
            match (rows, panels) {
                (1, 2) => avx2_tile::<1, 2, 4>(g, 0),
                (1, _) => avx2_tile::<1, 1, 4>(g, 0),
                (2, _) => avx2_tile::<2, 1, 4>(g, 0),
                (3, _) => avx2_halves::<3>(g),
                (4, _) => avx2_halves::<4>(g),
                (5, _) => avx2_halves::<5>(g),
                _ => avx2_halves::<6>(g),
            }
        }
    }

    /// `R` rows × `P` panels of 32 columns in `2·R·P` `zmm` accumulators.
    ///
    /// # Safety
    /// As [`super::tile`] with `rows = R`, `panels = P`; the processor has AVX-512 F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn avx512_tile<const R: usize, const P: usize>(g: &Args) {
        const W: usize = 16;
        const V: usize = NR / W;
        let Args {
            kc,
            a,
            b,
            b_stride,
            c,
            ldc,
            init,
        } = *g;
        let mut acc = [[[_mm512_setzero_ps(); V]; P]; R];
        // SAFETY (every block below): the pointer ranges of the caller's contract.
        match init {
            TileInit::Zero => {}
            TileInit::Load => {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (p, panel) in row.iter_mut().enumerate() {
                        for (v, x) in panel.iter_mut().enumerate() {
                            *x = unsafe { _mm512_loadu_ps(c.add(r * ldc + p * NR + v * W)) };
                        }
                    }
                }
            }
            TileInit::Bias(bias) => {
                for row in acc.iter_mut() {
                    for (p, panel) in row.iter_mut().enumerate() {
                        for (v, x) in panel.iter_mut().enumerate() {
                            *x = unsafe { _mm512_loadu_ps(bias.add(p * NR + v * W)) };
                        }
                    }
                }
            }
        }
        let head = a.head;
        let acc = if a.split >= kc && head.rs == 1 && head.ks == MR_AVX512 {
            // A packed panel: a step's values of A are adjacent, at fixed offsets from one
            // pointer, so the loop spends no instructions on their addresses (a 12-row tile in
            // L1: 197-210 GFLOP/s against ~182 in the general loop below, on one AVX-512 core).
            // SAFETY: element (r, k) of the panel (the caller's contract).
            unsafe {
                avx512_k_loop(acc, kc, b, b_stride, |k, r| {
                    *head.ptr.add(k * MR_AVX512 + r)
                })
            }
        } else {
            // Each block of A in turn, the sums carried over in registers.
            let split = a.split.min(kc);
            let mut acc = acc;
            for (a, k0, steps) in [(a.head, 0, split), (a.tail, split, kc - split)] {
                if steps == 0 {
                    continue;
                }
                let rows: [*const f32; R] = std::array::from_fn(|r| a.ptr.wrapping_add(r * a.rs));
                // SAFETY: element (r, k) of the block and rows k0 .. of the panels (the
                // caller's contract).
                acc = unsafe {
                    avx512_k_loop(acc, steps, b.add(k0 * NR), b_stride, |k, r| {
                        *rows[r].add(k * a.ks)
                    })
                };
            }
            acc
        };
        for (r, row) in acc.iter().enumerate() {
            for (p, panel) in row.iter().enumerate() {
                for (v, &x) in panel.iter().enumerate() {
                    unsafe { _mm512_storeu_ps(c.add(r * ldc + p * NR + v * W), x) };
                }
            }
        }
    }

    /// The `kc` steps of [`avx512_tile`]'s sums: `acc[r][p][v] += a_k(k, r) · B[k]` over the
    /// `P` panels from `b`, `b_stride` apart, for `k < kc`, in order.
    ///
    /// # Safety
    /// As [`super::tile`]; `a_k(k, r)` reads element `(r, k)` of A.
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[inline]
    unsafe fn avx512_k_loop<const R: usize, const P: usize, const V: usize>(
        mut acc: [[[__m512; V]; P]; R],
        kc: usize,
        b: *const f32,
        b_stride: usize,
        a_k: impl Fn(usize, usize) -> f32,
    ) -> [[[__m512; V]; P]; R] {
        const W: usize = 16;
        for k in 0..kc {
            // SAFETY: row k of the P panels (the caller's contract).
            let bv: [[__m512; V]; P] = std::array::from_fn(|p| {
                std::array::from_fn(|v| unsafe {
                    _mm512_loadu_ps(b.add(p * b_stride + k * NR + v * W))
                })
            });
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm512_set1_ps(a_k(k, r));
                for (panel, bp) in row.iter_mut().zip(&bv) {
                    for (x, &bv) in panel.iter_mut().zip(bp) {
                        *x = _mm512_fmadd_ps(ar, bv, *x);
                    }
                }
            }
        }
        acc
    }

    /// One panel of `R` rows as two tiles of 16 columns each.
    ///
    /// # Safety
    /// As [`super::tile`] with `rows = R`, `panels = 1`; the processor has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_halves<const R: usize>(g: &Args) {
        // SAFETY: the caller's contract; each half lies inside the panel.
        unsafe {
            avx2_tile::<R, 1, 2>(g, 0);
            avx2_tile::<R, 1, 2>(g, NR / 2);
        }
    }

    /// `R` rows × `P` panels, in each panel the `V` vectors of 8 columns from column `col`, in
    /// `R·P·V` `ymm` accumulators ([`super::vector_tile`]).
    ///
    /// # Safety
    /// As [`super::tile`] with `rows = R`, `panels = P`; `col + 8·V ≤ NR`; the processor has
    /// AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_tile<const R: usize, const P: usize, const V: usize>(g: &Args, col: usize) {
        // SAFETY: the caller's contract; inlined here, the vector operations have AVX2 and FMA.
        unsafe { super::vector_tile::<__m256, R, P, V>(g, col) }
    }

    impl super::Lanes for __m256 {
        const W: usize = 8;

        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the caller's contract (the processor has AVX).
            unsafe { _mm256_set1_ps(x) }
        }

        #[inline(always)]
        unsafe fn fma(acc: Self, a: Self, b: Self) -> Self {
            // SAFETY: the caller's contract (the processor has FMA).
            unsafe { _mm256_fmadd_ps(a, b, acc) }
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's contract.
            unsafe { _mm256_loadu_ps(p) }
        }

        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            // SAFETY: the caller's contract.
            unsafe { _mm256_storeu_ps(p, v) }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::{Args, NR};

    /// Picks the NEON kernel for a tile shape: one or two rows span whole panels (16 or 8
    /// accumulators), more rows take a panel in two halves of 16 columns (up to 24).
    ///
    /// # Safety
    /// As [`super::tile`]; the processor has NEON (every aarch64 processor does).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn neon(rows: usize, panels: usize, g: &Args) {
        // SAFETY: the caller's contract, for the shape each arm names.
        unsafe {
            match (rows, panels) {
                (1, 2) => neon_tile::<1, 2, 8>(g, 0),
                (1, _) => neon_tile::<1, 1, 8>(g, 0),
                (2, _) => neon_tile::<2, 1, 8>(g, 0),
                (3, _) => neon_halves::<3>(g),
                (4, _) => neon_halves::<4>(g),
                (5, _) => neon_halves::<5>(g),
                _ => neon_halves::<6>(g),
            }
        }
    }

    /// One panel of `R` rows as two tiles of 16 columns each.
    ///
    /// # Safety
    /// As [`super::tile`] with `rows = R`, `panels = 1`.
    #[target_feature(enable = "neon")]
    unsafe fn neon_halves<const R: usize>(g: &Args) {
        // SAFETY: the caller's contract; each half lies inside the panel.
        unsafe {
            neon_tile::<R, 1, 4>(g, 0);
            neon_tile::<R, 1, 4>(g, NR / 2);
        }
    }

    /// `R` rows × `P` panels, in each panel the `V` vectors of 4 columns from column `col`, in
    /// `R·P·V` accumulators ([`super::vector_tile`], as on AVX2).
    ///
    /// # Safety
    /// As [`super::tile`] with `rows = R`, `panels = P`; `col + 4·V ≤ NR`.
    #[target_feature(enable = "neon")]
    unsafe fn neon_tile<const R: usize, const P: usize, const V: usize>(g: &Args, col: usize) {
        // SAFETY: the caller's contract; inlined here, the vector operations have NEON.
        unsafe { super::vector_tile::<float32x4_t, R, P, V>(g, col) }
    }

    impl super::Lanes for float32x4_t {
        const W: usize = 4;

        #[inline(always)]
        unsafe fn splat(x: f32) -> Self {
            // SAFETY: the caller's contract (the processor has NEON).
            unsafe { vdupq_n_f32(x) }
        }

        #[inline(always)]
        unsafe fn fma(acc: Self, a: Self, b: Self) -> Self {
            // SAFETY: as above; `vfmaq_f32` rounds once.
            unsafe { vfmaq_f32(acc, a, b) }
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's contract.
            unsafe { vld1q_f32(p) }
        }

        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            // SAFETY: the caller's contract.
            unsafe { vst1q_f32(p, v) }
        }
    }
}
