//! One forward timestep, twin of `shaders/lstm_forward_step.wgsl`.
//!
//! ```text
//! a   = xproj_t + b_hh + h_{t-1} · W_hhᵀ          [B, 4H], blocks i, f, g, o
//! i   = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//! c_t = f ⊙ c_{t-1} + i ⊙ g
//! h_t = o ⊙ tanh(c_t)
//! ```
//! (`xproj_t = x_t · W_ihᵀ + b_ih` was computed for all steps at once beforehand.)

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use super::contiguous::with_row_major;
use super::isa::Isa;
use super::simd::simd_dispatch;
use crate::activations::MulAdd;
use crate::real::Real;

/// Runs one step for the whole batch.
///
/// * `xproj_t` `[B, 4H]`: this step's input projection (bias `b_ih` included).
/// * `h_prev`, `c_prev` `[B, H]`: the state after the previous step.
/// * `w_hh` `[4H, H]`, `b_hh` `[4H]`: PyTorch layout.
/// * `gates` `[B, 4H]` (out): `i, f, g, o` after their nonlinearities, kept for backward.
/// * `c`, `h` `[B, H]` (out): the new state.
///
/// Views may have any strides: the gate loops run on row-major copies of those that are not
/// row-major, and copied outputs are written back.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward_step<F: Real>(
    xproj_t: ArrayView2<'_, F>,
    h_prev: ArrayView2<'_, F>,
    c_prev: ArrayView2<'_, F>,
    w_hh: ArrayView2<'_, F>,
    b_hh: ArrayView1<'_, F>,
    mut gates: ArrayViewMut2<'_, F>,
    c: ArrayViewMut2<'_, F>,
    h: ArrayViewMut2<'_, F>,
) {
    let hidden = c.ncols();
    if hidden == 0 {
        return;
    }
    // a = xproj_t + b_hh + h_prev · W_hhᵀ, accumulated in place in `gates`.
    gates.assign(&xproj_t);
    gates += &b_hh;
    general_mat_mul(F::one(), &h_prev, &w_hh.t(), F::one(), &mut gates);

    with_row_major([c_prev], [gates, c, h], |[c_prev], [gates, c, h]| {
        lstm_forward_step_rows(Isa::detect(), gates, c_prev, c, h, hidden)
    });
}

simd_dispatch! {
    /// The nonlinearities and cell update on row-major slices: `gates` `[B, 4H]` (pre-activations
    /// in, activations out), the rest `[B, H]`. Compiled for the instruction set `isa` names
    /// (bit-identical results, see [`super::simd`]).
    pub(crate) fn lstm_forward_step_rows<F: Real>(
        gates: &mut [F],
        c_prev: &[F],
        c: &mut [F],
        h: &mut [F],
        hidden: usize,
    ) => rows;
}

/// One simple loop per operation, so each vectorises on its own (a single loop computing all
/// four gates of a unit defeats the vectoriser).
#[inline(always)]
fn rows<F: Real, M: MulAdd>(
    gates: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    h: &mut [F],
    hidden: usize,
) {
    for (((a, c_prev), c), h) in gates
        .chunks_exact_mut(4 * hidden)
        .zip(c_prev.chunks_exact(hidden))
        .zip(c.chunks_exact_mut(hidden))
        .zip(h.chunks_exact_mut(hidden))
    {
        // Blocks i, f, g, o: sigmoid on i and f (adjacent), tanh on g, sigmoid on o.
        let (ifg, ao) = a.split_at_mut(3 * hidden);
        let (aif, ag) = ifg.split_at_mut(2 * hidden);
        for v in aif.iter_mut() {
            *v = v.sigmoid_with::<M>();
        }
        for v in ag.iter_mut() {
            *v = v.tanh_stable_with::<M>();
        }
        for v in ao.iter_mut() {
            *v = v.sigmoid_with::<M>();
        }
        let (i, f) = aif.split_at(hidden);
        for u in 0..hidden {
            c[u] = f[u] * c_prev[u] + i[u] * ag[u];
        }
        for u in 0..hidden {
            h[u] = ao[u] * c[u].tanh_stable_with::<M>();
        }
    }
}
