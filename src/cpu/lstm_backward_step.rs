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
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::contiguous::with_row_major;
use super::isa::Isa;
use super::simd::simd_dispatch;
use crate::activations::MulAdd;
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
///
/// Views may have any strides: the gate loops run on row-major copies of those that are not
/// row-major, and copied outputs are written back.
pub fn lstm_backward_step<F: Real>(
    dy_t: ArrayView2<'_, F>,
    from_later: FromLater<'_, F>,
    gates_t: ArrayView2<'_, F>,
    c_t: ArrayView2<'_, F>,
    c_prev: ArrayView2<'_, F>,
    dc: ArrayViewMut2<'_, F>,
    dgates: ArrayViewMut2<'_, F>,
) {
    let (batch, hidden) = dy_t.dim();
    if hidden == 0 {
        return;
    }
    let mut dh = Array2::<F>::zeros((batch, hidden));
    match from_later {
        FromLater::Last { dh_n } => dh.assign(&dh_n),
        FromLater::Step { dgates_next, w_hh } => {
            general_mat_mul(F::one(), &dgates_next, &w_hh, F::zero(), &mut dh)
        }
    }
    dh += &dy_t;

    with_row_major(
        [gates_t, c_t, c_prev, dh.view()],
        [dc, dgates],
        |[gates, c_t, c_prev, dh], [dc, dgates]| {
            lstm_backward_step_rows(Isa::detect(), gates, c_t, c_prev, dh, dc, dgates, hidden)
        },
    );
}

simd_dispatch! {
    /// The gate gradients on row-major slices (`gates`, `dgates` `[B, 4H]`, the rest `[B, H]`).
    /// Compiled for the instruction set `isa` names (bit-identical results, see [`super::simd`]).
    pub(crate) fn lstm_backward_step_rows<F: Real>(
        gates: &[F],
        c_t: &[F],
        c_prev: &[F],
        dh: &[F],
        dc: &mut [F],
        dgates: &mut [F],
        hidden: usize,
    ) => rows;
}

/// Simple elementwise loops over whole gate blocks, so each vectorises on its own.
#[inline(always)]
fn rows<F: Real, M: MulAdd>(
    gates: &[F],
    c_t: &[F],
    c_prev: &[F],
    dh: &[F],
    dc: &mut [F],
    dgates: &mut [F],
    hidden: usize,
) {
    let one = F::one();
    let rows = gates
        .chunks_exact(4 * hidden)
        .zip(dgates.chunks_exact_mut(4 * hidden))
        .zip(c_t.chunks_exact(hidden).zip(c_prev.chunks_exact(hidden)))
        .zip(dh.chunks_exact(hidden).zip(dc.chunks_exact_mut(hidden)));
    for (((g4, d4), (c_t, c_prev)), (dh, dc)) in rows {
        let (i, rest) = g4.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (g, o) = rest.split_at(hidden);
        let (di, rest) = d4.split_at_mut(hidden);
        let (df, rest) = rest.split_at_mut(hidden);
        let (dg, d_o) = rest.split_at_mut(hidden);
        // Every slice re-cut to exactly `hidden`, so the loops below carry no bounds checks
        // and vectorise.
        let (i, f, g, o) = (&i[..hidden], &f[..hidden], &g[..hidden], &o[..hidden]);
        let (c_t, c_prev, dh) = (&c_t[..hidden], &c_prev[..hidden], &dh[..hidden]);
        let (di, df, dg) = (&mut di[..hidden], &mut df[..hidden], &mut dg[..hidden]);
        let (d_o, dc) = (&mut d_o[..hidden], &mut dc[..hidden]);
        // One short loop per output, so each vectorises on its own (one loop writing five
        // slices of one buffer defeats the vectoriser's overlap checks). d_o holds tanh(c_t)
        // until it is turned into da_o; dc becomes dL/dc_t, then dL/dc_{t-1}.
        for u in 0..hidden {
            d_o[u] = c_t[u].tanh_stable_with::<M>();
        }
        for u in 0..hidden {
            let tc = d_o[u];
            dc[u] += dh[u] * o[u] * (one - tc * tc);
        }
        for u in 0..hidden {
            di[u] = dc[u] * g[u] * i[u] * (one - i[u]);
        }
        for u in 0..hidden {
            df[u] = dc[u] * c_prev[u] * f[u] * (one - f[u]);
        }
        for u in 0..hidden {
            dg[u] = dc[u] * i[u] * (one - g[u] * g[u]);
        }
        for u in 0..hidden {
            let tc = d_o[u];
            d_o[u] = dh[u] * tc * o[u] * (one - o[u]);
        }
        for u in 0..hidden {
            dc[u] *= f[u];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::{Fused, Separate};
    use crate::cpu::simd::test_values as values;

    #[test]
    fn each_path_runs_the_fused_or_the_separate_gate_loop_as_its_instruction_set_has_fma() {
        // 5 rows of 37 units (no multiple of a vector); activations in (0, 1), states in
        // [-3, 3) (tanh(c_t) is the one polynomial here).
        let (batch, hidden) = (5, 37);
        let gates = values(batch * 4 * hidden, 1, 0.01, 0.99);
        let (c_t, c_prev) = (
            values(batch * hidden, 2, -3.0, 3.0),
            values(batch * hidden, 3, -3.0, 3.0),
        );
        let (dh, dc0) = (
            values(batch * hidden, 4, -1.0, 1.0),
            values(batch * hidden, 5, -1.0, 1.0),
        );
        let run = |step: &dyn Fn(&mut [f32], &mut [f32])| {
            let (mut dc, mut dgates) = (dc0.clone(), vec![0.0; gates.len()]);
            step(&mut dc, &mut dgates);
            [dc, dgates]
        };
        let fused = run(&|dc, dg| rows::<f32, Fused>(&gates, &c_t, &c_prev, &dh, dc, dg, hidden));
        let separate =
            run(&|dc, dg| rows::<f32, Separate>(&gates, &c_t, &c_prev, &dh, dc, dg, hidden));
        // The two roundings differ on these inputs, so a path running the wrong one is seen.
        assert_ne!(fused, separate);
        for isa in Isa::supported() {
            let got = run(&|dc, dg| {
                lstm_backward_step_rows(isa, &gates, &c_t, &c_prev, &dh, dc, dg, hidden)
            });
            let want = if isa == Isa::Scalar {
                &separate
            } else {
                &fused
            };
            for (name, (got, want)) in ["dc", "dgates"].iter().zip(got.iter().zip(want)) {
                let bad = got
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert!(bad.is_none(), "{isa} {name}: differs at {bad:?}");
            }
        }
    }
}
