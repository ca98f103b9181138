//! The LSTM on the CPU: the reference every GPU kernel is checked against, and a usable path on
//! machines without a GPU.
//!
//! Per layer, forward (PyTorch `nn.LSTM` semantics, see [`crate::cpu::lstm_forward_step`]):
//! 1. one GEMM projects the inputs of all `T·B` rows at once: `xproj = x · W_ihᵀ + b_ih`;
//! 2. then, step by step, one GEMM `h_{t-1} · W_hhᵀ` and the gate nonlinearities.
//!
//! Backward through time (see [`crate::cpu::lstm_backward_step`]) runs the steps in reverse to
//! get every step's pre-activation gradients `dgates` `[T, B, 4H]`, then takes the weight
//! gradients as whole-sequence GEMMs over all `T·B` rows:
//! `dW_ih = dgatesᵀ · x`, `dW_hh = dgatesᵀ · h_{t-1}`, `db_ih = db_hh = Σ_rows dgates`,
//! `dx = dgates · W_ih`.
//!
//! Internally every sequence is time-major (`[T, B, ·]`), so each step's rows are one contiguous
//! block; inputs and outputs are converted at the edges.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, s};

use super::lstm_backward_step::{FromLater, lstm_backward_step};
use super::lstm_forward_step::lstm_forward_step;
use crate::error::Result;
use crate::lstm::{LstmGrads, LstmOutput, LstmState, Upstream, check_input, check_upstream};
use crate::real::Real;
use crate::weights::{LayerWeights, LstmWeights};

/// What one layer's forward pass keeps for backward, time-major.
#[derive(Debug, Clone)]
struct LayerTape<F> {
    /// The layer's input, `[T, B, I_l]`.
    input: Array3<F>,
    /// `h[0] = h0`, `h[t + 1] = h_t`: `[T + 1, B, H]`.
    h: Array3<F>,
    /// `c[0] = c0`, `c[t + 1] = c_t`: `[T + 1, B, H]`.
    c: Array3<F>,
    /// Gates after their nonlinearities, blocks i, f, g, o: `[T, B, 4H]`.
    gates: Array3<F>,
}

/// Activations saved by [`forward_train`] for [`backward`].
#[derive(Debug, Clone)]
pub struct CpuTape<F = f32> {
    batch: usize,
    seq: usize,
    layers: Vec<LayerTape<F>>,
}

impl<F> CpuTape<F> {
    /// Batch size `B` of the recorded forward pass.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sequence length `T` of the recorded forward pass.
    pub fn seq(&self) -> usize {
        self.seq
    }
}

/// `a` `[R, K]` · `bᵀ` (`b` `[N, K]`) into a new `[R, N]`.
fn matmul_nt<F: Real>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    let mut out = Array2::zeros((a.nrows(), b.nrows()));
    general_mat_mul(F::one(), a, &b.t(), F::zero(), &mut out);
    out
}

/// Views a standard-layout `[T, B, K]` array as `[T·B, K]`.
fn rows<F>(a: &Array3<F>) -> ArrayView2<'_, F> {
    let (t, b, k) = a.dim();
    // Every array passed here was allocated by this module in standard layout.
    a.view()
        .into_shape_with_order((t * b, k))
        .expect("time-major arrays are contiguous")
}

/// Runs one layer over a time-major input `[T, B, I_l]`.
fn layer_forward<F: Real>(
    w: &LayerWeights<F>,
    input: Array3<F>,
    h0: ArrayView2<'_, F>,
    c0: ArrayView2<'_, F>,
) -> LayerTape<F> {
    let (seq, batch, _) = input.dim();
    let hidden = w.weight_hh.ncols();
    // 1. Input projection for every step at once: [T·B, I] · W_ihᵀ + b_ih.
    let mut xproj = matmul_nt(&rows(&input), &w.weight_ih.view());
    xproj += &w.bias_ih;
    let xproj = xproj
        .into_shape_with_order((seq, batch, 4 * hidden))
        .expect("xproj is contiguous");

    // 2. The recurrence.
    let mut h = Array3::zeros((seq + 1, batch, hidden));
    let mut c = Array3::zeros((seq + 1, batch, hidden));
    let mut gates = Array3::zeros((seq, batch, 4 * hidden));
    h.index_axis_mut(Axis(0), 0).assign(&h0);
    c.index_axis_mut(Axis(0), 0).assign(&c0);
    for t in 0..seq {
        let (h_prev, mut h_next) = h.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        let (c_prev, c_next) = c.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
        lstm_forward_step(
            xproj.index_axis(Axis(0), t),
            h_prev.view(),
            c_prev.view(),
            w.weight_hh.view(),
            w.bias_hh.view(),
            gates.index_axis_mut(Axis(0), t),
            c_next,
            h_next.view_mut(),
        );
    }
    LayerTape { input, h, c, gates }
}

/// Forward pass keeping the activations backward needs.
///
/// * `x` `[B, T, I]`; `state` `h0`, `c0` `[L, B, H]` (zeros when `None`).
/// * Returns `y` `[B, T, H]`, `h_n`, `c_n` `[L, B, H]` and the tape.
pub fn forward_train<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<(LstmOutput<F>, CpuTape<F>)> {
    let config = *weights.config();
    let (batch, seq) = check_input(&config, &x, state)?;
    let zeros;
    let state = match state {
        Some(s) => s,
        None => {
            zeros = LstmState::zeros(&config, batch);
            &zeros
        }
    };
    let (l_count, hidden) = (config.num_layers, config.hidden_size);
    let mut h_n = Array3::zeros((l_count, batch, hidden));
    let mut c_n = Array3::zeros((l_count, batch, hidden));
    let mut layers: Vec<LayerTape<F>> = Vec::with_capacity(l_count);
    // Time-major copy of the input: [T, B, I].
    let mut input = x.permuted_axes([1, 0, 2]).as_standard_layout().into_owned();
    for (l, w) in weights.layers().iter().enumerate() {
        let tape = layer_forward(
            w,
            input,
            state.h.index_axis(Axis(0), l),
            state.c.index_axis(Axis(0), l),
        );
        h_n.index_axis_mut(Axis(0), l)
            .assign(&tape.h.index_axis(Axis(0), seq));
        c_n.index_axis_mut(Axis(0), l)
            .assign(&tape.c.index_axis(Axis(0), seq));
        input = tape.h.slice(s![1.., .., ..]).to_owned();
        layers.push(tape);
    }
    // `input` now holds the last layer's outputs, time-major.
    let y = input
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned();
    Ok((LstmOutput { y, h_n, c_n }, CpuTape { batch, seq, layers }))
}

/// Forward pass: `x` `[B, T, I]`, `state` `[L, B, H]` (zeros when `None`) → `y` `[B, T, H]`,
/// `h_n`, `c_n` `[L, B, H]`.
pub fn forward<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<LstmOutput<F>> {
    Ok(forward_train(weights, x, state)?.0)
}

/// Backpropagation through time over a tape from [`forward_train`] with the same `weights`.
///
/// Returns every gradient (`x`, `h0`, `c0` and all parameters, PyTorch layout); absent upstream
/// gradients count as zero.
pub fn backward<F: Real>(
    weights: &LstmWeights<F>,
    tape: &CpuTape<F>,
    upstream: &Upstream<F>,
) -> Result<LstmGrads<F>> {
    let config = *weights.config();
    let (batch, seq) = (tape.batch, tape.seq);
    check_upstream(&config, batch, seq, upstream)?;
    let (l_count, hidden) = (config.num_layers, config.hidden_size);

    let mut dh0 = Array3::zeros((l_count, batch, hidden));
    let mut dc0 = Array3::zeros((l_count, batch, hidden));
    let mut grads: Vec<LayerWeights<F>> = Vec::with_capacity(l_count);
    // Gradient arriving at each step's output from above, time-major [T, B, H].
    let mut dy = match &upstream.dy {
        Some(dy) => dy
            .view()
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned(),
        None => Array3::zeros((seq, batch, hidden)),
    };
    let zero_state = Array2::zeros((batch, hidden));

    for l in (0..l_count).rev() {
        let w = &weights.layers()[l];
        let lt = &tape.layers[l];
        let dh_n = upstream
            .dh_n
            .as_ref()
            .map_or(zero_state.view(), |d| d.index_axis(Axis(0), l));
        let mut dc = upstream
            .dc_n
            .as_ref()
            .map_or(zero_state.clone(), |d| d.index_axis(Axis(0), l).to_owned());
        let mut dgates = Array3::zeros((seq, batch, 4 * hidden));
        for t in (0..seq).rev() {
            let (later, mut now) = if t + 1 < seq {
                let (now, later) = dgates.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
                (Some(later), now)
            } else {
                (None, dgates.slice_mut(s![t, .., ..]))
            };
            let from_later = match &later {
                None => FromLater::Last { dh_n },
                Some(next) => FromLater::Step {
                    dgates_next: next.view(),
                    w_hh: w.weight_hh.view(),
                },
            };
            lstm_backward_step(
                dy.index_axis(Axis(0), t),
                from_later,
                lt.gates.index_axis(Axis(0), t),
                lt.c.index_axis(Axis(0), t + 1),
                lt.c.index_axis(Axis(0), t),
                dc.view_mut(),
                now.view_mut(),
            );
        }
        // dL/dh0 is step 0's gate gradients sent back through W_hh; dL/dc0 is what is left in dc.
        general_mat_mul(
            F::one(),
            &dgates.index_axis(Axis(0), 0),
            &w.weight_hh,
            F::zero(),
            &mut dh0.index_axis_mut(Axis(0), l),
        );
        dc0.index_axis_mut(Axis(0), l).assign(&dc);

        // Weight gradients: whole-sequence GEMMs over all T·B rows.
        let dg = rows(&dgates);
        let mut g = LayerWeights::zeros(&config, l);
        general_mat_mul(
            F::one(),
            &dg.t(),
            &rows(&lt.input),
            F::zero(),
            &mut g.weight_ih,
        );
        let h_prev = lt.h.slice(s![..seq, .., ..]);
        let h_prev = h_prev
            .into_shape_with_order((seq * batch, hidden))
            .expect("the first T steps of h are contiguous");
        general_mat_mul(F::one(), &dg.t(), &h_prev, F::zero(), &mut g.weight_hh);
        g.bias_ih = dg.sum_axis(Axis(0));
        g.bias_hh = g.bias_ih.clone();
        grads.push(g);

        // Gradient on this layer's input: dy of the layer below, or dx.
        let mut dx = Array2::zeros((seq * batch, config.layer_input_size(l)));
        general_mat_mul(F::one(), &dg, &w.weight_ih, F::zero(), &mut dx);
        dy = dx
            .into_shape_with_order((seq, batch, config.layer_input_size(l)))
            .expect("dx is contiguous");
    }
    grads.reverse();
    let dx = dy
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned();
    Ok(LstmGrads {
        x: Some(dx),
        h0: Some(dh0),
        c0: Some(dc0),
        layers: Some(grads),
    })
}
