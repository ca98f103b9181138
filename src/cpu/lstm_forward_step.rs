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
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Zip, s};

use crate::real::Real;

/// Runs one step for the whole batch.
///
/// * `xproj_t` `[B, 4H]`: this step's input projection (bias `b_ih` included).
/// * `h_prev`, `c_prev` `[B, H]`: the state after the previous step.
/// * `w_hh` `[4H, H]`, `b_hh` `[4H]`: PyTorch layout.
/// * `gates` `[B, 4H]` (out): `i, f, g, o` after their nonlinearities, kept for backward.
/// * `c`, `h` `[B, H]` (out): the new state.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward_step<F: Real>(
    xproj_t: ArrayView2<'_, F>,
    h_prev: ArrayView2<'_, F>,
    c_prev: ArrayView2<'_, F>,
    w_hh: ArrayView2<'_, F>,
    b_hh: ArrayView1<'_, F>,
    mut gates: ArrayViewMut2<'_, F>,
    mut c: ArrayViewMut2<'_, F>,
    mut h: ArrayViewMut2<'_, F>,
) {
    let hidden = c.ncols();
    // a = xproj_t + b_hh + h_prev · W_hhᵀ, accumulated in place in `gates`.
    Zip::from(gates.rows_mut())
        .and(xproj_t.rows())
        .for_each(|mut a, xp| {
            Zip::from(&mut a)
                .and(&xp)
                .and(&b_hh)
                .for_each(|a, &x, &b| *a = x + b)
        });
    general_mat_mul(F::one(), &h_prev, &w_hh.t(), F::one(), &mut gates);

    let h4 = 4 * hidden;
    for ((mut a, c_prev), (mut c, mut h)) in gates
        .rows_mut()
        .into_iter()
        .zip(c_prev.rows())
        .zip(c.rows_mut().into_iter().zip(h.rows_mut()))
    {
        let (ai, af, ag, ao) = a.multi_slice_mut((
            s![..hidden],
            s![hidden..2 * hidden],
            s![2 * hidden..3 * hidden],
            s![3 * hidden..h4],
        ));
        Zip::from(ai)
            .and(af)
            .and(ag)
            .and(ao)
            .and(&c_prev)
            .and(&mut c)
            .for_each(|i, f, g, o, &c_prev, c| {
                *i = i.sigmoid();
                *f = f.sigmoid();
                *g = g.tanh_();
                *o = o.sigmoid();
                *c = *f * c_prev + *i * *g;
            });
        Zip::from(&mut h)
            .and(a.slice(s![3 * hidden..h4]))
            .and(&c)
            .for_each(|h, &o, &c| *h = o * c.tanh_());
    }
}
