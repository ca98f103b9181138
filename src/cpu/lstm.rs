//! The LSTM on the CPU: the reference every GPU kernel is checked against, and a usable path on
//! machines without a GPU.
//!
//! Forward (PyTorch `nn.LSTM` semantics, see [`crate::cpu::lstm_forward_step`]): at each step,
//! for each layer, one matrix product of the layer's input and previous hidden state against
//! both weight matrices at once, then the gate nonlinearities:
//!
//! ```text
//! a_t = [x_t | h_{t-1}] · [W_ih | W_hh]ᵀ + (b_ih + b_hh)      [B, I_l + H] · [I_l + H, 4H]
//! ```
//!
//! The weights are packed for the products once per call (`blocked_gemm`; [`CpuLstm`] keeps the
//! packing until its weights change). A layer with wide inputs (`W_ih` above 1 MiB, where its steps
//! keep `W_hh` in the cores' caches), and any layer of a batch of at most 4 rows, projects a whole
//! window of steps' inputs in one product first, then adds `h_{t-1} · W_hhᵀ` per step: the same
//! terms in the same order, so the same bits. Inference ([`forward`]) runs in windows of at most 64
//! steps (or 1024 rows of steps, for small batches), every layer through a window before the next,
//! so its memory beyond the output does not grow with `T`; training ([`forward_train`]) keeps every
//! step's states and gates on a tape (one window of `T` steps).
//!
//! Backward through time (see [`crate::cpu::lstm_backward_step`]) runs the steps in reverse to
//! get every step's pre-activation gradients `dgates` `[T, B, 4H]`, then takes the weight
//! gradients as whole-sequence products over all `T·B` rows:
//! `[dW_ih | dW_hh] = dgatesᵀ · [x | h_{t-1}]`, `db_ih = db_hh = Σ_rows dgates`,
//! `dx = dgates · W_ih`.
//!
//! Internally every sequence is time-major (`[T, B, ·]`), so each step's rows are one contiguous
//! block (except `x`, whose step `x_t` inference reads in place, rows `T·I` apart, where layer 0
//! does not project its inputs). Batch rows never interact in the recurrence, so chunks of rows run
//! on separate threads (one chunk, on the calling thread, when the work is small); a batch of one
//! or two rows, or of up to 32 rows when `W_hh` is larger than a core's cache, shares each step
//! between two threads by hidden units instead (`steps_by_units`); whole-sequence products split
//! their output rows. None of these changes a single bit of the results, and neither does the
//! instruction set ([`Isa`]) except the portable one, which rounds differently.
//!
//! The free functions allocate what they need; [`CpuLstm`] keeps its buffers between calls of
//! the same shape, which matters on the hot path of training.

use ndarray::{
    Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, Dimension, s,
};
use rayon::prelude::*;

use super::blocked_gemm::{GemmScratch, Init, PackedB, PackedRef, gemm, gemm_parallel};
use super::cache::l2_bytes;
use super::contiguous::assign_by_rows;
use super::general_lstm::{self, GeneralScratch, GeneralTape};
use super::isa::Isa;
use super::lstm_backward_step::lstm_backward_step_rows;
use super::lstm_forward_step::lstm_forward_step_rows;
use super::parallel::chunk_rows;
use super::steps_by_units::{layer_steps_by_units, splits_by_units};
use crate::error::{Error, Result};
use crate::lstm::{
    Dropout, GradRequest, Lstm, LstmGrads, LstmOutput, LstmState, Tape, TapeIssuer, Upstream,
    check_input, check_same_config, check_upstream,
};
use crate::real::Real;
use crate::stream::WeightsVersion;
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// One layer's states and gates over a window of `W` steps, time-major; reused across calls of
/// the same shape. Slot 0 holds the state before the window (`h0` for the first), slot `j + 1`
/// the state after its step `j`. On a tape the window is the whole sequence (`W = T`: `h[0] =
/// h0`, `h[t + 1] = h_t`); in inference it is a few steps, so memory does not grow with `T`.
#[derive(Debug, Clone, Default)]
struct LayerStates<F> {
    /// Hidden states, `[W + 1, B, H]`.
    h: Array3<F>,
    /// Cell states, `[W + 1, B, H]`.
    c: Array3<F>,
    /// Gates after their nonlinearities, blocks i, f, g, o: `[W, B, 4H]`; in inference, one
    /// step's `[1, B, 4H]` that every step reuses, unless the layer projects its inputs.
    gates: Array3<F>,
}

impl<F: Real> LayerStates<F> {
    /// Shapes the buffers for `slots` states and `gate_slots` steps of gates.
    fn resize(&mut self, slots: usize, gate_slots: usize, batch: usize, hidden: usize) {
        resize_reusing(&mut self.h, ndarray::Ix3(slots, batch, hidden));
        resize_reusing(&mut self.c, ndarray::Ix3(slots, batch, hidden));
        resize_reusing(&mut self.gates, ndarray::Ix3(gate_slots, batch, 4 * hidden));
    }
}

/// Activations saved by [`forward_train`] for [`backward`].
#[derive(Debug, Clone, Default)]
pub struct CpuTape<F = f32> {
    batch: usize,
    seq: usize,
    /// Layer 0's input, time-major `[T, B, I]` (layer `l > 0` reads layer `l - 1`'s `h`).
    input: Array3<F>,
    layers: Vec<LayerStates<F>>,
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

/// Working memory of [`forward_with`]: packed weights, a window of every layer's states and,
/// where layer 0 projects a window of inputs in one product, of its input.
#[derive(Debug, Clone, Default)]
pub struct ForwardScratch<F = f32> {
    packed: Vec<PackedLayer<F>>,
    x_window: Array3<F>,
    layers: Vec<LayerStates<F>>,
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
    /// `[dW_ih | dW_hh | db]` of the current layer, `[4H, I_l + H + 1]`.
    dw: Array2<F>,
    /// A column of ones `[T·B, 1]`, whose product with `dgatesᵀ` is the bias gradient.
    ones: Array2<F>,
    /// `W_hh` `[4H, H]`, `W_ih` `[4H, I_l]` and `[x | h_{t-1} | 1]` `[T·B, I_l + H + 1]`,
    /// packed.
    w_hh: PackedB<F>,
    w_ih: PackedB<F>,
    inputs: PackedB<F>,
}

/// One layer's weights packed for the forward pass, and `b_ih + b_hh` `[4H]`.
///
/// Usually `w = [W_ihᵀ; W_hhᵀ]` `[I_l + H, 4H]` and the step is one product,
/// `[x_t | h_{t-1}] · w`. When `W_ih` is too large to read again at every step (wide inputs,
/// unless the steps stream `W_hh` from L3 anyway: [`steps_keep_w_hh_cached`]),
/// `w_in = W_ihᵀ` `[I_l, 4H]` and `w = W_hhᵀ` `[H, 4H]`; then, and for batches too small to
/// reuse a step's read of `W_ih` over many rows ([`projects_inputs`]), the inputs of a whole
/// window of steps are projected in one product first and the steps read only `W_hhᵀ`. Both
/// schedules add the same terms in the same order (the bias, the input terms, then the hidden
/// terms), so they give the same bits.
#[derive(Debug, Clone, Default)]
struct PackedLayer<F> {
    w: PackedB<F>,
    w_in: Option<PackedB<F>>,
    bias: Vec<F>,
}

impl<F: Real> PackedLayer<F> {
    /// `W_ihᵀ` `[I_l, 4H]`.
    fn input_part(&self) -> PackedRef<'_, F> {
        match &self.w_in {
            Some(w_in) => w_in.all(),
            None => self.w.rows(0, self.w.k() - self.hidden()),
        }
    }

    /// `W_hhᵀ` `[H, 4H]`.
    fn hidden_part(&self) -> PackedRef<'_, F> {
        match &self.w_in {
            Some(_) => self.w.all(),
            None => self.w.rows(self.w.k() - self.hidden(), self.hidden()),
        }
    }

    fn hidden(&self) -> usize {
        self.w.n() / 4
    }
}

/// Batches of at most this many rows project their inputs a window at a time: a step's product
/// has too few rows to make reading `W_ih` at every step worth it, and the window's gates are
/// small. (Larger batches keep one step's gates in cache instead of a window's.)
const PROJECT_INPUTS_UP_TO_BATCH: usize = 4;

/// Whether layer `p` projects a window of inputs before its steps, for a batch of `batch` rows.
fn projects_inputs<F>(p: &PackedLayer<F>, batch: usize) -> bool {
    p.w_in.is_some() || batch <= PROJECT_INPUTS_UP_TO_BATCH
}

/// Whether inference copies a window of `x` time-major for the first of the `packed` layers:
/// where it projects the window's inputs, which it reads as one block of rows. Otherwise its
/// steps read each `x_t` (`[B, I]`, rows `T·I` apart in `x`) in place, as they would a copy.
fn copies_x<F>(packed: &[PackedLayer<F>], batch: usize) -> bool {
    packed.first().is_some_and(|p| projects_inputs(p, batch))
}

/// Above this many bytes of `W_ih`, a layer projects its inputs a window at a time rather than
/// reading `W_ih` at every step (half the L2 cache of common processors), unless its steps
/// stream `W_hh` from the shared cache anyway ([`steps_keep_w_hh_cached`]).
const PROJECT_INPUTS_ABOVE_BYTES: usize = 1 << 20;

/// Whether the steps of a layer whose `W_hh` has `bytes` keep it in the cores' L2 caches: whole,
/// or half of it on each core when a step is split by units. Where they do not, every step
/// reads all of `W_hh` from the shared L3 whatever else it reads, and adding `W_ih` to that
/// stream (one product per step, `[x_t | h_{t-1}] · [W_ihᵀ; W_hhᵀ]`) costs less than
/// projecting a window of inputs first and passing its gates through memory: at B32 I512 H512
/// on a Zen 4 EPYC (1 MiB of L2 per core), best of 30 forwards in three alternating runs,
/// 32.0-32.6 ms against 33.1-35.3.
fn steps_keep_w_hh_cached(bytes: usize) -> bool {
    bytes / 2 <= l2_bytes()
}

/// Packs every layer of `weights` into `packed` (reusing its allocations).
fn pack_layers<F: Real>(weights: &LstmWeights<F>, packed: &mut Vec<PackedLayer<F>>) {
    packed.resize_with(weights.layers().len(), PackedLayer::default);
    for (w, p) in weights.layers().iter().zip(packed.iter_mut()) {
        let (four_h, inputs) = w.weight_ih.dim();
        let hidden = w.weight_hh.ncols();
        if inputs * four_h * size_of::<F>() > PROJECT_INPUTS_ABOVE_BYTES
            && steps_keep_w_hh_cached(hidden * four_h * size_of::<F>())
        {
            let w_in = p.w_in.get_or_insert_with(PackedB::default);
            w_in.pack(inputs, four_h, &[(0, 0, w.weight_ih.t())]);
            p.w.pack(hidden, four_h, &[(0, 0, w.weight_hh.t())]);
        } else {
            p.w_in = None;
            p.w.pack(
                inputs + hidden,
                four_h,
                &[(0, 0, w.weight_ih.t()), (inputs, 0, w.weight_hh.t())],
            );
        }
        p.bias.clear();
        p.bias
            .extend(w.bias_ih.iter().zip(&w.bias_hh).map(|(&a, &b)| a + b));
    }
}

/// Steps per window of inference: as many as fit [`INFERENCE_WINDOW_BYTES`] of window buffers
/// (each step's inputs, gates, `h` and `c`), at least 1 and at most [`MAX_INFERENCE_WINDOW`]
/// or, for small batches, enough steps for [`MIN_INFERENCE_WINDOW_ROWS`] rows.
fn inference_window<F>(config: &LstmConfig, batch: usize, seq: usize) -> usize {
    let per_step = batch
        * (config.input_size.max(config.hidden_size) + 6 * config.hidden_size)
        * size_of::<F>()
        * config.num_layers;
    let longest = MAX_INFERENCE_WINDOW.max(MIN_INFERENCE_WINDOW_ROWS.div_ceil(batch.max(1)));
    (INFERENCE_WINDOW_BYTES / per_step.max(1)).clamp(1, longest.min(seq.max(1)))
}

/// Memory for the window buffers of inference.
const INFERENCE_WINDOW_BYTES: usize = 16 << 20;
/// The longest window of inference for batches of at least
/// `MIN_INFERENCE_WINDOW_ROWS / MAX_INFERENCE_WINDOW` rows.
const MAX_INFERENCE_WINDOW: usize = 64;
/// Rows (steps × batch) a window may always hold: a window's input projection is then one
/// product large enough to share among threads, even for a single sequence (64 rows of one
/// sequence would be one thread's work, once per window).
const MIN_INFERENCE_WINDOW_ROWS: usize = 1024;

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

/// A contiguous view as a slice (every view passed here is a block of whole rows of an array
/// this module allocated in standard layout).
fn slice<'a, F>(v: &'a ArrayView2<'_, F>) -> &'a [F] {
    v.as_slice()
        .expect("rows of a standard-layout array are contiguous")
}

/// As [`slice`], mutable.
fn slice_mut<'a, F>(v: &'a mut ArrayViewMut2<'_, F>) -> &'a mut [F] {
    v.as_slice_mut()
        .expect("rows of a standard-layout array are contiguous")
}

/// Runs the forward pass over `x` `[B, T, I]` from `state`, a window of `window` steps at a
/// time, every layer through a window before the next window (see [`LayerStates`]): a layer
/// that [`projects_inputs`] first projects the whole window's inputs in one product, then every
/// layer runs its steps. When `copies_x`, `x_window` (time-major `[window, B, I]`, filled here)
/// holds layer 0's input for the window; otherwise layer 0 reads each step's `x_t` from `x` in
/// place. `y` `[B, T, H]` is written when given. Returns the slot of the last state.
#[allow(clippy::too_many_arguments)]
fn run_forward<F: Real>(
    isa: Isa,
    packed: &[PackedLayer<F>],
    x: ArrayView3<'_, F>,
    state: &LstmState<F>,
    layers: &mut [LayerStates<F>],
    window: usize,
    copies_x: bool,
    x_window: &mut Array3<F>,
    mut y: Option<ArrayViewMut3<'_, F>>,
) -> usize {
    let seq = x.dim().1;
    for (l, ls) in layers.iter_mut().enumerate() {
        ls.h.index_axis_mut(Axis(0), 0)
            .assign(&state.h.index_axis(Axis(0), l));
        ls.c.index_axis_mut(Axis(0), 0)
            .assign(&state.c.index_axis(Axis(0), l));
    }
    let mut last = 0;
    for t0 in (0..seq).step_by(window.max(1)) {
        let steps = window.min(seq - t0);
        if t0 > 0 {
            // The window's slot 0 is the state after the previous window.
            for ls in layers.iter_mut() {
                let (mut first, end) = ls.h.multi_slice_mut((s![0, .., ..], s![last, .., ..]));
                first.assign(&end);
                let (mut first, end) = ls.c.multi_slice_mut((s![0, .., ..], s![last, .., ..]));
                first.assign(&end);
            }
        }
        let x_t_major = x.slice(s![.., t0..t0 + steps, ..]).permuted_axes([1, 0, 2]);
        if copies_x {
            assign_by_rows(x_window.slice_mut(s![..steps, .., ..]), x_t_major);
        }
        for (l, p) in packed.iter().enumerate() {
            let (below, rest) = layers.split_at_mut(l);
            let input = match below.last() {
                None if copies_x => x_window.slice(s![..steps, .., ..]),
                None => x_t_major,
                Some(b) => b.h.slice(s![1..=steps, .., ..]),
            };
            layer_window(isa, p, input, &mut rest[0]);
        }
        if let Some(y) = y.as_mut() {
            let top = &layers[layers.len() - 1];
            assign_by_rows(
                y.slice_mut(s![.., t0..t0 + steps, ..]),
                top.h.slice(s![1..=steps, .., ..]).permuted_axes([1, 0, 2]),
            );
        }
        last = steps;
    }
    last
}

/// One layer over one window: `input` `[W, B, I_l]` time-major, the layer's states from slot 0
/// on. Projects the inputs first when the layer [`projects_inputs`]; then runs the steps, each
/// chunk of batch rows on its own thread (one chunk, on the calling thread, for small work), or
/// a batch split by units ([`splits_by_units`]).
fn layer_window<F: Real>(
    isa: Isa,
    p: &PackedLayer<F>,
    input: ArrayView3<'_, F>,
    ls: &mut LayerStates<F>,
) {
    let (steps, batch, inputs) = input.dim();
    let four_h = p.bias.len();
    let project = projects_inputs(p, batch);
    if project {
        // x_t · W_ihᵀ + (b_ih + b_hh) for every step of the window in one product; the steps
        // then add h_{t-1} · W_hhᵀ to it, continuing the same sums in the same order.
        let mut gates = ls
            .gates
            .slice_mut(s![..steps, .., ..])
            .into_shape_with_order((steps * batch, four_h))
            .expect("the first steps of the gates are contiguous");
        let rows = input
            .into_shape_with_order((steps * batch, inputs))
            .expect("a window of a time-major array is contiguous");
        gemm_parallel(
            isa,
            &[rows],
            p.input_part(),
            Init::Bias(&p.bias),
            &mut gates,
        );
    }
    let hidden = p.hidden();
    if project && splits_by_units::<F>(batch, hidden, steps) {
        let (h, c, gates) = (ls.h.view_mut(), ls.c.view_mut(), ls.gates.view_mut());
        layer_steps_by_units(isa, p.hidden_part(), h, c, gates, steps);
        return;
    }
    let chunk = chunk_rows(batch, steps * p.w.k() * p.w.n());
    let chunks: Vec<_> =
        ls.h.axis_chunks_iter_mut(Axis(1), chunk)
            .zip(ls.c.axis_chunks_iter_mut(Axis(1), chunk))
            .zip(ls.gates.axis_chunks_iter_mut(Axis(1), chunk))
            .zip(input.axis_chunks_iter(Axis(1), chunk))
            .collect();
    let run = |(((h, c), gates), input)| layer_steps(isa, p, project, input, h, c, gates);
    if chunks.len() == 1 {
        chunks.into_iter().for_each(run);
    } else {
        chunks.into_par_iter().for_each(run);
    }
}

/// The steps of one window for one chunk of rows: `input` `[W, Bc, I_l]`, `h`, `c`
/// `[W + 1.., Bc, H]` from slot 0, `gates` `[W.., Bc, 4H]` (holding the projected inputs when
/// `projected`).
fn layer_steps<F: Real>(
    isa: Isa,
    p: &PackedLayer<F>,
    projected: bool,
    input: ArrayView3<'_, F>,
    mut h: ArrayViewMut3<'_, F>,
    mut c: ArrayViewMut3<'_, F>,
    mut gates: ArrayViewMut3<'_, F>,
) {
    let mut scratch = GemmScratch::default();
    let hidden = h.dim().2;
    for j in 0..input.dim().0 {
        let (h_prev, mut h_next) = adjacent_slots(&mut h, j);
        let (c_prev, mut c_next) = adjacent_slots(&mut c, j);
        // One slot of gates (inference) is reused by every step.
        let slot = if gates.dim().0 == 1 { 0 } else { j };
        let mut a = gates.index_axis_mut(Axis(0), slot);
        if projected {
            gemm(
                isa,
                &[h_prev.view()],
                p.hidden_part(),
                Init::Accumulate,
                &mut a,
                &mut scratch,
            );
        } else {
            let x_j = input.index_axis(Axis(0), j);
            gemm(
                isa,
                &[x_j, h_prev.view()],
                p.w.all(),
                Init::Bias(&p.bias),
                &mut a,
                &mut scratch,
            );
        }
        lstm_forward_step_rows(
            isa,
            slice_mut(&mut a),
            slice(&c_prev.view()),
            slice_mut(&mut c_next),
            slice_mut(&mut h_next),
            hidden,
        );
    }
}

/// Slots `j` and `j + 1` of a time-major `[T, B, K]` array, side by side. (Split and indexed
/// rather than sliced with `s![]`: at the small size the slicing was ~4% of a forward.)
fn adjacent_slots<'a, F>(
    a: &'a mut ArrayViewMut3<'_, F>,
    j: usize,
) -> (ArrayViewMut2<'a, F>, ArrayViewMut2<'a, F>) {
    let (before, after) = a.view_mut().split_at(Axis(0), j + 1);
    (
        before.index_axis_move(Axis(0), j),
        after.index_axis_move(Axis(0), 0),
    )
}

/// `h_n`, `c_n` `[L, B, H]` from the states in slot `last`.
fn final_states<F: Real>(layers: &[LayerStates<F>], last: usize) -> (Array3<F>, Array3<F>) {
    let (_, batch, hidden) = layers[0].h.dim();
    let mut h_n = Array3::zeros((layers.len(), batch, hidden));
    let mut c_n = Array3::zeros((layers.len(), batch, hidden));
    for (l, ls) in layers.iter().enumerate() {
        h_n.index_axis_mut(Axis(0), l)
            .assign(&ls.h.index_axis(Axis(0), last));
        c_n.index_axis_mut(Axis(0), l)
            .assign(&ls.c.index_axis(Axis(0), last));
    }
    (h_n, c_n)
}

/// Checks the input and returns `(batch, seq)` and the state (zeros when `None`).
fn prepare<'s, F: Real>(
    config: &LstmConfig,
    x: &ArrayView3<'_, F>,
    state: Option<&'s LstmState<F>>,
    zeros: &'s mut Option<LstmState<F>>,
) -> Result<(usize, usize, &'s LstmState<F>)> {
    let (batch, seq) = check_input(config, x, state)?;
    let state = match state {
        Some(s) => s,
        None => zeros.insert(LstmState::zeros(config, batch)),
    };
    Ok((batch, seq, state))
}

/// Runs every layer into `tape`; returns `h_n`, `c_n` `[L, B, H]`, and writes `y` `[B, T, H]`
/// when given.
pub(crate) fn forward_into_tape<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    tape: &mut CpuTape<F>,
    y: Option<ArrayViewMut3<'_, F>>,
) -> Result<(Array3<F>, Array3<F>)> {
    let config = *weights.config();
    config.require_plain("cpu::lstm::forward_train")?;
    let mut zeros = None;
    let (batch, seq, state) = prepare(&config, &x, state, &mut zeros)?;
    tape.batch = batch;
    tape.seq = seq;
    resize_reusing(&mut tape.input, ndarray::Ix3(seq, batch, config.input_size));
    tape.layers
        .resize_with(config.num_layers, LayerStates::default);
    for ls in &mut tape.layers {
        ls.resize(seq + 1, seq, batch, config.hidden_size);
    }
    let mut packed = Vec::new();
    pack_layers(weights, &mut packed);
    let last = run_forward(
        isa,
        &packed,
        x,
        state,
        &mut tape.layers,
        seq,
        // Backward reads the inputs from the tape.
        true,
        &mut tape.input,
        y,
    );
    Ok(final_states(&tape.layers, last))
}

/// Forward pass into a tape whose buffers are reused when the shape repeats, on the
/// instruction set `isa`.
///
/// * `x` `[B, T, I]`; `state` `h0`, `c0` `[L, B, H]` (zeros when `None`).
/// * Returns `y` `[B, T, H]`, `h_n`, `c_n` `[L, B, H]`.
pub fn forward_train_into<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    tape: &mut CpuTape<F>,
) -> Result<LstmOutput<F>> {
    let config = *weights.config();
    check_input(&config, &x, state)?;
    let (batch, seq, _) = x.dim();
    let mut y = Array3::zeros((batch, seq, config.hidden_size));
    let (h_n, c_n) = forward_into_tape(isa, weights, x, state, tape, Some(y.view_mut()))?;
    Ok(LstmOutput { y, h_n, c_n })
}

/// Forward pass keeping the activations backward needs; see [`forward_train_into`]. Uses the
/// instruction set of [`Isa::from_env`].
pub fn forward_train<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<(LstmOutput<F>, CpuTape<F>)> {
    let mut tape = CpuTape::default();
    let out = forward_train_into(Isa::from_env()?, weights, x, state, &mut tape)?;
    Ok((out, tape))
}

/// Inference: `x` `[B, T, I]`, `state` `[L, B, H]` (zeros when `None`) → `y` `[B, T, H]`,
/// `h_n`, `c_n` `[L, B, H]`, on the instruction set `isa`, with `scratch` for working memory.
///
/// Beyond `y`, the memory it uses is the packed weights and buffers for a window of at most 64
/// steps (up to 1024 for batches of fewer than 16 rows), whatever `T` is: no tape of
/// activations is kept.
pub fn forward_with<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    scratch: &mut ForwardScratch<F>,
) -> Result<LstmOutput<F>> {
    forward_packed(isa, weights, x, state, scratch, false)
}

/// [`forward_with`], skipping the packing when `packed_is_current` (`scratch` already holds
/// these weights, packed by an earlier call).
fn forward_packed<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    scratch: &mut ForwardScratch<F>,
    packed_is_current: bool,
) -> Result<LstmOutput<F>> {
    let config = *weights.config();
    check_input(&config, &x, state)?;
    let (batch, seq, _) = x.dim();
    let mut y = Array3::zeros((batch, seq, config.hidden_size));
    let y_out = Some(y.view_mut());
    let (h_n, c_n) = forward_states(isa, weights, x, state, scratch, y_out, packed_is_current)?;
    Ok(LstmOutput { y, h_n, c_n })
}

/// Inference returning only `h_n`, `c_n` `[L, B, H]` (and writing `y` `[B, T, H]` when given);
/// see [`forward_with`]. `packed_is_current`: `scratch` already holds these weights, packed by
/// an earlier call.
pub(crate) fn forward_states<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
    scratch: &mut ForwardScratch<F>,
    y: Option<ArrayViewMut3<'_, F>>,
    packed_is_current: bool,
) -> Result<(Array3<F>, Array3<F>)> {
    let config = *weights.config();
    let (batch, _) = check_input(&config, &x, state)?;
    let mut state = match state {
        Some(s) => s.clone(),
        None => LstmState::zeros(&config, batch),
    };
    forward_state_in_place(isa, weights, x, &mut state, scratch, y, packed_is_current)?;
    Ok((state.h, state.c))
}

/// As [`forward_states`], from `state` (`h0`, `c0` `[L, B, H]`), which receives `h_n`, `c_n`:
/// a stream's step allocates nothing once `scratch` has its shapes.
pub(crate) fn forward_state_in_place<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: &mut LstmState<F>,
    scratch: &mut ForwardScratch<F>,
    y: Option<ArrayViewMut3<'_, F>>,
    packed_is_current: bool,
) -> Result<()> {
    let config = *weights.config();
    config.require_plain("cpu::lstm::forward")?;
    let (batch, seq) = check_input(&config, &x, Some(state))?;
    if !packed_is_current || scratch.packed.len() != config.num_layers {
        pack_layers(weights, &mut scratch.packed);
    }
    let window = inference_window::<F>(&config, batch, seq);
    let copies_x = copies_x(&scratch.packed, batch);
    let x_window_steps = if copies_x { window } else { 0 };
    resize_reusing(
        &mut scratch.x_window,
        ndarray::Ix3(x_window_steps, batch, config.input_size),
    );
    scratch
        .layers
        .resize_with(config.num_layers, LayerStates::default);
    for (ls, p) in scratch.layers.iter_mut().zip(&scratch.packed) {
        // Inference needs one step's gates at a time, except where a window of projected
        // inputs waits in them.
        let gate_slots = if projects_inputs(p, batch) { window } else { 1 };
        ls.resize(window + 1, gate_slots, batch, config.hidden_size);
    }
    let last = run_forward(
        isa,
        &scratch.packed,
        x,
        state,
        &mut scratch.layers,
        window,
        copies_x,
        &mut scratch.x_window,
        y,
    );
    for (l, ls) in scratch.layers.iter().enumerate() {
        state
            .h
            .index_axis_mut(Axis(0), l)
            .assign(&ls.h.index_axis(Axis(0), last));
        state
            .c
            .index_axis_mut(Axis(0), l)
            .assign(&ls.c.index_axis(Axis(0), last));
    }
    Ok(())
}

/// Inference, see [`forward_with`], on the instruction set of [`Isa::from_env`].
pub fn forward<F: Real>(
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<LstmOutput<F>> {
    forward_with(
        Isa::from_env()?,
        weights,
        x,
        state,
        &mut ForwardScratch::default(),
    )
}

/// Backpropagation through time over a tape from [`forward_train`] with the same `weights`,
/// using `scratch` for working memory, on the instruction set `isa`.
///
/// Returns the gradients `want` asks for (`x`, `h0` and `c0`, all parameters, PyTorch layout);
/// the others are `None` (and `dx`, needed by nothing else, is then not computed). Absent
/// upstream gradients count as zero.
pub fn backward_with<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    tape: &CpuTape<F>,
    upstream: &Upstream<F>,
    want: GradRequest,
    scratch: &mut BackwardScratch<F>,
) -> Result<LstmGrads<F>> {
    let config = *weights.config();
    config.require_plain("cpu::lstm::backward")?;
    let (batch, seq) = (tape.batch, tape.seq);
    check_upstream(&config, batch, seq, upstream)?;
    check_tape_layers(&config, tape)?;
    let (l_count, hidden) = (config.num_layers, config.hidden_size);

    let mut dh0 = Array3::zeros((l_count, batch, hidden));
    let mut dc0 = Array3::zeros((l_count, batch, hidden));
    let mut grads: Vec<LayerWeights<F>> = Vec::with_capacity(l_count);
    // Time-major, as everything inside.
    let dy_up = upstream
        .dy
        .as_ref()
        .map(|d| d.view().permuted_axes([1, 0, 2]));
    resize_reusing(&mut scratch.dy, ndarray::Ix3(seq, batch, hidden));
    assign_or_zero(&mut scratch.dy, dy_up);
    let zero_state = Array2::zeros((batch, hidden));

    for l in (0..l_count).rev() {
        let w = &weights.layers()[l];
        let input = if l == 0 {
            &tape.input
        } else {
            &tape.layers[l - 1].h
        };
        let input_rows = if l == 0 {
            rows(input)
        } else {
            // Layer l - 1's outputs h_0 .. h_{T-1}: slots 1 ..= T.
            input
                .slice(s![1.., .., ..])
                .into_shape_with_order((seq * batch, hidden))
                .expect("the last T steps of h are contiguous")
        };
        let states = &tape.layers[l];
        let dh_n = upstream
            .dh_n
            .as_ref()
            .map_or(zero_state.view(), |d| d.index_axis(Axis(0), l));
        resize_reusing(&mut scratch.dc, ndarray::Ix2(batch, hidden));
        assign_or_zero(
            &mut scratch.dc,
            upstream.dc_n.as_ref().map(|d| d.index_axis(Axis(0), l)),
        );
        scratch
            .w_hh
            .pack(4 * hidden, hidden, &[(0, 0, w.weight_hh.view())]);
        layer_reverse_sweep(
            isa,
            &scratch.w_hh,
            states,
            scratch.dy.view(),
            dh_n,
            &mut scratch.dc,
            &mut scratch.dgates,
        );
        // dL/dh0 is step 0's gate gradients sent back through W_hh; dL/dc0 is what is left in dc.
        gemm_parallel(
            isa,
            &[scratch.dgates.index_axis(Axis(0), 0)],
            scratch.w_hh.all(),
            Init::Zero,
            &mut dh0.index_axis_mut(Axis(0), l),
        );
        dc0.index_axis_mut(Axis(0), l).assign(&scratch.dc);
        grads.push(layer_weight_grads(
            isa, &config, input_rows, states, scratch,
        ));

        // Gradient on this layer's input: the layer below's dy, or dx.
        if l == 0 && !want.x {
            break;
        }
        layer_input_grad(isa, w, config.layer_input_size(l), scratch);
        std::mem::swap(&mut scratch.dy, &mut scratch.dx);
    }
    grads.reverse();
    let x = want.x.then(|| {
        scratch
            .dy
            .view()
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

/// One chunk of batch rows of a reverse sweep: `dgates` `[T, Bc, 4H]`, `dc` `[Bc, H]`, `dy`
/// `[T, Bc, H]`, `dh_n` `[Bc, H]`, the tape's `gates` `[T, Bc, 4H]` and `c` `[T + 1, Bc, H]`.
type SweepChunk<'a, F> = (
    (
        (
            (
                (ArrayViewMut3<'a, F>, ArrayViewMut2<'a, F>),
                ArrayView3<'a, F>,
            ),
            ArrayView2<'a, F>,
        ),
        ArrayView3<'a, F>,
    ),
    ArrayView3<'a, F>,
);

/// The reverse sweep of one layer: every step's pre-activation gradients into `dgates`
/// `[T, B, 4H]` (resized as needed, every element written).
///
/// * `w_hh`: `W_hh` `[4H, H]`, packed.
/// * `dy` `[T, B, H]`: the gradient arriving at the layer's outputs, time-major.
/// * `dh_n` `[B, H]`: the gradient on the layer's last hidden state.
/// * `dc` `[B, H]` (in/out): `dL/dc_n` on entry, `dL/dc0` on exit.
///
/// Batch rows are split across threads as in the forward pass.
fn layer_reverse_sweep<F: Real>(
    isa: Isa,
    w_hh: &PackedB<F>,
    states: &LayerStates<F>,
    dy: ArrayView3<'_, F>,
    dh_n: ArrayView2<'_, F>,
    dc: &mut Array2<F>,
    dgates: &mut Array3<F>,
) {
    let (seq, batch, hidden) = dy.dim();
    resize_reusing(dgates, ndarray::Ix3(seq, batch, 4 * hidden));
    let chunk = chunk_rows(batch, seq * 4 * hidden * hidden);
    let chunks: Vec<SweepChunk<'_, F>> = dgates
        .axis_chunks_iter_mut(Axis(1), chunk)
        .zip(dc.axis_chunks_iter_mut(Axis(0), chunk))
        .zip(dy.axis_chunks_iter(Axis(1), chunk))
        .zip(dh_n.axis_chunks_iter(Axis(0), chunk))
        .zip(states.gates.axis_chunks_iter(Axis(1), chunk))
        .zip(states.c.axis_chunks_iter(Axis(1), chunk))
        .collect();
    let sweep = |chunk: SweepChunk<'_, F>| reverse_sweep_rows(isa, w_hh, chunk);
    if chunks.len() == 1 {
        // Small work: no hand-off to another thread.
        chunks.into_iter().for_each(sweep);
    } else {
        chunks.into_par_iter().for_each(sweep);
    }
}

/// The reverse sweep of one chunk of rows (see [`SweepChunk`]).
fn reverse_sweep_rows<F: Real>(isa: Isa, w_hh: &PackedB<F>, chunk: SweepChunk<'_, F>) {
    let (((((mut dgates, mut dc), dy), dh_n), gates), c) = chunk;
    let (seq, rows, hidden) = dy.dim();
    let mut dh = Array2::<F>::zeros((rows, hidden));
    let mut scratch = GemmScratch::default();
    for t in (0..seq).rev() {
        // dh = dy_t + (t = T-1 ? dh_n : dgates_{t+1} · W_hh)
        dh.assign(&dy.index_axis(Axis(0), t));
        let (mut now, later) = if t + 1 < seq {
            let (now, later) = adjacent_slots(&mut dgates, t);
            (now, Some(later))
        } else {
            (dgates.index_axis_mut(Axis(0), t), None)
        };
        match later {
            None => dh += &dh_n,
            Some(later) => gemm(
                isa,
                &[later.view()],
                w_hh.all(),
                Init::Accumulate,
                &mut dh.view_mut(),
                &mut scratch,
            ),
        }
        lstm_backward_step_rows(
            isa,
            slice(&gates.index_axis(Axis(0), t)),
            slice(&c.index_axis(Axis(0), t + 1)),
            slice(&c.index_axis(Axis(0), t)),
            dh.as_slice().expect("dh is standard layout"),
            slice_mut(&mut dc),
            slice_mut(&mut now),
            hidden,
        );
    }
}

/// The parameter gradients of layer `l` from `dgates` `[T, B, 4H]` (in `scratch`), the layer's
/// input rows `[T·B, I_l]` and its states, as one whole-sequence product over all `T·B` rows:
/// `[dW_ih | dW_hh | db] = dgatesᵀ · [x | h_{t-1} | 1]` `[4H, I_l + H + 1]`, so that
/// `db_ih = db_hh = Σ_rows dgates` `[4H]` comes out of the same product, as its last column.
fn layer_weight_grads<F: Real>(
    isa: Isa,
    config: &LstmConfig,
    input_rows: ArrayView2<'_, F>,
    states: &LayerStates<F>,
    scratch: &mut BackwardScratch<F>,
) -> LayerWeights<F> {
    let (seq, batch, four_h) = scratch.dgates.dim();
    let hidden = config.hidden_size;
    let inputs = input_rows.ncols();
    let h_prev = states
        .h
        .slice(s![..seq, .., ..])
        .into_shape_with_order((seq * batch, hidden))
        .expect("the first T steps of h are contiguous");
    if scratch.ones.dim() != (seq * batch, 1) {
        scratch.ones = Array2::ones((seq * batch, 1));
    }
    scratch.inputs.pack(
        seq * batch,
        inputs + hidden + 1,
        &[
            (0, 0, input_rows),
            (0, inputs, h_prev),
            (0, inputs + hidden, scratch.ones.view()),
        ],
    );
    resize_reusing(&mut scratch.dw, ndarray::Ix2(four_h, inputs + hidden + 1));
    let dg = rows(&scratch.dgates);
    gemm_parallel(
        isa,
        &[dg.t()],
        scratch.inputs.all(),
        Init::Zero,
        &mut scratch.dw.view_mut(),
    );
    // Copied straight out of the product (not into zeroed arrays first). A model without
    // biases has none to learn: their gradients are zero.
    let bias = match config.bias {
        true => scratch.dw.column(inputs + hidden).to_owned(),
        false => ndarray::Array1::zeros(four_h),
    };
    LayerWeights {
        weight_ih: scratch.dw.slice(s![.., ..inputs]).to_owned(),
        weight_hh: scratch.dw.slice(s![.., inputs..inputs + hidden]).to_owned(),
        bias_ih: bias.clone(),
        bias_hh: bias,
        weight_hr: None,
    }
}

/// The gradient on a layer's input, `dx = dgates · W_ih`: from `dgates` `[T, B, 4H]` into `dx`
/// `[T, B, I_l]` (time-major, resized as needed), both in `scratch`.
fn layer_input_grad<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    input_size: usize,
    scratch: &mut BackwardScratch<F>,
) {
    let (seq, batch, four_h) = scratch.dgates.dim();
    resize_reusing(&mut scratch.dx, ndarray::Ix3(seq, batch, input_size));
    scratch
        .w_ih
        .pack(four_h, input_size, &[(0, 0, w.weight_ih.view())]);
    let mut dx_rows = scratch
        .dx
        .view_mut()
        .into_shape_with_order((seq * batch, input_size))
        .expect("dx is contiguous");
    gemm_parallel(
        isa,
        &[rows(&scratch.dgates)],
        scratch.w_ih.all(),
        Init::Zero,
        &mut dx_rows,
    );
}

/// Backpropagation through time over a tape from [`forward_train`]; see [`backward_with`].
/// Uses the instruction set of [`Isa::from_env`].
pub fn backward<F: Real>(
    weights: &LstmWeights<F>,
    tape: &CpuTape<F>,
    upstream: &Upstream<F>,
) -> Result<LstmGrads<F>> {
    backward_with(
        Isa::from_env()?,
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
    isa: Isa,
    inference: ForwardScratch<F>,
    /// `inference` holds the current weights, packed (until they are changed).
    inference_packed: bool,
    training: CpuTape<F>,
    scratch: BackwardScratch<F>,
    /// The tape of the latest `forward_train` when it ran the general path (bidirectional or
    /// projected layers, or variable lengths), which `general_taped` says.
    general: GeneralTape<F>,
    general_taped: bool,
    /// The general path's working memory (inference's activations, backward's buffers).
    general_scratch: GeneralScratch<F>,
    /// `general_scratch` holds the current weights packed for inference (until they change).
    general_packed: bool,
    /// Dropout between layers in training passes (general path), its `pass` the next one's.
    dropout: Option<Dropout>,
    tapes: TapeIssuer,
    version: WeightsVersion,
}

impl<F: Real> CpuLstm<F> {
    /// Takes `weights` (checked); runs on the instruction set of [`Isa::from_env`].
    pub fn new(weights: LstmWeights<F>) -> Result<Self> {
        weights.validate()?;
        Ok(CpuLstm {
            weights,
            isa: Isa::from_env()?,
            inference: ForwardScratch::default(),
            inference_packed: false,
            training: CpuTape::default(),
            scratch: BackwardScratch::default(),
            general: GeneralTape::default(),
            general_taped: false,
            general_scratch: GeneralScratch::default(),
            general_packed: false,
            dropout: None,
            tapes: TapeIssuer::new(),
            version: WeightsVersion::default(),
        })
    }

    /// The same model on the instruction set `isa`; fails when this processor lacks it.
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        self.isa = isa.check_supported()?;
        Ok(self)
    }

    /// The instruction set the calls run on.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The parameters, borrowed ([`Lstm::weights`] returns a copy).
    pub fn params(&self) -> &LstmWeights<F> {
        &self.weights
    }

    /// The parameters, to update in place (an optimizer step). Shapes must not change; they are
    /// checked again by the next call.
    pub fn params_mut(&mut self) -> &mut LstmWeights<F> {
        self.inference_packed = false;
        self.general_packed = false;
        self.version.bump();
        &mut self.weights
    }

    /// Whether training passes drop anything: dropout is set and there is a layer below another.
    fn drops_between_layers(&self) -> bool {
        self.dropout.is_some() && self.weights.config().num_layers > 1
    }

    /// `forward` on the general path ([`general_lstm`]).
    fn forward_general(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: Option<&[usize]>,
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>> {
        let out = general_lstm::forward_packed(
            self.isa,
            &self.weights,
            x,
            lengths,
            state,
            &mut self.general_scratch,
            self.general_packed,
        )?;
        // The weights are packed for inference until they change.
        self.general_packed = true;
        Ok(out)
    }

    /// `forward_train` on the general path ([`general_lstm`]), keeping its tape.
    fn forward_train_general(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: Option<&[usize]>,
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)> {
        let dropout = self.dropout;
        let out = general_lstm::forward_train_into(
            self.isa,
            &self.weights,
            x,
            lengths,
            state,
            dropout.as_ref(),
            &mut self.general,
        )?;
        self.general_taped = true;
        self.dropout = dropout.map(|d| d.at_pass(d.pass + 1));
        let tape = self.tapes.issue(self.general.batch(), self.general.seq());
        Ok((out, tape))
    }

    /// The version of the parameters, which streams made from this model watch.
    pub(crate) fn weights_version(&self) -> &WeightsVersion {
        &self.version
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
        self.inference_packed = false;
        self.general_packed = false;
        self.version.bump();
        Ok(())
    }

    fn forward(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>> {
        self.weights.validate()?;
        if !self.weights.config().is_plain() {
            return self.forward_general(x, None, state);
        }
        let out = forward_packed(
            self.isa,
            &self.weights,
            x,
            state,
            &mut self.inference,
            self.inference_packed,
        )?;
        // The weights are packed for inference until they change.
        self.inference_packed = true;
        Ok(out)
    }

    fn forward_train(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)> {
        self.weights.validate()?;
        if !self.weights.config().is_plain() || self.drops_between_layers() {
            return self.forward_train_general(x, None, state);
        }
        let out = forward_train_into(self.isa, &self.weights, x, state, &mut self.training)?;
        self.general_taped = false;
        let tape = self.tapes.issue(self.training.batch, self.training.seq);
        Ok((out, tape))
    }

    fn forward_lengths(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: &[usize],
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>> {
        self.forward_general(x, Some(lengths), state)
    }

    fn forward_train_lengths(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: &[usize],
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)> {
        self.forward_train_general(x, Some(lengths), state)
    }

    fn set_dropout(&mut self, dropout: Option<Dropout>) -> Result<()> {
        self.dropout = dropout;
        Ok(())
    }

    fn dropout(&self) -> Option<Dropout> {
        self.dropout
    }

    fn backward(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<F>,
        want: GradRequest,
    ) -> Result<LstmGrads<F>> {
        self.tapes.check(tape)?;
        if self.general_taped {
            return general_lstm::backward_with(
                self.isa,
                &self.weights,
                &self.general,
                upstream,
                want,
                &mut self.general_scratch,
            );
        }
        backward_with(
            self.isa,
            &self.weights,
            &self.training,
            upstream,
            want,
            &mut self.scratch,
        )
    }
}
