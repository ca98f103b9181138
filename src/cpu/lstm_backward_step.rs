//! One backward timestep, twin of `shaders/lstm_backward_step.wgsl`.
//!
//! With `gates_t = (i, f, g, o)` and `c_t`, `c_{t-1}` saved by the forward pass:
//! ```text
//! dh    = dy_t + (t = T-1 ? dh_n : dgates_{t+1} · W_hh)
//! dc    = dc_later + dh ⊙ o ⊙ (1 - tanh²(c_t))         dc_later = dc_n at t = T-1
//! da_i  = dc ⊙ g ⊙ i(1 - i)
//! da_f  = dc ⊙ c_{t-1} ⊙ f(1 - f)
//! da_g  = dc ⊙ i ⊙ (1 - g²)
//! da_o  = dh ⊙ tanh(c_t) ⊙ o(1 - o)
//! dc_{t-1} = dc ⊙ f
//! ```
//! `dgates_t = (da_i, da_f, da_g, da_o)` are the gradients of the pre-activations; the weight
//! gradients are sums of them over all steps, taken afterwards as whole-sequence GEMMs.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};

use crate::real::Real;

/// Where the gradient on `h_t` from later in time comes from.
pub enum FromLater<'a, F> {
    /// The last step: the caller's `dh_n`, `[B, H]`.
    Last {
        /// `dL/dh_n` for this layer.
        dh_n: ArrayView2<'a, F>,
    },
    /// Any other step: step `t + 1`'s pre-activation gradients sent back through `W_hh`.
    Step {
        /// `dgates_{t+1}`, `[B, 4H]`.
        dgates_next: ArrayView2<'a, F>,
        /// `W_hh`, `[4H, H]`.
        w_hh: ArrayView2<'a, F>,
    },
}

/// Runs one backward step for the whole batch.
///
/// * `dy_t` `[B, H]`: gradient arriving at `h_t` from above (the output `y` or the next layer).
/// * `gates_t` `[B, 4H]`, `c_t`, `c_prev` `[B, H]`: saved by the forward pass.
/// * `dc` `[B, H]` (in/out): on entry `dL/dc_t` from later steps, on exit `dL/dc_{t-1}`.
/// * `dgates` `[B, 4H]` (out): `dL/da_t`, blocks i, f, g, o.
pub fn lstm_backward_step<F: Real>(
    dy_t: ArrayView2<'_, F>,
    from_later: FromLater<'_, F>,
    gates_t: ArrayView2<'_, F>,
    c_t: ArrayView2<'_, F>,
    c_prev: ArrayView2<'_, F>,
    mut dc: ArrayViewMut2<'_, F>,
    mut dgates: ArrayViewMut2<'_, F>,
) {
    let (batch, hidden) = dy_t.dim();
    let mut dh = Array2::<F>::zeros((batch, hidden));
    match from_later {
        FromLater::Last { dh_n } => dh.assign(&dh_n),
        FromLater::Step { dgates_next, w_hh } => {
            general_mat_mul(F::one(), &dgates_next, &w_hh, F::zero(), &mut dh)
        }
    }
    dh += &dy_t;

    let one = F::one();
    for ((gates, mut d), ((c_t, c_prev), (dh, mut dc))) in
        gates_t.rows().into_iter().zip(dgates.rows_mut()).zip(
            c_t.rows()
                .into_iter()
                .zip(c_prev.rows())
                .zip(dh.rows().into_iter().zip(dc.rows_mut())),
        )
    {
        let (i, f, g, o) = (
            gates.slice(s![..hidden]),
            gates.slice(s![hidden..2 * hidden]),
            gates.slice(s![2 * hidden..3 * hidden]),
            gates.slice(s![3 * hidden..]),
        );
        let (mut di, mut df, mut dg, mut d_o) = d.multi_slice_mut((
            s![..hidden],
            s![hidden..2 * hidden],
            s![2 * hidden..3 * hidden],
            s![3 * hidden..],
        ));
        for u in 0..hidden {
            let (i, f, g, o) = (i[u], f[u], g[u], o[u]);
            let tc = c_t[u].tanh_();
            let dc_u = dc[u] + dh[u] * o * (one - tc * tc);
            di[u] = dc_u * g * i * (one - i);
            df[u] = dc_u * c_prev[u] * f * (one - f);
            dg[u] = dc_u * i * (one - g * g);
            d_o[u] = dh[u] * tc * o * (one - o);
            dc[u] = dc_u * f;
        }
    }
}
