//! The innermost loop of the CPU GEMM ([`super::blocked_gemm`]): one tile of `MR` rows by
//! [`NR`] columns of `C`, from packed panels of `A` and `B`:
//!
//! ```text
//! C[r, j] = init[r, j] + Σ_{k < kc} A[k][r] · B[k][j]        r < MR, j < NR
//! ```
//!
//! `A` is packed `[kc][MR]` and `B` `[kc][NR]`, both contiguous, so each step of `k` loads one
//! row of `B` (two 512-bit or four 256-bit vectors) and broadcasts `MR` values of `A`; the
//! `MR × NR` sums stay in registers for the whole `kc` loop. `init` is zero, the tile of `C`
//! itself, or a bias row `[NR]` repeated down the rows.
//!
//! Each sum is built the same way on every path: start from `init`, then one fused multiply-add
//! per `k`, in order. The AVX-512 and AVX2 kernels therefore give the same bits, and so does a
//! tile computed in one call or split over several calls along `k` (the partial sums pass
//! through `C` exactly). The portable kernel, for processors without FMA, multiplies and adds
//! separately: same order, one more rounding per step.

use super::isa::Isa;
use crate::real::Real;

/// Columns of a tile, the same on every path, so one packed `B` serves them all.
pub(crate) const NR: usize = 32;

/// Rows of a tile on the AVX-512 path: 8 rows × 2 vectors = 16 accumulators of 32 registers.
const MR_AVX512: usize = 8;
/// Rows of a tile on the AVX2 path: 3 rows × 4 vectors = 12 accumulators of 16 registers.
const MR_AVX2: usize = 3;
/// Rows of a tile of the portable kernel.
const MR_PORTABLE: usize = 4;
/// The largest `MR` of any path (for tiles on the stack).
pub(crate) const MR_MAX: usize = 8;

/// How a tile's sums start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TileInit<F> {
    /// From zero.
    Zero,
    /// From the tile of `C` itself (accumulate).
    Load,
    /// From a row of [`NR`] values at this address, the same for every row.
    Bias(*const F),
}

/// Rows of a tile for `F` on `isa`: the layout packed `A` must have.
pub(crate) fn mr<F: Real>(isa: Isa) -> usize {
    match (is_f32::<F>(), isa) {
        (true, Isa::Avx512) => MR_AVX512,
        (true, Isa::Avx2) => MR_AVX2,
        _ => MR_PORTABLE,
    }
}

fn is_f32<F: 'static>() -> bool {
    std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()
}

/// Computes one full tile (see the module docs).
///
/// # Safety
/// `a` holds `kc · mr::<F>(isa)` values, `b` holds `kc · NR`, `c` points at a tile of
/// `mr::<F>(isa)` rows of [`NR`] values each, `ldc` apart, valid for reads and writes; a
/// [`TileInit::Bias`] address holds [`NR`] values; `isa` is supported by this processor.
#[inline]
pub(crate) unsafe fn tile<F: Real>(
    isa: Isa,
    kc: usize,
    a: *const F,
    b: *const F,
    c: *mut F,
    ldc: usize,
    init: TileInit<F>,
) {
    #[cfg(target_arch = "x86_64")]
    if is_f32::<F>() {
        let init32 = match init {
            TileInit::Zero => TileInit::Zero,
            TileInit::Load => TileInit::Load,
            TileInit::Bias(p) => TileInit::Bias(p.cast::<f32>()),
        };
        let (a, b, c) = (a.cast::<f32>(), b.cast::<f32>(), c.cast::<f32>());
        match isa {
            // SAFETY: the caller's contract; F is f32, so the casts change nothing.
            Isa::Avx512 => return unsafe { x86::tile_avx512(kc, a, b, c, ldc, init32) },
            Isa::Avx2 => return unsafe { x86::tile_avx2(kc, a, b, c, ldc, init32) },
            Isa::Scalar => {}
        }
    }
    let _ = isa;
    // SAFETY: the caller's contract, for the portable tile of MR_PORTABLE rows.
    unsafe { tile_portable(kc, a, b, c, ldc, init) }
}

/// The portable kernel: plain loops the compiler vectorises for the baseline target.
///
/// # Safety
/// As [`tile`], with `MR_PORTABLE` rows.
unsafe fn tile_portable<F: Real>(
    kc: usize,
    a: *const F,
    b: *const F,
    c: *mut F,
    ldc: usize,
    init: TileInit<F>,
) {
    let mut acc = [[F::zero(); NR]; MR_PORTABLE];
    for (r, row) in acc.iter_mut().enumerate() {
        match init {
            TileInit::Zero => {}
            // SAFETY: the tile and the bias row hold NR values per row (the caller's contract).
            TileInit::Load => {
                row.copy_from_slice(unsafe { std::slice::from_raw_parts(c.add(r * ldc), NR) })
            }
            TileInit::Bias(p) => row.copy_from_slice(unsafe { std::slice::from_raw_parts(p, NR) }),
        }
    }
    // SAFETY: a and b hold kc · MR and kc · NR values (the caller's contract).
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR_PORTABLE),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    for (a_k, b_k) in a.chunks_exact(MR_PORTABLE).zip(b.chunks_exact(NR)) {
        for (row, &a_rk) in acc.iter_mut().zip(a_k) {
            for (v, &b_kj) in row.iter_mut().zip(b_k) {
                *v += a_rk * b_kj;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: the tile holds NR values per row, ldc apart (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), NR) }.copy_from_slice(row);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR_AVX2, MR_AVX512, NR, TileInit};

    /// 8 rows × 32 columns in 16 `zmm` accumulators.
    ///
    /// # Safety
    /// As [`super::tile`], with 8 rows; the processor has AVX-512 F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn tile_avx512(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        init: TileInit<f32>,
    ) {
        const W: usize = 16;
        const V: usize = NR / W;
        let mut acc = [[_mm512_setzero_ps(); V]; MR_AVX512];
        // SAFETY (every block below): the pointer ranges of the caller's contract.
        match init {
            TileInit::Zero => {}
            TileInit::Load => {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = unsafe { _mm512_loadu_ps(c.add(r * ldc + v * W)) };
                    }
                }
            }
            TileInit::Bias(p) => {
                for row in acc.iter_mut() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = unsafe { _mm512_loadu_ps(p.add(v * W)) };
                    }
                }
            }
        }
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            let bv: [__m512; V] = std::array::from_fn(|v| unsafe { _mm512_loadu_ps(b.add(v * W)) });
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm512_set1_ps(unsafe { *a.add(r) });
                for (x, &bv) in row.iter_mut().zip(&bv) {
                    *x = _mm512_fmadd_ps(ar, bv, *x);
                }
            }
            a = unsafe { a.add(MR_AVX512) };
            b = unsafe { b.add(NR) };
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                unsafe { _mm512_storeu_ps(c.add(r * ldc + v * W), x) };
            }
        }
    }

    /// 3 rows × 32 columns in 12 `ymm` accumulators.
    ///
    /// # Safety
    /// As [`super::tile`], with 3 rows; the processor has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        init: TileInit<f32>,
    ) {
        const W: usize = 8;
        const V: usize = NR / W;
        let mut acc = [[_mm256_setzero_ps(); V]; MR_AVX2];
        // SAFETY (every block below): the pointer ranges of the caller's contract.
        match init {
            TileInit::Zero => {}
            TileInit::Load => {
                for (r, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = unsafe { _mm256_loadu_ps(c.add(r * ldc + v * W)) };
                    }
                }
            }
            TileInit::Bias(p) => {
                for row in acc.iter_mut() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = unsafe { _mm256_loadu_ps(p.add(v * W)) };
                    }
                }
            }
        }
        let (mut a, mut b) = (a, b);
        for _ in 0..kc {
            for (r, row) in acc.iter_mut().enumerate() {
                let ar = _mm256_set1_ps(unsafe { *a.add(r) });
                for (v, x) in row.iter_mut().enumerate() {
                    let bv = unsafe { _mm256_loadu_ps(b.add(v * W)) };
                    *x = _mm256_fmadd_ps(ar, bv, *x);
                }
            }
            a = unsafe { a.add(MR_AVX2) };
            b = unsafe { b.add(NR) };
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                unsafe { _mm256_storeu_ps(c.add(r * ldc + v * W), x) };
            }
        }
    }
}
