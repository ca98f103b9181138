//! Every `nn.LSTM` on the CPU: both directions, projected `h`, sequences of different lengths,
//! forward and backward. [`crate::cpu::lstm`] runs the plain LSTM (one direction, no
//! projection, one length) faster; this module runs all of them, the plain one included, and is
//! the reference for the general case.
//!
//! Each direction `d` of each layer runs its own recurrence over the layer's input. With
//! `lengths[b]` steps in sequence `b`, processing step `s` of direction `d` reads time
//!
//! ```text
//! t_b(s) = s                    forward direction (d = 0)
//! t_b(s) = lengths[b] - 1 - s   reverse direction (d = 1)
//! ```
//!
//! for `s < lengths[b]`, and the row is *finished* (masked) for `s ≥ lengths[b]`: its `h`, `c`
//! stay as they are and its output is 0. So `h_n`, `c_n` are each row's state after its last
//! step in either direction, as PyTorch's packed sequences give. An active row's step is
//!
//! ```text
//! a    = [x_t | h_{s-1}] · [W_ih | W_hh]ᵀ + (b_ih + b_hh)        [B, I_l + H_out] · [., 4H]
//! c_s  = f ⊙ c_{s-1} + i ⊙ g
//! r_s  = o ⊙ tanh(c_s)                                           [B, H]
//! h_s  = r_s · W_hrᵀ   (projected)   or   r_s                    [B, H_out]
//! y[b, t, d·H_out ..] = h_s
//! ```
//!
//! Layer `l > 0` reads `[forward | reverse]` of layer `l - 1` at each time, through dropout in
//! training passes that ask for it ([`crate::cpu::dropout`]; backward passes the gradient
//! through the same mask).
//!
//! Backward runs the processing steps in reverse. A finished row passes `dh`, `dc` through
//! unchanged (its state was copied) and has zero gate gradients; an active row gets
//! `dh += dy[b, t, d·H_out ..]`, then `dr = dh · W_hr` (projected), the step's gate gradients
//! as in [`crate::cpu::lstm_backward_step`], and `dh_{s-1} = dgates · W_hh`. The weight
//! gradients are whole-sequence products over all `T·B` rows of a direction:
//! `[dW_ih | dW_hh | db] = dgatesᵀ · [x | h_{s-1} | 1]`, `dW_hr = dhᵀ · r` (finished rows add
//! nothing: their `dgates` and masked `dh` are 0), and the input gradient `dgates · W_ih` goes
//! back to the times it was read from, both directions adding into the same `dx`.
//!
//! Sequences are stored time-major in processing order (`[T, B, ·]`, slot `s`), so each step's
//! rows are one contiguous block for the products.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut3, Axis, s};

use super::blocked_gemm::{GemmScratch, Init, PackedB, gemm, gemm_parallel};
use super::dropout::dropout_in_place;
use super::isa::Isa;
use super::lstm_backward_step::lstm_backward_step_rows;
use super::lstm_forward_step::lstm_forward_step_rows;
use crate::error::{Error, Result};
use crate::lstm::{
    Dropout, GradRequest, LstmGrads, LstmOutput, LstmState, Upstream, check_input, check_lengths,
    check_upstream,
};
use crate::real::Real;
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// The time step that processing step `s` of direction `d` reads in a sequence of `length`
/// steps, or `None` once the sequence is finished (`s ≥ length`).
pub fn time_of_step(d: usize, s: usize, length: usize) -> Option<usize> {
    (s < length).then(|| if d == 0 { s } else { length - 1 - s })
}

/// One direction of one layer over a batch, in processing order (slot `s`).
#[derive(Debug, Clone, Default)]
struct DirectionTape<F> {
    /// The input each row read at each step, `[T, B, I_l]` (0 for finished rows).
    x: Array3<F>,
    /// `h` before and after each step, `[T + 1, B, H_out]`; slot 0 is `h0`.
    h: Array3<F>,
    /// `c` before and after each step, `[T + 1, B, H]`; slot 0 is `c0`.
    c: Array3<F>,
    /// Gates after their nonlinearities, blocks i, f, g, o, `[T, B, 4H]`.
    gates: Array3<F>,
    /// `r = o ⊙ tanh(c)`, `[T, B, H]`, when the layer is projected (empty otherwise).
    r: Array3<F>,
}

/// Activations saved by [`forward_train`] for [`backward`].
#[derive(Debug, Clone, Default)]
pub struct GeneralTape<F = f32> {
    batch: usize,
    seq: usize,
    lengths: Vec<usize>,
    /// The dropout between layers in the recorded pass, if any.
    dropout: Option<Dropout>,
    /// Per layer and direction, index `l·D + d`.
    directions: Vec<DirectionTape<F>>,
}

impl<F> GeneralTape<F> {
    /// Batch size `B` of the recorded forward pass.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sequence length `T` of the recorded forward pass.
    pub fn seq(&self) -> usize {
        self.seq
    }

    /// Each sequence's length, `[B]` (all `T` when none were given).
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }
}

/// Checks the input and `lengths` (all `T` when `None`); returns the lengths.
fn prepare<F: Real>(
    config: &LstmConfig,
    x: &ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
) -> Result<Vec<usize>> {
    let (batch, seq) = check_input(config, x, state)?;
    match lengths {
        Some(lengths) => {
            check_lengths(lengths, batch, seq)?;
            Ok(lengths.to_vec())
        }
        None => Ok(vec![seq; batch]),
    }
}

/// `b_ih + b_hh` `[4H]`.
fn summed_bias<F: Real>(w: &LayerWeights<F>) -> Vec<F> {
    w.bias_ih
        .iter()
        .zip(&w.bias_hh)
        .map(|(&a, &b)| a + b)
        .collect()
}

/// Forward pass keeping the activations [`backward`] needs, on the instruction set `isa`.
///
/// * `x` `[B, T, I]`; `lengths` `[B]`, each in `1..=T` (all `T` when `None`); `state` `h0`
///   `[L·D, B, H_out]`, `c0` `[L·D, B, H]` (zeros when `None`); `dropout` on the output of
///   every layer but the last, with the masks of its `pass` ([`crate::cpu::dropout`]).
/// * Returns `y` `[B, T, D·H_out]` (0 past each length), `h_n` `[L·D, B, H_out]`, `c_n`
///   `[L·D, B, H]`, and the tape.
pub fn forward_train<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
    dropout: Option<&Dropout>,
) -> Result<(LstmOutput<F>, GeneralTape<F>)> {
    weights.validate()?;
    let config = *weights.config();
    let lengths = prepare(&config, &x, lengths, state)?;
    let (batch, seq, _) = x.dim();
    let zeros;
    let state = match state {
        Some(s) => s,
        None => {
            zeros = LstmState::zeros(&config, batch);
            &zeros
        }
    };
    let dirs = config.num_directions();
    let h_out = config.output_size();
    let mut h_n = Array3::zeros(state.h.raw_dim());
    let mut c_n = Array3::zeros(state.c.raw_dim());
    let mut directions = Vec::with_capacity(config.num_layers * dirs);
    let mut input = x.to_owned();
    for l in 0..config.num_layers {
        let mut output = Array3::zeros((batch, seq, dirs * h_out));
        for d in 0..dirs {
            let ld = l * dirs + d;
            let tape = direction_forward(
                isa,
                weights.layer(l, d),
                d,
                input.view(),
                &lengths,
                (
                    state.h.index_axis(Axis(0), ld),
                    state.c.index_axis(Axis(0), ld),
                ),
                output.slice_mut(s![.., .., d * h_out..(d + 1) * h_out]),
            );
            h_n.index_axis_mut(Axis(0), ld)
                .assign(&tape.h.index_axis(Axis(0), seq));
            c_n.index_axis_mut(Axis(0), ld)
                .assign(&tape.c.index_axis(Axis(0), seq));
            directions.push(tape);
        }
        if let (Some(d), true) = (dropout, l + 1 < config.num_layers) {
            let values = output
                .as_slice_mut()
                .expect("a new array is standard layout");
            dropout_in_place(values, d, l);
        }
        input = output;
    }
    let tape = GeneralTape {
        batch,
        seq,
        lengths,
        dropout: dropout.copied(),
        directions,
    };
    Ok((LstmOutput { y: input, h_n, c_n }, tape))
}

/// Inference: [`forward_train`] without keeping the tape.
pub fn forward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
) -> Result<LstmOutput<F>> {
    forward_train(isa, weights, x, lengths, state, None).map(|(out, _)| out)
}

/// One direction `d` of one layer: `input` `[B, T, I_l]`, the initial state `h0` `[B, H_out]`,
/// `c0` `[B, H]`; writes the direction's outputs into `y` `[B, T, H_out]` (0 past each
/// length) and returns its tape.
fn direction_forward<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    d: usize,
    input: ArrayView3<'_, F>,
    lengths: &[usize],
    (h0, c0): (ArrayView2<'_, F>, ArrayView2<'_, F>),
    mut y: ArrayViewMut3<'_, F>,
) -> DirectionTape<F> {
    let (batch, seq, inputs) = input.dim();
    let (four_h, h_out) = w.weight_hh.dim();
    let hidden = four_h / 4;
    let mut weights = PackedB::default();
    weights.pack(
        inputs + h_out,
        four_h,
        &[(0, 0, w.weight_ih.t()), (inputs, 0, w.weight_hh.t())],
    );
    let projection = w.weight_hr.as_ref().map(|w_hr| {
        let mut p = PackedB::default();
        p.pack(hidden, h_out, &[(0, 0, w_hr.t())]);
        p
    });
    let bias = summed_bias(w);
    let mut tape = DirectionTape {
        x: Array3::zeros((seq, batch, inputs)),
        h: Array3::zeros((seq + 1, batch, h_out)),
        c: Array3::zeros((seq + 1, batch, hidden)),
        gates: Array3::zeros((seq, batch, four_h)),
        r: Array3::zeros((if projection.is_some() { seq } else { 0 }, batch, hidden)),
    };
    tape.h.index_axis_mut(Axis(0), 0).assign(&h0);
    tape.c.index_axis_mut(Axis(0), 0).assign(&c0);
    let mut scratch = GemmScratch::default();
    for s in 0..seq {
        let times: Vec<_> = lengths.iter().map(|&n| time_of_step(d, s, n)).collect();
        for (b, t) in times.iter().enumerate() {
            if let Some(t) = *t {
                tape.x
                    .slice_mut(s![s, b, ..])
                    .assign(&input.slice(s![b, t, ..]));
            }
        }
        let (h_prev, mut h_next) = tape.h.multi_slice_mut((s![s, .., ..], s![s + 1, .., ..]));
        let (c_prev, mut c_next) = tape.c.multi_slice_mut((s![s, .., ..], s![s + 1, .., ..]));
        let mut a = tape.gates.index_axis_mut(Axis(0), s);
        gemm(
            isa,
            &[tape.x.index_axis(Axis(0), s), h_prev.view()],
            weights.all(),
            Init::Bias(&bias),
            &mut a,
            &mut scratch,
        );
        let c_prev_rows = c_prev.as_slice().expect("slots are contiguous");
        let c_rows = c_next.as_slice_mut().expect("slots are contiguous");
        let a_rows = a.as_slice_mut().expect("slots are contiguous");
        match &projection {
            None => {
                let h_rows = h_next.as_slice_mut().expect("slots are contiguous");
                lstm_forward_step_rows(isa, a_rows, c_prev_rows, c_rows, h_rows, hidden);
            }
            Some(w_hr) => {
                let mut r = tape.r.index_axis_mut(Axis(0), s);
                let r_rows = r.as_slice_mut().expect("slots are contiguous");
                lstm_forward_step_rows(isa, a_rows, c_prev_rows, c_rows, r_rows, hidden);
                gemm(
                    isa,
                    &[r.view()],
                    w_hr.all(),
                    Init::Zero,
                    &mut h_next,
                    &mut scratch,
                );
            }
        }
        for (b, t) in times.iter().enumerate() {
            match *t {
                Some(t) => y.slice_mut(s![b, t, ..]).assign(&h_next.row(b)),
                None => {
                    // A finished row keeps its state.
                    h_next.row_mut(b).assign(&h_prev.row(b));
                    c_next.row_mut(b).assign(&c_prev.row(b));
                }
            }
        }
    }
    tape
}

/// Backpropagation through time over a tape from [`forward_train`] with the same `weights`.
///
/// Returns the gradients `want` asks for: `x` `[B, T, I]` (0 past each length), `h0`
/// `[L·D, B, H_out]` and `c0` `[L·D, B, H]`, every parameter (PyTorch layout, index `l·D + d`);
/// the others are `None`. Absent upstream gradients count as zero; upstream gradients on `y`
/// past a sequence's length are ignored (those outputs are constant zeros).
pub fn backward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    tape: &GeneralTape<F>,
    upstream: &Upstream<F>,
    want: GradRequest,
) -> Result<LstmGrads<F>> {
    let config = *weights.config();
    let (batch, seq) = (tape.batch, tape.seq);
    check_upstream(&config, batch, seq, upstream)?;
    let dirs = config.num_directions();
    if tape.directions.len() != config.num_layers * dirs {
        return Err(Error::Shape {
            tensor: "tape layers × directions".into(),
            expected: vec![config.num_layers * dirs],
            actual: vec![tape.directions.len()],
        });
    }
    let h_out = config.output_size();
    let [h_shape, c_shape] = crate::lstm::state_shapes(&config, batch);
    let mut dh0 = Array3::zeros(h_shape);
    let mut dc0 = Array3::zeros(c_shape);
    let mut grads = vec![None; config.num_layers * dirs];
    let mut dy = match &upstream.dy {
        Some(dy) => dy.clone(),
        None => Array3::zeros((batch, seq, dirs * h_out)),
    };
    for l in (0..config.num_layers).rev() {
        let need_dx = l > 0 || want.x;
        let mut dx = Array3::zeros((batch, seq, config.layer_input_size(l)));
        for d in 0..dirs {
            let ld = l * dirs + d;
            let dh_n = upstream.dh_n.as_ref().map(|u| u.index_axis(Axis(0), ld));
            let dc_n = upstream.dc_n.as_ref().map(|u| u.index_axis(Axis(0), ld));
            let (dh, dc, g) = direction_backward(
                isa,
                weights.layer(l, d),
                d,
                &tape.directions[ld],
                &tape.lengths,
                dy.slice(s![.., .., d * h_out..(d + 1) * h_out]),
                (dh_n, dc_n),
                need_dx.then_some(&mut dx),
            );
            dh0.index_axis_mut(Axis(0), ld).assign(&dh);
            dc0.index_axis_mut(Axis(0), ld).assign(&dc);
            grads[ld] = Some(without_absent_biases(&config, g));
        }
        // The gradient on layer l's input reaches layer l - 1's output through its dropout.
        if let (Some(d), true) = (&tape.dropout, l > 0) {
            let values = dx.as_slice_mut().expect("a new array is standard layout");
            dropout_in_place(values, d, l - 1);
        }
        dy = dx;
    }
    let (h0, c0) = if want.state {
        (Some(dh0), Some(dc0))
    } else {
        (None, None)
    };
    Ok(LstmGrads {
        x: want.x.then_some(dy),
        h0,
        c0,
        layers: want.weights.then(|| {
            grads
                .into_iter()
                .map(|g| g.expect("every direction ran"))
                .collect()
        }),
    })
}

/// The backward pass of one direction `d` of one layer from the gradient on its outputs `dy`
/// `[B, T, H_out]` and on its final state (`dh_n` `[B, H_out]`, `dc_n` `[B, H]`, zero when
/// `None`). Adds the gradient on the layer's input into `dx` `[B, T, I_l]` when given; returns
/// `dL/dh0`, `dL/dc0` and the parameter gradients.
#[allow(clippy::too_many_arguments)]
fn direction_backward<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    d: usize,
    tape: &DirectionTape<F>,
    lengths: &[usize],
    dy: ArrayView3<'_, F>,
    (dh_n, dc_n): (Option<ArrayView2<'_, F>>, Option<ArrayView2<'_, F>>),
    dx: Option<&mut Array3<F>>,
) -> (Array2<F>, Array2<F>, LayerWeights<F>) {
    let (seq, batch, inputs) = tape.x.dim();
    let (four_h, h_out) = w.weight_hh.dim();
    let hidden = four_h / 4;
    let mut dh = dh_n.map_or_else(|| Array2::zeros((batch, h_out)), |v| v.to_owned());
    let mut dc = dc_n.map_or_else(|| Array2::zeros((batch, hidden)), |v| v.to_owned());
    let mut dgates = Array3::<F>::zeros((seq, batch, four_h));
    // dh of the active rows at each step (0 for finished rows), for dW_hr.
    let mut dh_steps =
        Array3::<F>::zeros((if w.weight_hr.is_some() { seq } else { 0 }, batch, h_out));
    let w_hh = packed(w.weight_hh.view());
    let w_hr = w.weight_hr.as_ref().map(|m| packed(m.view()));
    let mut dr = Array2::<F>::zeros((batch, hidden));
    let mut dh_prev = Array2::<F>::zeros((batch, h_out));
    let mut scratch = GemmScratch::default();
    for s in (0..seq).rev() {
        let times: Vec<_> = lengths.iter().map(|&n| time_of_step(d, s, n)).collect();
        for (b, t) in times.iter().enumerate() {
            if let Some(t) = *t {
                let mut row = dh.row_mut(b);
                row += &dy.slice(s![b, t, ..]);
            }
        }
        let dc_later = dc.clone();
        match &w_hr {
            None => dr.assign(&dh),
            Some(w_hr) => {
                let mut masked = dh_steps.index_axis_mut(Axis(0), s);
                for (b, t) in times.iter().enumerate() {
                    if t.is_some() {
                        masked.row_mut(b).assign(&dh.row(b));
                    }
                }
                gemm(
                    isa,
                    &[masked.view()],
                    w_hr.all(),
                    Init::Zero,
                    &mut dr.view_mut(),
                    &mut scratch,
                );
            }
        }
        let mut dg = dgates.index_axis_mut(Axis(0), s);
        lstm_backward_step_rows(
            isa,
            contiguous(&tape.gates.index_axis(Axis(0), s)),
            contiguous(&tape.c.index_axis(Axis(0), s + 1)),
            contiguous(&tape.c.index_axis(Axis(0), s)),
            dr.as_slice().expect("dr is standard layout"),
            dc.as_slice_mut().expect("dc is standard layout"),
            dg.as_slice_mut().expect("slots are contiguous"),
            hidden,
        );
        gemm(
            isa,
            &[dg.view()],
            w_hh.all(),
            Init::Zero,
            &mut dh_prev.view_mut(),
            &mut scratch,
        );
        for (b, t) in times.iter().enumerate() {
            if t.is_none() {
                // A finished row's state was copied: its gradients pass through.
                dg.row_mut(b).fill(F::zero());
                dc.row_mut(b).assign(&dc_later.row(b));
                dh_prev.row_mut(b).assign(&dh.row(b));
            }
        }
        std::mem::swap(&mut dh, &mut dh_prev);
    }
    let grads = direction_weight_grads(isa, w, tape, &dgates, &dh_steps);
    if let Some(dx) = dx {
        // dx at the times each step read: dgates · W_ih, finished rows adding nothing.
        let mut dx_steps = Array2::<F>::zeros((seq * batch, inputs));
        gemm_parallel(
            isa,
            &[rows(&dgates)],
            packed(w.weight_ih.view()).all(),
            Init::Zero,
            &mut dx_steps.view_mut(),
        );
        for s in 0..seq {
            for (b, &n) in lengths.iter().enumerate() {
                if let Some(t) = time_of_step(d, s, n) {
                    let mut row = dx.slice_mut(s![b, t, ..]);
                    row += &dx_steps.row(s * batch + b);
                }
            }
        }
    }
    (dh, dc, grads)
}

/// The parameter gradients of one direction: `[dW_ih | dW_hh | db] = dgatesᵀ · [x | h_{s-1} |
/// 1]` over all `T·B` rows, and `dW_hr = dhᵀ · r` when projected.
fn direction_weight_grads<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    tape: &DirectionTape<F>,
    dgates: &Array3<F>,
    dh_steps: &Array3<F>,
) -> LayerWeights<F> {
    let (seq, batch, inputs) = tape.x.dim();
    let (four_h, h_out) = w.weight_hh.dim();
    let h_prev = tape
        .h
        .slice(s![..seq, .., ..])
        .into_shape_with_order((seq * batch, h_out))
        .expect("the first T slots of h are contiguous");
    let ones = Array2::<F>::ones((seq * batch, 1));
    let mut operand = PackedB::default();
    operand.pack(
        seq * batch,
        inputs + h_out + 1,
        &[
            (0, 0, rows(&tape.x)),
            (0, inputs, h_prev),
            (0, inputs + h_out, ones.view()),
        ],
    );
    let mut dw = Array2::<F>::zeros((four_h, inputs + h_out + 1));
    gemm_parallel(
        isa,
        &[rows(dgates).t()],
        operand.all(),
        Init::Zero,
        &mut dw.view_mut(),
    );
    let bias = dw.column(inputs + h_out).to_owned();
    let weight_hr = w.weight_hr.as_ref().map(|w_hr| {
        let mut dw_hr = Array2::<F>::zeros(w_hr.raw_dim());
        gemm_parallel(
            isa,
            &[rows(dh_steps).t()],
            packed(rows(&tape.r)).all(),
            Init::Zero,
            &mut dw_hr.view_mut(),
        );
        dw_hr
    });
    LayerWeights {
        weight_ih: dw.slice(s![.., ..inputs]).to_owned(),
        weight_hh: dw.slice(s![.., inputs..inputs + h_out]).to_owned(),
        bias_ih: bias.clone(),
        bias_hh: bias,
        weight_hr,
    }
}

/// `g` with zero bias gradients when the model has no biases (`bias = false`): it has none to
/// learn.
fn without_absent_biases<F: Real>(config: &LstmConfig, mut g: LayerWeights<F>) -> LayerWeights<F> {
    if !config.bias {
        g.bias_ih.fill(F::zero());
        g.bias_hh.fill(F::zero());
    }
    g
}

/// `b` `[K, N]`, packed for [`gemm`].
fn packed<F: Real>(b: ArrayView2<'_, F>) -> PackedB<F> {
    let mut p = PackedB::default();
    p.pack(b.nrows(), b.ncols(), &[(0, 0, b)]);
    p
}

/// Views a standard-layout `[T, B, K]` array as `[T·B, K]`.
fn rows<F>(a: &Array3<F>) -> ArrayView2<'_, F> {
    let (t, b, k) = a.dim();
    a.view()
        .into_shape_with_order((t * b, k))
        .expect("tapes are standard layout")
}

/// A slot of a standard-layout array as a slice.
fn contiguous<'a, F>(v: &'a ArrayView2<'_, F>) -> &'a [F] {
    v.as_slice()
        .expect("slots of a standard-layout array are contiguous")
}
