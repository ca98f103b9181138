//! General matrix product, twin of `shaders/matmul.wgsl`, on the contract both share
//! ([`GemmSpec`], see [`crate::gemm`]):
//!
//! ```text
//! C[m, n] = Σ_k op(A)[m, k] · op(B)[k, n]   (+ bias[n])   (+ C[m, n])     m < M, n < N, k < K
//! ```
//!
//! `op(A)` is `A` `[M, K]` or, transposed, `Aᵀ` where `A` is stored `[K, M]`; likewise `op(B)` is
//! `B` `[K, N]` or `Bᵀ` of a stored `[N, K]`. Every matrix is row-major with its own leading
//! dimension and element offset, so one buffer can hold many tensors. A stored row index `r` of
//! `A` (and of `B`) may be remapped as `(r / group) · stride + r % group` ([`RowMap`]): this
//! reads, say, rows `b·T + t` of a `[B, T, ·]` tensor for `t < T-1` only, which is how
//! `dW_hh = Σ_t dgates_tᵀ · h_{t-1}` pairs each step with the previous step's hidden state.
//!
//! Written to be read, not to be fast: one dot product per element of `C`, its products added
//! in order of `k`, then the bias, then the old `C`. The kernel adds in the same order but with
//! fused multiply-adds (`fma`), so the two agree to rounding, not bit for bit.
//!
//! [`RowMap`]: crate::gemm::RowMap

use crate::error::Result;
use crate::gemm::GemmSpec;

/// Computes the product `spec` describes into `c`, reading `a`, `b` and `bias` (which may be
/// empty when `spec.bias` is `None`). Elements of `c` outside the `M x N` matrix are left as
/// they are.
///
/// Fails, before touching `c`, with the error of [`GemmSpec::check`] when a layout is invalid or
/// a buffer too short for it.
pub fn matmul(spec: &GemmSpec, a: &[f32], b: &[f32], bias: &[f32], c: &mut [f32]) -> Result<()> {
    spec.check(a.len(), b.len(), bias.len(), c.len())?;
    // Every index below is within its buffer: that is what `check` verified.
    for m in 0..spec.m {
        for n in 0..spec.n {
            let mut v = 0.0f32;
            for k in 0..spec.k {
                v += a[spec.a.index(m, k)] * b[spec.b.index(k, n)];
            }
            if let Some(off) = spec.bias {
                v += bias[off + n];
            }
            let at = spec.c.index(m, n);
            if spec.accumulate {
                v += c[at];
            }
            c[at] = v;
        }
    }
    Ok(())
}
