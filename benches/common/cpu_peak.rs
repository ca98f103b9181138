//! The CPU's multiply-add peak, the yardstick for the CPU path's figures: independent chains of
//! fused multiply-adds in the widest vectors an instruction set has, on every thread of the
//! pool at once.
//!
//! ```text
//! a_j ← a_j · M + (1 − M)    j < chains, ITERS times, each a vector of lanes floats
//! ```
//!
//! Enough independent chains to hide the multiply-add's latency (4 cycles on 2 units: 8 would
//! do), yet few enough to stay in registers (24 of AVX-512's 32, 12 of AVX2's 16, 24 of NEON's
//! 32), so the loop runs at the processor's multiply-add throughput. FLOP per thread:
//! `2 · chains · lanes · ITERS`.

use std::time::Instant;

use lstm_wgpu::cpu::isa::Isa;

/// Independent chains per thread in 512-bit registers.
const CHAINS_512: usize = 24;
/// Independent chains per thread in 256-bit registers.
const CHAINS_256: usize = 12;
/// Independent chains per thread in NEON's 128-bit registers.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
const CHAINS_128: usize = 24;
/// Steps of each chain per timed run (about 40 ms at 16 lanes and 200 GFLOP/s per core).
const ITERS: usize = 10_000_000;
/// The factor each step moves a chain towards 1 by (the chains stay finite and normal).
const M: f32 = 0.999;

/// The FMA peak of `isa` in GFLOP/s on every thread of rayon's pool, the best of three runs;
/// `None` for an instruction set without fused multiply-adds (the portable path), one the
/// processor lacks, or one these chains are not written for.
pub fn fma_gflops(isa: Isa) -> Option<f64> {
    let (chains_per_thread, lanes) = match isa {
        Isa::Avx512 => (CHAINS_512, 16),
        Isa::Avx2 => (CHAINS_256, 8),
        Isa::Neon => (CHAINS_128, 4),
        _ => return None,
    };
    if !isa.is_supported() {
        return None;
    }
    let best = (0..3)
        .map(|_| {
            let start = Instant::now();
            let sums = rayon::broadcast(|_| chains(isa));
            let seconds = start.elapsed().as_secs_f64();
            // Every chain ends near 1: a sum far from chains · lanes means one was skipped.
            assert!(
                sums.iter()
                    .all(|&s| (s - (chains_per_thread * lanes) as f32).abs() < 1.0),
                "FMA chains: {sums:?}"
            );
            seconds
        })
        .fold(f64::INFINITY, f64::min);
    let flop = 2.0 * (rayon::current_num_threads() * chains_per_thread * lanes * ITERS) as f64;
    Some(flop / best / 1e9)
}

/// One thread's chains on `isa` (AVX-512, AVX2 or NEON, supported): the sum of their final
/// values.
fn chains(isa: Isa) -> f32 {
    // SAFETY (every arm): `fma_gflops` checked that the processor has the instruction set.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::avx512() },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::avx2() },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { arm::neon() },
        _ => unreachable!("no FMA chains for {isa}"),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{CHAINS_256, CHAINS_512, ITERS, M};

    /// The AVX-512 chains: the sum of their final values. The sum is taken in vectors, not
    /// with a closure per chain: a closure does not inherit the target features, and passing it
    /// the chains put them in memory, inside the loop too.
    ///
    /// # Safety
    /// The processor has AVX-512 F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512() -> f32 {
        let (m, c) = (_mm512_set1_ps(M), _mm512_set1_ps(1.0 - M));
        // Starts that differ per chain, so that no two chains are the same computation.
        let mut a = [_mm512_setzero_ps(); CHAINS_512];
        for (j, x) in a.iter_mut().enumerate() {
            *x = _mm512_set1_ps(j as f32 / 64.0);
        }
        for _ in 0..ITERS {
            for x in a.iter_mut() {
                *x = _mm512_fmadd_ps(*x, m, c);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for x in a {
            sum = _mm512_add_ps(sum, x);
        }
        _mm512_reduce_add_ps(sum)
    }

    /// The AVX2 chains: the sum of their final values.
    ///
    /// # Safety
    /// The processor has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2() -> f32 {
        let (m, c) = (_mm256_set1_ps(M), _mm256_set1_ps(1.0 - M));
        let mut a = [_mm256_setzero_ps(); CHAINS_256];
        for (j, x) in a.iter_mut().enumerate() {
            *x = _mm256_set1_ps(j as f32 / 64.0);
        }
        for _ in 0..ITERS {
            for x in a.iter_mut() {
                *x = _mm256_fmadd_ps(*x, m, c);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for x in a {
            sum = _mm256_add_ps(sum, x);
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds the 8 floats of one vector.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::{CHAINS_128, ITERS, M};

    /// The NEON chains: the sum of their final values.
    ///
    /// # Safety
    /// The processor has NEON (every aarch64 processor does).
    #[target_feature(enable = "neon")]
    pub unsafe fn neon() -> f32 {
        let (m, c) = (vdupq_n_f32(M), vdupq_n_f32(1.0 - M));
        let mut a = [vdupq_n_f32(0.0); CHAINS_128];
        for (j, x) in a.iter_mut().enumerate() {
            *x = vdupq_n_f32(j as f32 / 64.0);
        }
        for _ in 0..ITERS {
            for x in a.iter_mut() {
                *x = vfmaq_f32(c, *x, m);
            }
        }
        let mut sum = vdupq_n_f32(0.0);
        for x in a {
            sum = vaddq_f32(sum, x);
        }
        vaddvq_f32(sum)
    }
}
