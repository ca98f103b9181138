//! The peak probe's FMA chains and load sums, twins of `fma_chains` and `load_storage` /
//! `load_texture` in `shaders/peak.wgsl`. The chains:
//!
//! ```text
//! a_j ← fma(a_j, M, 1 − M)  (iters times, from chain_start(g, j))    j < 8, M = 0.999
//! out[g] = a_0 + a_1 + … + a_7                                        (a vec4 per invocation g)
//! ```
//!
//! The load sums, over a grid of vec4s `width` wide (`[rows, width, 4]` row-major):
//!
//! ```text
//! out[g] = Σ_{j < iters} grid[(g / width) · iters + j, g % width]     (in order of j)
//! ```
//!
//! The probe (`crate::gpu::peak`) runs the shader only to time it; these twins let a test check
//! that the shader does the work the probe counts (every chain and step, every load).

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

/// `out[g]` of the load probes over `grid` (`[rows, width, 4]` row-major, `rows` a multiple of
/// `iters`): `[width · rows / iters, 4]` row-major.
pub fn load_sums(grid: &[f32], width: usize, iters: usize) -> Vec<f32> {
    let rows = grid.len() / (4 * width);
    let n = width * (rows / iters);
    let mut out = vec![0.0f32; 4 * n];
    for (g, sum) in out.chunks_exact_mut(4).enumerate() {
        let (x, y0) = (g % width, (g / width) * iters);
        for j in 0..iters {
            let at = 4 * ((y0 + j) * width + x);
            for (s, v) in sum.iter_mut().zip(&grid[at..at + 4]) {
                *s += v;
            }
        }
    }
    out
}
