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

simd_dispatch! {
    /// As [`lstm_forward_step_rows`] for one row and a range of `n` units: `ai`, `af`, `ag`,
    /// `ao` are those units' pre-activations in the four gate blocks (activations out),
    /// `c_prev`, `c`, `h` their states. Gives the same bits as the whole row.
    pub(crate) fn lstm_forward_step_units<F: Real>(
        ai: &mut [F],
        af: &mut [F],
        ag: &mut [F],
        ao: &mut [F],
        c_prev: &[F],
        c: &mut [F],
        h: &mut [F],
    ) => units;
}

/// The rows of a batch, each split into its gate blocks: `i` and `f` side by side take their
/// sigmoid in one loop (half the loops of [`units`], which counts when the rows are short).
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
        let (a_if, rest) = a.split_at_mut(2 * hidden);
        let (ag, ao) = rest.split_at_mut(hidden);
        sigmoid_all::<F, M>(a_if);
        tanh_all::<F, M>(ag);
        sigmoid_all::<F, M>(ao);
        let (ai, af) = a_if.split_at_mut(hidden);
        cell::<F, M>(ai, af, ag, ao, c_prev, c, h);
    }
}

/// One row's units: one simple loop per operation, so each vectorises on its own (a single
/// loop computing all four gates of a unit defeats the vectoriser).
#[inline(always)]
fn units<F: Real, M: MulAdd>(
    ai: &mut [F],
    af: &mut [F],
    ag: &mut [F],
    ao: &mut [F],
    c_prev: &[F],
    c: &mut [F],
    h: &mut [F],
) {
    // The activations of these units only, as many as `c` holds.
    let n = c.len();
    let (ai, af, ag, ao) = (&mut ai[..n], &mut af[..n], &mut ag[..n], &mut ao[..n]);
    sigmoid_all::<F, M>(ai);
    sigmoid_all::<F, M>(af);
    tanh_all::<F, M>(ag);
    sigmoid_all::<F, M>(ao);
    cell::<F, M>(ai, af, ag, ao, c_prev, c, h);
}

/// `v = σ(v)`, element by element.
#[inline(always)]
fn sigmoid_all<F: Real, M: MulAdd>(v: &mut [F]) {
    for v in v.iter_mut() {
        *v = v.sigmoid_with::<M>();
    }
}

/// `v = tanh(v)`, element by element.
#[inline(always)]
fn tanh_all<F: Real, M: MulAdd>(v: &mut [F]) {
    for v in v.iter_mut() {
        *v = v.tanh_stable_with::<M>();
    }
}

/// The cell update of one row's units from their activations: `c = f ⊙ c_prev + i ⊙ g`,
/// `h = o ⊙ tanh(c)`.
#[inline(always)]
fn cell<F: Real, M: MulAdd>(
    ai: &[F],
    af: &[F],
    ag: &[F],
    ao: &[F],
    c_prev: &[F],
    c: &mut [F],
    h: &mut [F],
) {
    // Every slice cut to the same length, so the loops below index without bounds checks.
    let n = c.len();
    let (ai, af, ag, ao) = (&ai[..n], &af[..n], &ag[..n], &ao[..n]);
    let (c_prev, h) = (&c_prev[..n], &mut h[..n]);
    for u in 0..n {
        c[u] = af[u] * c_prev[u] + ai[u] * ag[u];
    }
    for u in 0..n {
        h[u] = ao[u] * c[u].tanh_stable_with::<M>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::{Fused, Separate};
    use crate::cpu::simd::test_values as values;

    /// A gate loop writing `gates`, `c` and `h`.
    type Step<'a> = dyn Fn(&mut [f32], &mut [f32], &mut [f32]) + 'a;

    #[test]
    fn each_path_runs_the_fused_or_the_separate_gate_loop_as_its_instruction_set_has_fma() {
        // 5 rows of 37 units (no multiple of a vector), pre-activations in [-6, 6).
        let (batch, hidden) = (5, 37);
        let gates = values(batch * 4 * hidden, 1, -6.0, 6.0);
        let c_prev = values(batch * hidden, 2, -2.0, 2.0);
        let run = |step: &Step<'_>| {
            let (mut g, mut c, mut h) = (
                gates.clone(),
                vec![0.0; c_prev.len()],
                vec![0.0; c_prev.len()],
            );
            step(&mut g, &mut c, &mut h);
            [g, c, h]
        };
        let fused = run(&|g, c, h| rows::<f32, Fused>(g, &c_prev, c, h, hidden));
        let separate = run(&|g, c, h| rows::<f32, Separate>(g, &c_prev, c, h, hidden));
        // The two roundings differ on these inputs, so a path running the wrong one is seen.
        assert_ne!(fused, separate);
        for isa in Isa::supported() {
            let got = run(&|g, c, h| lstm_forward_step_rows(isa, g, &c_prev, c, h, hidden));
            let want = if isa == Isa::Scalar {
                &separate
            } else {
                &fused
            };
            for (name, (got, want)) in ["gates", "c", "h"].iter().zip(got.iter().zip(want)) {
                let bad = got
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert!(bad.is_none(), "{isa} {name}: differs at {bad:?}");
            }
        }
    }
}
