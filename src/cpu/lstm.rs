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
//! block; inputs and outputs are converted at the edges. Batch rows never interact in the
//! recurrence, so chunks of rows run on separate threads; GEMMs split their output rows. Neither
//! changes a single bit of the results.
//!
//! The free functions allocate what they need; [`CpuLstm`] keeps its buffers between calls of
//! the same shape, which matters on the hot path of training.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Dimension, s};
use rayon::prelude::*;

use super::lstm_backward_step::{FromLater, lstm_backward_step};
use super::lstm_forward_step::lstm_forward_step;
use super::parallel::{self, chunk_rows};
use crate::error::{Error, Result};
use crate::lstm::{
    GradRequest, Lstm, LstmGrads, LstmOutput, LstmState, Tape, TapeIssuer, Upstream, check_input,
    check_same_config, check_upstream,
};
use crate::real::Real;
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// One layer's activations, time-major; the buffers are reused across calls of the same shape.
#[derive(Debug, Clone, Default)]
struct LayerTape<F> {
    /// The layer's input, `[T, B, I_l]`.
    input: Array3<F>,
    /// Input projection `x · W_ihᵀ + b_ih`, `[T·B, 4H]` (working memory of the forward pass).
    xproj: Array2<F>,
    /// `h[0] = h0`, `h[t + 1] = h_t`: `[T + 1, B, H]`.
    h: Array3<F>,
    /// `c[0] = c0`, `c[t + 1] = c_t`: `[T + 1, B, H]`.
    c: Array3<F>,
    /// Gates after their nonlinearities, blocks i, f, g, o: `[T, B, 4H]`.
    gates: Array3<F>,
}

/// Activations saved by [`forward_train`] for [`backward`].
#[derive(Debug, Clone, Default)]
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

/// Working memory of [`backward_with`], reused across calls of the same shape.
#[derive(Debug, Clone, Default)]
pub struct BackwardScratch<F = f32> {
    /// Gradient arriving at the current layer's outputs, time-major `[T, B, H]`.
    dy: Array3<F>,
    /// Gradient of the current layer's input, time-major `[T, B, I_l]`.
    dx: Array3<F>,
    /// Pre-activation gradients of every step, `[T, B, 4H]`.
    dgates: Array3<F>,
    /// `dL/dc` carried between steps, `[B, H]`.
    dc: Array2<F>,
}

/// Makes `a` the given shape, reallocating only when it differs (contents are then stale).
fn resize_reusing<F: Real, D: Dimension>(a: &mut ndarray::Array<F, D>, shape: D) {
    if a.raw_dim() != shape {
        *a = ndarray::Array::zeros(shape);
    }
}

/// Views a standard-layout `[T, B, K]` array as `[T·B, K]`.
fn rows<F>(a: &Array3<F>) -> ArrayView2<'_, F> {
    let (t, b, k) = a.dim();
    // Every array passed here was allocated by this module in standard layout.
    a.view()
        .into_shape_with_order((t * b, k))
        .expect("time-major arrays are contiguous")
}

/// Runs one layer over `lt.input` (time-major `[T, B, I_l]`, already filled).
fn layer_forward<F: Real>(
    w: &LayerWeights<F>,
    lt: &mut LayerTape<F>,
    h0: ArrayView2<'_, F>,
    c0: ArrayView2<'_, F>,
) {
    let (seq, batch, _) = lt.input.dim();
    let hidden = w.weight_hh.ncols();
    // 1. Input projection for every step at once: [T·B, I] · W_ihᵀ + b_ih.
    resize_reusing(&mut lt.xproj, ndarray::Ix2(seq * batch, 4 * hidden));
    lt.xproj.assign(&w.bias_ih);
    parallel::gemm(
        F::one(),
        &rows(&lt.input),
        &w.weight_ih.t(),
        F::one(),
        &mut lt.xproj.view_mut(),
    );
    let xproj = lt
        .xproj
        .view()
        .into_shape_with_order((seq, batch, 4 * hidden))
        .expect("xproj is contiguous");

    // 2. The recurrence, each chunk of batch rows on its own thread.
    resize_reusing(&mut lt.h, ndarray::Ix3(seq + 1, batch, hidden));
    resize_reusing(&mut lt.c, ndarray::Ix3(seq + 1, batch, hidden));
    resize_reusing(&mut lt.gates, ndarray::Ix3(seq, batch, 4 * hidden));
    lt.h.index_axis_mut(Axis(0), 0).assign(&h0);
    lt.c.index_axis_mut(Axis(0), 0).assign(&c0);
    let chunk = chunk_rows(batch, seq * 4 * hidden * hidden);
    lt.h.axis_chunks_iter_mut(Axis(1), chunk)
        .zip(lt.c.axis_chunks_iter_mut(Axis(1), chunk))
        .zip(lt.gates.axis_chunks_iter_mut(Axis(1), chunk))
        .zip(xproj.axis_chunks_iter(Axis(1), chunk))
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|(((mut h, mut c), mut gates), xproj)| {
            for t in 0..seq {
                let (h_prev, h_next) = h.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
                let (c_prev, c_next) = c.multi_slice_mut((s![t, .., ..], s![t + 1, .., ..]));
                lstm_forward_step(
                    xproj.index_axis(Axis(0), t),
                    h_prev.view(),
                    c_prev.view(),
                    w.weight_hh.view(),
                    w.bias_hh.view(),
                    gates.index_axis_mut(Axis(0), t),
                    c_next,
                    h_next,
                );
            }
        });
}

/// Runs every layer into `tape`; returns `h_n`, `c_n` `[L, B, H]` (the outputs `y` stay in the
/// tape as the top layer's `h[1..]`).
pub(crate) fn forward_into_tape<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    tape: &mut CpuTape<F>,
) -> Result<(Array3<F>, Array3<F>)> {
    let config = *weights.config();
    let (batch, seq) = check_input(&config, &x, state)?;
    let (l_count, hidden) = (config.num_layers, config.hidden_size);
    let zeros;
    let state = match state {
        Some(s) => s,
        None => {
            zeros = LstmState::zeros(&config, batch);
            &zeros
        }
    };
    tape.batch = batch;
    tape.seq = seq;
    tape.layers.resize_with(l_count, LayerTape::default);

    let mut h_n = Array3::zeros((l_count, batch, hidden));
    let mut c_n = Array3::zeros((l_count, batch, hidden));
    for l in 0..l_count {
        let (below, rest) = tape.layers.split_at_mut(l);
        let lt = &mut rest[0];
        resize_reusing(
            &mut lt.input,
            ndarray::Ix3(seq, batch, config.layer_input_size(l)),
        );
        match below.last() {
            // Time-major copy of the input.
            None => lt.input.assign(&x.permuted_axes([1, 0, 2])),
            Some(prev) => lt.input.assign(&prev.h.slice(s![1.., .., ..])),
        }
        let w = &weights.layers()[l];
        layer_forward(
            w,
            lt,
            state.h.index_axis(Axis(0), l),
            state.c.index_axis(Axis(0), l),
        );
        h_n.index_axis_mut(Axis(0), l)
            .assign(&lt.h.index_axis(Axis(0), seq));
        c_n.index_axis_mut(Axis(0), l)
            .assign(&lt.c.index_axis(Axis(0), seq));
    }
    Ok((h_n, c_n))
}

/// Forward pass into a tape whose buffers are reused when the shape repeats.
///
/// * `x` `[B, T, I]`; `state` `h0`, `c0` `[L, B, H]` (zeros when `None`).
/// * Returns `y` `[B, T, H]`, `h_n`, `c_n` `[L, B, H]`.
pub fn forward_train_into<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    tape: &mut CpuTape<F>,
) -> Result<LstmOutput<F>> {
    let (h_n, c_n) = forward_into_tape(weights, x, state, tape)?;
    let last = &tape.layers[tape.layers.len() - 1];
    let y = last
        .h
        .slice(s![1.., .., ..])
        .permuted_axes([1, 0, 2])
        .as_standard_layout()
        .into_owned();
    Ok(LstmOutput { y, h_n, c_n })
}

/// Forward pass keeping the activations backward needs; see [`forward_train_into`].
pub fn forward_train<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<(LstmOutput<F>, CpuTape<F>)> {
    let mut tape = CpuTape::default();
    let out = forward_train_into(weights, x, state, &mut tape)?;
    Ok((out, tape))
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

/// Backpropagation through time over a tape from [`forward_train`] with the same `weights`,
/// using `scratch` for working memory.
///
/// Returns the gradients `want` asks for (`x`, `h0` and `c0`, all parameters, PyTorch layout);
/// the others are `None` (and `dx`, needed by nothing else, is then not computed). Absent
/// upstream gradients count as zero.
pub fn backward_with<F: Real>(
    weights: &LstmWeights<F>,
    tape: &CpuTape<F>,
    upstream: &Upstream<F>,
    want: GradRequest,
    scratch: &mut BackwardScratch<F>,
) -> Result<LstmGrads<F>> {
    let config = *weights.config();
    let (batch, seq) = (tape.batch, tape.seq);
    check_upstream(&config, batch, seq, upstream)?;
    check_tape_layers(&config, tape)?;
    let (l_count, hidden) = (config.num_layers, config.hidden_size);

    let mut dh0 = Array3::zeros((l_count, batch, hidden));
    let mut dc0 = Array3::zeros((l_count, batch, hidden));
    let mut grads: Vec<LayerWeights<F>> = Vec::with_capacity(l_count);
    let BackwardScratch { dy, dx, dgates, dc } = scratch;
    // Time-major, as everything inside.
    let dy_up = upstream
        .dy
        .as_ref()
        .map(|d| d.view().permuted_axes([1, 0, 2]));
    resize_reusing(dy, ndarray::Ix3(seq, batch, hidden));
    assign_or_zero(dy, dy_up);
    let zero_state = Array2::zeros((batch, hidden));

    for l in (0..l_count).rev() {
        let w = &weights.layers()[l];
        let lt = &tape.layers[l];
        let dh_n = upstream
            .dh_n
            .as_ref()
            .map_or(zero_state.view(), |d| d.index_axis(Axis(0), l));
        resize_reusing(dc, ndarray::Ix2(batch, hidden));
        assign_or_zero(dc, upstream.dc_n.as_ref().map(|d| d.index_axis(Axis(0), l)));
        layer_reverse_sweep(w, lt, dy.view(), dh_n, dc, dgates);
        // dL/dh0 is step 0's gate gradients sent back through W_hh; dL/dc0 is what is left in dc.
        parallel::gemm(
            F::one(),
            &dgates.index_axis(Axis(0), 0),
            &w.weight_hh.view(),
            F::zero(),
            &mut dh0.index_axis_mut(Axis(0), l),
        );
        dc0.index_axis_mut(Axis(0), l).assign(dc);
        grads.push(layer_weight_grads(&config, l, lt, dgates));

        // Gradient on this layer's input: the layer below's dy, or dx.
        if l == 0 && !want.x {
            break;
        }
        layer_input_grad(w, dgates, config.layer_input_size(l), dx);
        std::mem::swap(dy, dx);
    }
    grads.reverse();
    let x = want.x.then(|| {
        dy.view()
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned()
    });
    let (h0, c0) = if want.state {
        (Some(dh0), Some(dc0))
    } else {
        (None, None)
    };
    Ok(LstmGrads {
        x,
        h0,
        c0,
        layers: want.weights.then_some(grads),
    })
}

/// Checks that `tape` holds one layer per layer of `config`.
fn check_tape_layers<F>(config: &LstmConfig, tape: &CpuTape<F>) -> Result<()> {
    if tape.layers.len() != config.num_layers {
        return Err(Error::Shape {
            tensor: "tape layers".into(),
            expected: vec![config.num_layers],
            actual: vec![tape.layers.len()],
        });
    }
    Ok(())
}

/// Copies `src` into `dst` (same shape), or fills `dst` with zeros when there is no `src` (an
/// absent upstream gradient).
fn assign_or_zero<F: Real, D: Dimension>(
    dst: &mut ndarray::Array<F, D>,
    src: Option<ndarray::ArrayView<'_, F, D>>,
) {
    match src {
        Some(src) => dst.assign(&src),
        None => dst.fill(F::zero()),
    }
}

/// The reverse sweep of one layer: every step's pre-activation gradients into `dgates`
/// `[T, B, 4H]` (resized as needed, every element written).
///
/// * `dy` `[T, B, H]`: the gradient arriving at the layer's outputs, time-major.
/// * `dh_n` `[B, H]`: the gradient on the layer's last hidden state.
/// * `dc` `[B, H]` (in/out): `dL/dc_n` on entry, `dL/dc0` on exit.
///
/// Batch rows are split across threads as in the forward pass.
fn layer_reverse_sweep<F: Real>(
    w: &LayerWeights<F>,
    lt: &LayerTape<F>,
    dy: ArrayView3<'_, F>,
    dh_n: ArrayView2<'_, F>,
    dc: &mut Array2<F>,
    dgates: &mut Array3<F>,
) {
    let (seq, batch, hidden) = dy.dim();
    resize_reusing(dgates, ndarray::Ix3(seq, batch, 4 * hidden));
    let chunk = chunk_rows(batch, seq * 4 * hidden * hidden);
    dgates
        .axis_chunks_iter_mut(Axis(1), chunk)
        .zip(dc.axis_chunks_iter_mut(Axis(0), chunk))
        .zip(dy.axis_chunks_iter(Axis(1), chunk))
        .zip(dh_n.axis_chunks_iter(Axis(0), chunk))
        .zip(lt.gates.axis_chunks_iter(Axis(1), chunk))
        .zip(lt.c.axis_chunks_iter(Axis(1), chunk))
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|(((((mut dgates, mut dc), dy), dh_n), gates), c)| {
            for t in (0..seq).rev() {
                let (later, now) = if t + 1 < seq {
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
                    gates.index_axis(Axis(0), t),
                    c.index_axis(Axis(0), t + 1),
                    c.index_axis(Axis(0), t),
                    dc.view_mut(),
                    now,
                );
            }
        });
}

/// The parameter gradients of layer `l` from its tape and its `dgates` `[T, B, 4H]`, as
/// whole-sequence GEMMs over all `T·B` rows: `dW_ih = dgatesᵀ · x` `[4H, I_l]`,
/// `dW_hh = dgatesᵀ · h_{t-1}` `[4H, H]`, `db_ih = db_hh = Σ_rows dgates` `[4H]`.
fn layer_weight_grads<F: Real>(
    config: &LstmConfig,
    l: usize,
    lt: &LayerTape<F>,
    dgates: &Array3<F>,
) -> LayerWeights<F> {
    let (seq, batch, _) = dgates.dim();
    let hidden = config.hidden_size;
    let dg = rows(dgates);
    let mut g = LayerWeights::zeros(config, l);
    let gemm = |a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>, out: &mut Array2<F>| {
        parallel::gemm(F::one(), a, b, F::zero(), &mut out.view_mut())
    };
    gemm(&dg.t(), &rows(&lt.input), &mut g.weight_ih);
    let h_prev =
        lt.h.slice(s![..seq, .., ..])
            .into_shape_with_order((seq * batch, hidden))
            .expect("the first T steps of h are contiguous");
    gemm(&dg.t(), &h_prev, &mut g.weight_hh);
    g.bias_ih = dg.sum_axis(Axis(0));
    g.bias_hh = g.bias_ih.clone();
    g
}

/// The gradient on a layer's input, `dx = dgates · W_ih`: from `dgates` `[T, B, 4H]` into `dx`
/// `[T, B, I_l]` (time-major, resized as needed).
fn layer_input_grad<F: Real>(
    w: &LayerWeights<F>,
    dgates: &Array3<F>,
    input_size: usize,
    dx: &mut Array3<F>,
) {
    let (seq, batch, _) = dgates.dim();
    resize_reusing(dx, ndarray::Ix3(seq, batch, input_size));
    let mut dx_rows = dx
        .view_mut()
        .into_shape_with_order((seq * batch, input_size))
        .expect("dx is contiguous");
    parallel::gemm(
        F::one(),
        &rows(dgates),
        &w.weight_ih.view(),
        F::zero(),
        &mut dx_rows,
    );
}

/// Backpropagation through time over a tape from [`forward_train`]; see [`backward_with`].
pub fn backward<F: Real>(
    weights: &LstmWeights<F>,
    tape: &CpuTape<F>,
    upstream: &Upstream<F>,
) -> Result<LstmGrads<F>> {
    backward_with(
        weights,
        tape,
        upstream,
        GradRequest::ALL,
        &mut BackwardScratch::default(),
    )
}

/// An LSTM on the CPU that keeps its working memory between calls. It implements [`Lstm`], as
/// [`crate::gpu::GpuLstm`] does, with the same meaning.
///
/// ```
/// use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmWeights, Upstream, cpu::lstm::CpuLstm};
/// use lstm_wgpu::ndarray::Array3;
///
/// let weights = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 1)?, 0);
/// let mut lstm = CpuLstm::new(weights)?;
/// let x = Array3::<f32>::zeros((2, 5, 3)); // [B, T, I]
/// let (out, tape) = lstm.forward_train(x.view(), None)?;
/// let upstream = Upstream { dy: Some(Array3::ones(out.y.raw_dim())), ..Default::default() };
/// let grads = lstm.backward(&tape, &upstream, GradRequest::WEIGHTS)?;
/// assert_eq!(grads.layers.unwrap()[0].weight_hh.shape(), &[32, 8]);
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CpuLstm<F = f32> {
    weights: LstmWeights<F>,
    inference: CpuTape<F>,
    training: CpuTape<F>,
    scratch: BackwardScratch<F>,
    tapes: TapeIssuer,
}

impl<F: Real> CpuLstm<F> {
    /// Takes `weights` (checked).
    pub fn new(weights: LstmWeights<F>) -> Result<Self> {
        weights.validate()?;
        Ok(CpuLstm {
            weights,
            inference: CpuTape::default(),
            training: CpuTape::default(),
            scratch: BackwardScratch::default(),
            tapes: TapeIssuer::new(),
        })
    }

    /// The parameters, borrowed ([`Lstm::weights`] returns a copy).
    pub fn params(&self) -> &LstmWeights<F> {
        &self.weights
    }

    /// The parameters, to update in place (an optimizer step). Shapes must not change; they are
    /// checked again by the next call.
    pub fn params_mut(&mut self) -> &mut LstmWeights<F> {
        &mut self.weights
    }
}

impl<F: Real> Lstm<F> for CpuLstm<F> {
    fn config(&self) -> &LstmConfig {
        self.weights.config()
    }

    fn weights(&self) -> Result<LstmWeights<F>> {
        Ok(self.weights.clone())
    }

    fn set_weights(&mut self, weights: &LstmWeights<F>) -> Result<()> {
        weights.validate()?;
        check_same_config(self.weights.config(), weights.config())?;
        self.weights = weights.clone();
        Ok(())
    }

    fn forward(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>> {
        self.weights.validate()?;
        forward_train_into(&self.weights, x, state, &mut self.inference)
    }

    fn forward_train(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)> {
        self.weights.validate()?;
        let out = forward_train_into(&self.weights, x, state, &mut self.training)?;
        let tape = self.tapes.issue(self.training.batch, self.training.seq);
        Ok((out, tape))
    }

    fn backward(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<F>,
        want: GradRequest,
    ) -> Result<LstmGrads<F>> {
        self.tapes.check(tape)?;
        backward_with(
            &self.weights,
            &self.training,
            upstream,
            want,
            &mut self.scratch,
        )
    }
}
