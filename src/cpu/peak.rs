//! The peak probe's FMA chains, twin of `fma_chains` in `shaders/peak.wgsl`:
//!
//! ```text
//! a_j ← fma(a_j, M, 1 − M)  (iters times, from chain_start(g, j))    j < 8, M = 0.999
//! out[g] = a_0 + a_1 + … + a_7                                        (a vec4 per invocation g)
//! ```
//!
//! The probe (`crate::gpu::peak`) runs the shader only to time it; this twin lets a test check
//! that the shader does the work the probe counts (every chain, every step).

/// The factor each step moves a chain towards 1 by.
const M: f32 = 0.999;

/// The start of chain `j` of invocation `g` (`chain_start` in the shader).
fn chain_start(g: u32, j: u32) -> [f32; 4] {
    let s = 1.0 / 128.0;
    [(g % 64) as f32 * s, j as f32 * s, (g % 7) as f32 * s, s]
}

/// `out[g]` of `fma_chains` for invocations `g < invocations` after `iters` steps:
/// `[invocations, 4]` row-major.
pub fn fma_chains(invocations: usize, iters: u32) -> Vec<f32> {
    let mut out = Vec::with_capacity(invocations * 4);
    for g in 0..invocations as u32 {
        let mut sum = [0.0f32; 4];
        for j in 0..8 {
            let mut a = chain_start(g, j);
            for _ in 0..iters {
                for v in &mut a {
                    *v = v.mul_add(M, 1.0 - M);
                }
            }
            // `a0 + a1 + … + a7` adds left to right, as here.
            for (s, v) in sum.iter_mut().zip(a) {
                *s += v;
            }
        }
        out.extend(sum);
    }
    out
}
