//! Every `nn.LSTM` on the CPU: both directions, projected `h`, sequences of different lengths,
//! forward and backward. [`crate::cpu::lstm`] runs the plain LSTM (one direction, no
//! projection, one length) with more schedules to choose from; this module runs all of them,
//! the plain one included, and on a plain layer gives the same bits.
//!
//! Each direction `d` of each layer runs its own recurrence over the layer's input. With
//! `lengths[b]` steps in sequence `b`, processing step `s` of direction `d` reads time
//!
//! ```text
//! t_b(s) = s                    forward direction (d = 0)
//! t_b(s) = lengths[b] - 1 - s   reverse direction (d = 1)
//! ```
//!
//! for `s < lengths[b]`, and the row is *finished* for `s ≥ lengths[b]`: its `h`, `c` stay as
//! they are and its output is 0. So `h_n`, `c_n` are each row's state after its last step in
//! either direction, as PyTorch's packed sequences give. A running row's step is
//!
//! ```text
//! a    = (b_ih + b_hh) + [x_t | h_{s-1}] · [W_ih | W_hh]ᵀ        [B, I_l + H_out] · [., 4H]
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
//! Backward runs the processing steps in reverse. A row's gradient on `h` at its last step is
//! `dh = dy[b, t, d·H_out ..] + dh_n`, at any earlier step `dy[b, t, d·H_out ..] + dgates_{s+1}
//! · W_hh`; then `dr = dh · W_hr` (projected) and the step's gate gradients as in
//! [`crate::cpu::lstm_backward_step`] (`dc` starts from `dc_n` at the row's last step). The
//! weight gradients are whole-sequence products over every step's running rows:
//! `[dW_ih | dW_hh | db] = dgatesᵀ · [x | h_{s-1} | 1]`, `dW_hr = dhᵀ · r`, and the input
//! gradient `dgates · W_ih` goes back to the times it was read from, both directions adding into
//! the same `dx` (forward first).
//!
//! # Layout
//!
//! Rows run sorted by length, longest first (a stable sort), as in PyTorch's packed sequences.
//! The rows still running at step `s` are then the first `n_s` (those with `lengths[b] > s`),
//! and every per-step buffer holds step `s`'s rows as one block of `n_s` rows, the blocks of
//! the steps one after another: `R = Σ lengths` rows in all. A step's products cover its
//! running rows only: a finished row costs nothing, and its last `h`, `c` stay in the block of
//! its last step. A batch of full-length sequences is the time-major `[T, B, ·]` of
//! [`crate::cpu::lstm`], in batch order.
//!
//! # Threads
//!
//! Rows never interact. In a layer with work enough for several threads, each direction's rows
//! are split into chunks of about equal work (ranges of running rows) and every chunk of every
//! direction runs its steps on a thread of its own (the two directions at the same time),
//! reading its rows' inputs and writing their outputs as it goes. Backward sweeps the same
//! way, then runs each direction's whole-sequence products split by rows. Each element is the
//! same chain of multiply-adds however the rows are split, so the results do not depend on the
//! number of threads.
//!
//! # Buffers
//!
//! A [`GeneralTape`] holds what backward needs of every step; inference keeps only the two
//! latest steps' states, so its memory does not grow with `T`. Both, and backward's working
//! memory, live in buffers reused from call to call: [`crate::cpu::lstm::CpuLstm`] keeps a tape
//! and a [`GeneralScratch`].

use std::ops::Range;

use ndarray::{
    Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s,
};
use rayon::prelude::*;

use super::blocked_gemm::{GemmScratch, Init, PackedB, gemm, gemm_parallel};
use super::dropout::dropout_in_place;
use super::isa::Isa;
use super::lstm_backward_step::lstm_backward_step_rows;
use super::lstm_forward_step::lstm_forward_step_rows;
use super::parallel::chunk_rows;
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

/// Which rows run at each step, and where each step's rows lie in the per-step buffers (see
/// the module docs' layout).
#[derive(Debug, Clone, Default)]
struct Schedule {
    /// `order[j]`: the batch row that runs as row `j`.
    order: Vec<usize>,
    /// `lengths[j]`: the length of the sequence of row `j`, non-increasing.
    lengths: Vec<usize>,
    /// `offsets[s]`: the first buffer row of step `s`; `offsets[T] = R`.
    offsets: Vec<usize>,
}

impl Schedule {
    /// Sorts the rows of `lengths` (each in `1..=seq`) and lays out the steps.
    fn new(lengths: &[usize], seq: usize) -> Self {
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.sort_by_key(|&b| std::cmp::Reverse(lengths[b]));
        let sorted: Vec<usize> = order.iter().map(|&b| lengths[b]).collect();
        let mut offsets = Vec::with_capacity(seq + 1);
        let mut rows = 0;
        for s in 0..seq {
            offsets.push(rows);
            rows += sorted.iter().take_while(|&&n| n > s).count();
        }
        offsets.push(rows);
        Schedule {
            order,
            lengths: sorted,
            offsets,
        }
    }

    fn batch(&self) -> usize {
        self.order.len()
    }

    fn seq(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Buffer rows of all steps, `R`.
    fn rows(&self) -> usize {
        self.offsets[self.seq()]
    }

    /// Rows running at step `s`, `n_s`.
    fn running(&self, s: usize) -> usize {
        self.offsets[s + 1] - self.offsets[s]
    }

    /// The buffer rows of step `s` that hold the running rows among `rows`.
    fn step_rows(&self, s: usize, rows: &Range<usize>) -> Range<usize> {
        let n = self.running(s);
        self.offsets[s] + rows.start.min(n)..self.offsets[s] + rows.end.min(n)
    }

    /// The time that row `j` reads at step `s` of direction `d` (`s < lengths[j]`).
    fn time(&self, d: usize, s: usize, j: usize) -> usize {
        time_of_step(d, s, self.lengths[j]).expect("a running row")
    }

    /// The buffer row of row `j`'s last step.
    fn last_row(&self, j: usize) -> usize {
        self.offsets[self.lengths[j] - 1] + j
    }

    /// At most `parts` ranges of rows, one after another from row 0, each with about the same
    /// number of steps.
    fn split(&self, parts: usize) -> Vec<Range<usize>> {
        let total = self.rows();
        let mut ranges = Vec::with_capacity(parts);
        let (mut start, mut steps) = (0, 0);
        for (j, &n) in self.lengths.iter().enumerate() {
            steps += n;
            if steps * parts >= total * (ranges.len() + 1) || j + 1 == self.batch() {
                ranges.push(start..j + 1);
                start = j + 1;
            }
        }
        ranges
    }
}

/// Rows of `width` values, row-major in one buffer whose allocation is reused from call to call.
#[derive(Debug, Clone, Default)]
struct Rows<F> {
    width: usize,
    data: Vec<F>,
}

impl<F: Real> Rows<F> {
    /// Makes room for `rows` rows of `width`; what they hold is left over from earlier use
    /// (callers write each row before they read it).
    fn resize(&mut self, rows: usize, width: usize) {
        self.width = width;
        self.data.resize(rows * width, F::zero());
    }

    fn get(&self, rows: Range<usize>) -> &[F] {
        &self.data[rows.start * self.width..rows.end * self.width]
    }

    fn get_mut(&mut self, rows: Range<usize>) -> &mut [F] {
        &mut self.data[rows.start * self.width..rows.end * self.width]
    }

    fn view(&self, rows: Range<usize>) -> ArrayView2<'_, F> {
        matrix(self.get(rows), self.width)
    }

    /// Every row.
    fn all(&self) -> ArrayView2<'_, F> {
        matrix(&self.data, self.width)
    }
}

/// `values` as a matrix of rows of `width`.
fn matrix<F>(values: &[F], width: usize) -> ArrayView2<'_, F> {
    let rows = values.len().checked_div(width).unwrap_or(0);
    ArrayView2::from_shape((rows, width), values).expect("whole rows")
}

/// As [`matrix`], mutable.
fn matrix_mut<F>(values: &mut [F], width: usize) -> ArrayViewMut2<'_, F> {
    let rows = values.len().checked_div(width).unwrap_or(0);
    ArrayViewMut2::from_shape((rows, width), values).expect("whole rows")
}

/// One direction's weights as the forward steps read them.
#[derive(Debug, Clone, Default)]
struct StepWeights<F> {
    /// `[W_ihᵀ; W_hhᵀ]` `[I_l + H_out, 4H]`, packed.
    w: PackedB<F>,
    /// `W_hrᵀ` `[H, H_out]`, packed, when projected.
    w_hr: Option<PackedB<F>>,
    /// `b_ih + b_hh` `[4H]`.
    bias: Vec<F>,
}

impl<F: Real> StepWeights<F> {
    fn pack(&mut self, w: &LayerWeights<F>) {
        let (four_h, inputs) = w.weight_ih.dim();
        let h_out = w.weight_hh.ncols();
        self.w.pack(
            inputs + h_out,
            four_h,
            &[(0, 0, w.weight_ih.t()), (inputs, 0, w.weight_hh.t())],
        );
        self.w_hr = w.weight_hr.as_ref().map(|w_hr| {
            let mut p = self.w_hr.take().unwrap_or_default();
            p.pack(four_h / 4, h_out, &[(0, 0, w_hr.t())]);
            p
        });
        self.bias.clear();
        self.bias
            .extend(w.bias_ih.iter().zip(&w.bias_hh).map(|(&a, &b)| a + b));
    }
}

/// One direction of one layer over a batch: its weights and every step's activations, in the
/// per-step layout of [`Schedule`] (in inference, the slots that [`Keep::Outputs`] names).
#[derive(Debug, Clone, Default)]
struct DirectionTape<F> {
    weights: StepWeights<F>,
    /// The input each row read at each step, `[R, I_l]`.
    x: Rows<F>,
    /// `h0` `[B, H_out]` and `c0` `[B, H]`, in running order.
    h0: Rows<F>,
    c0: Rows<F>,
    /// `h` and `c` after each step, `[R, H_out]` and `[R, H]`.
    h: Rows<F>,
    c: Rows<F>,
    /// Gates after their nonlinearities, blocks i, f, g, o, `[R, 4H]`.
    gates: Rows<F>,
    /// `r = o ⊙ tanh(c)`, `[R, H]`, when the layer is projected (no rows otherwise).
    r: Rows<F>,
}

/// Activations saved by [`forward_train`] for [`backward`]. [`forward_train_into`] reuses its
/// buffers (growing them when a pass needs more).
#[derive(Debug, Clone, Default)]
pub struct GeneralTape<F = f32> {
    batch: usize,
    seq: usize,
    lengths: Vec<usize>,
    schedule: Schedule,
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

/// Working memory of [`forward_with`] (its activations) and [`backward_with`], reused across
/// calls.
#[derive(Debug, Clone, Default)]
pub struct GeneralScratch<F = f32> {
    inference: GeneralTape<F>,
    /// Per direction of a layer.
    directions: Vec<DirectionScratch<F>>,
}

/// Backward's working memory for one direction of a layer.
#[derive(Debug, Clone, Default)]
struct DirectionScratch<F> {
    /// `W_hh` `[4H, H_out]`, `W_ih` `[4H, I_l]` and `W_hr` `[H_out, H]` (when projected),
    /// packed.
    w_hh: PackedB<F>,
    w_ih: PackedB<F>,
    w_hr: Option<PackedB<F>>,
    /// `dL/dh_n` `[B, H_out]`, in running order.
    dh_n: Rows<F>,
    /// `dL/dc_n` `[B, H]` in, `dL/dc0` out, in running order.
    dc: Rows<F>,
    /// Every step's pre-activation gradients, `[R, 4H]`.
    dgates: Rows<F>,
    /// Every step's `dh`, `[R, H_out]`, when projected (for `dW_hr`).
    dh: Rows<F>,
    /// `dL/dh0` `[B, H_out]`, in running order.
    dh0: Rows<F>,
    /// `dgates · W_ih`, `[R, I_l]`.
    dx: Rows<F>,
    /// `[x | h_{s-1} | 1]` `[R, I_l + H_out + 1]` (then `r` `[R, H]`), packed, and a column
    /// of ones.
    operand: PackedB<F>,
    ones: Vec<F>,
    /// `[dW_ih | dW_hh | db]` `[4H, I_l + H_out + 1]`.
    dw: Array2<F>,
    /// The parameter gradients, when asked for.
    grads: Option<LayerWeights<F>>,
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
    let mut tape = GeneralTape::default();
    let out = forward_train_into(isa, weights, x, lengths, state, dropout, &mut tape)?;
    Ok((out, tape))
}

/// [`forward_train`] into a tape whose buffers are reused. A call that fails (on its inputs)
/// leaves the tape as it was.
pub fn forward_train_into<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
    dropout: Option<&Dropout>,
    tape: &mut GeneralTape<F>,
) -> Result<LstmOutput<F>> {
    let keep = Keep::Tape;
    run_forward(isa, weights, x, lengths, state, dropout, tape, keep, false)
}

/// What a forward pass keeps of each step.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Keep {
    /// Everything backward needs: every step's input, `h`, `c`, gates and `r`.
    Tape,
    /// What the next step needs: `h` and `c` in two slots used in turn (a row's `h_n`, `c_n`
    /// stay in the slot of its last step: the next step writes the other slot, and neither is
    /// written again for a finished row), the input, the gates and `r` in one. Memory then
    /// does not grow with `T`.
    Outputs,
}

impl Keep {
    /// Rows kept of the input, `h`, `c`, the gates and `r`.
    fn rows(self, schedule: &Schedule) -> [usize; 5] {
        match self {
            Keep::Tape => [schedule.rows(); 5],
            Keep::Outputs => [1, 2, 2, 1, 1].map(|slots| slots * schedule.batch()),
        }
    }

    /// The row of `h` and `c` that holds row `j`'s state after its last step.
    fn last_row(self, schedule: &Schedule, j: usize) -> usize {
        match self {
            Keep::Tape => schedule.last_row(j),
            Keep::Outputs => (schedule.lengths[j] - 1) % 2 * schedule.batch() + j,
        }
    }

    /// Each chunk's rows of the slots kept in `rows`: every step's on a tape
    /// ([`step_pieces`]), slots of a batch's rows otherwise ([`slot_pieces`]).
    fn pieces<'a, F>(
        self,
        rows: &'a mut Rows<F>,
        schedule: &Schedule,
        chunks: &[Range<usize>],
    ) -> Vec<Vec<&'a mut [F]>> {
        match self {
            Keep::Tape => step_pieces(&mut rows.data, rows.width, schedule, chunks),
            Keep::Outputs => slot_pieces(&mut rows.data, rows.width, schedule.batch(), chunks),
        }
    }
}

/// The forward pass of [`forward_train_into`] and [`forward_with`], keeping in `tape` what
/// `keep` says; `packed_is_current`: `tape` holds these weights packed, by an earlier call.
#[allow(clippy::too_many_arguments)]
fn run_forward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
    dropout: Option<&Dropout>,
    tape: &mut GeneralTape<F>,
    keep: Keep,
    packed_is_current: bool,
) -> Result<LstmOutput<F>> {
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
    tape.batch = batch;
    tape.seq = seq;
    tape.schedule = Schedule::new(&lengths, seq);
    tape.lengths = lengths;
    tape.dropout = dropout.copied();
    let repack = !packed_is_current || tape.directions.len() != config.num_layers * dirs;
    tape.directions
        .resize_with(config.num_layers * dirs, DirectionTape::default);
    let mut h_n = Array3::zeros(state.h.raw_dim());
    let mut c_n = Array3::zeros(state.c.raw_dim());
    let mut input = x.as_standard_layout();
    for l in 0..config.num_layers {
        let mut output = Array3::zeros((batch, seq, config.layer_output_size()));
        layer_forward(
            isa,
            weights,
            l,
            &tape.schedule,
            input.view(),
            state,
            &mut tape.directions[l * dirs..(l + 1) * dirs],
            (keep, repack),
            &mut output,
            (&mut h_n, &mut c_n),
        );
        if let (Some(d), true) = (dropout, l + 1 < config.num_layers) {
            let values = output
                .as_slice_mut()
                .expect("a new array is standard layout");
            dropout_in_place(values, d, l);
        }
        input = output.into();
    }
    let y = input.into_owned();
    Ok(LstmOutput { y, h_n, c_n })
}

/// Inference: [`forward_train`] without dropout, keeping nothing.
pub fn forward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
) -> Result<LstmOutput<F>> {
    forward_with(
        isa,
        weights,
        x,
        lengths,
        state,
        &mut GeneralScratch::default(),
    )
}

/// [`forward`] with its activations in `scratch`, whose buffers are reused.
pub fn forward_with<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
    scratch: &mut GeneralScratch<F>,
) -> Result<LstmOutput<F>> {
    forward_packed(isa, weights, x, lengths, state, scratch, false)
}

/// [`forward_with`], skipping the packing of the weights when `packed_is_current` (`scratch`
/// holds these weights, packed by an earlier call).
pub(crate) fn forward_packed<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    x: ArrayView3<'_, F>,
    lengths: Option<&[usize]>,
    state: Option<&LstmState<F>>,
    scratch: &mut GeneralScratch<F>,
    packed_is_current: bool,
) -> Result<LstmOutput<F>> {
    let (tape, keep) = (&mut scratch.inference, Keep::Outputs);
    run_forward(
        isa,
        weights,
        x,
        lengths,
        state,
        None,
        tape,
        keep,
        packed_is_current,
    )
}

/// Below this many multiply-adds in one pass of a layer (all its directions), its chunks run on
/// the calling thread. Threads that wait for work fall asleep, and waking them costs more than
/// the plain path's per-chunk minimum ([`chunk_rows`]) allows for when the machine is busy: on a
/// 2-core machine shared with other work, forward and backward of a bidirectional layer at B8
/// T28 I28 H32 (3.4 M multiply-adds forward, 1.8 M in the backward sweep) took 280 µs with
/// every pass on one thread, and about 150 µs more for each pass whose directions ran in
/// parallel.
const MIN_PARALLEL_WORK: usize = 1 << 24;

/// How a layer's work is shared among threads: into how many chunks each direction's rows are
/// split ([`Schedule::split`]), and whether the chunks of all directions run in parallel. With
/// `dirs` directions of `rows` buffer rows each, of `work` multiply-adds per row, a layer of
/// enough work ([`MIN_PARALLEL_WORK`]) splits each direction as the plain path splits a layer
/// ([`chunk_rows`]: about one chunk per thread), so that a thread slowed down by other work
/// leaves chunks for the rest to take.
fn share(dirs: usize, rows: usize, work: usize) -> (usize, bool) {
    if dirs * rows * work < MIN_PARALLEL_WORK || rayon::current_num_threads() == 1 {
        return (1, false);
    }
    (rows.div_ceil(chunk_rows(rows, work)), true)
}

/// Runs both directions of layer `l` over `input` `[B, T, I_l]` (standard layout), writing
/// `output` `[B, T, D·H_out]` (0 past each length, as allocated) and the layer's final states
/// into `h_n` `[L·D, B, H_out]`, `c_n` `[L·D, B, H]`, and keeping in the layer's `tapes` (one
/// per direction) what `keep` says; `repack`: the tapes' packed weights are not these.
#[allow(clippy::too_many_arguments)]
fn layer_forward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    l: usize,
    schedule: &Schedule,
    input: ArrayView3<'_, F>,
    state: &LstmState<F>,
    tapes: &mut [DirectionTape<F>],
    (keep, repack): (Keep, bool),
    output: &mut Array3<F>,
    (h_n, c_n): (&mut Array3<F>, &mut Array3<F>),
) {
    let config = weights.config();
    let dirs = tapes.len();
    let (hidden, h_out) = (config.hidden_size, config.output_size());
    let inputs = config.layer_input_size(l);
    let rows = schedule.rows();
    let projected = config.proj_size > 0;
    let [x_rows, h_rows, c_rows, gate_rows, r_rows] = keep.rows(schedule);
    for (d, tape) in tapes.iter_mut().enumerate() {
        let ld = l * dirs + d;
        if repack {
            tape.weights.pack(weights.layer(l, d));
        }
        gather_rows(schedule, state.h.index_axis(Axis(0), ld), &mut tape.h0);
        gather_rows(schedule, state.c.index_axis(Axis(0), ld), &mut tape.c0);
        tape.x.resize(x_rows, inputs);
        tape.h.resize(h_rows, h_out);
        tape.c.resize(c_rows, hidden);
        tape.gates.resize(gate_rows, 4 * hidden);
        tape.r.resize(if projected { r_rows } else { 0 }, hidden);
    }
    let work = 4 * hidden * (inputs + h_out) + if projected { hidden * h_out } else { 0 };
    let (parts, parallel) = share(dirs, rows, work);
    let chunks = schedule.split(parts);
    let mut y = sequence_rows(schedule, output.view_mut(), dirs);
    let mut tasks = Vec::with_capacity(dirs * chunks.len());
    for (d, (tape, y)) in tapes.iter_mut().zip(&mut y).enumerate() {
        let pieces = |rows| keep.pieces(rows, schedule, &chunks);
        let (x, h, c) = (
            pieces(&mut tape.x),
            pieces(&mut tape.h),
            pieces(&mut tape.c),
        );
        let (gates, r) = (pieces(&mut tape.gates), pieces(&mut tape.r));
        let per_chunk = x.into_iter().zip(h).zip(c).zip(gates).zip(r);
        for (rows, ((((x, h), c), gates), r)) in chunks.iter().zip(per_chunk) {
            tasks.push(ForwardChunk {
                weights: &tape.weights,
                d,
                input,
                h0: tape.h0.view(rows.clone()),
                c0: tape.c0.view(rows.clone()),
                y: y.drain(..rows.len()).collect(),
                rows: rows.clone(),
                x,
                h,
                c,
                gates,
                r,
            });
        }
    }
    run_tasks(parallel, tasks, |chunk| chunk_forward(isa, schedule, chunk));
    for (d, tape) in tapes.iter().enumerate() {
        let ld = l * dirs + d;
        for (j, &b) in schedule.order.iter().enumerate() {
            let last = keep.last_row(schedule, j);
            h_n.slice_mut(s![ld, b, ..])
                .assign(&ArrayView1::from(tape.h.get(last..last + 1)));
            c_n.slice_mut(s![ld, b, ..])
                .assign(&ArrayView1::from(tape.c.get(last..last + 1)));
        }
    }
}

/// Each direction's part of each sequence of a layer's output `[B, T, D·H_out]`, `[T, H_out]`,
/// in running order: `[direction][running row]`.
fn sequence_rows<'a, F>(
    schedule: &Schedule,
    output: ArrayViewMut3<'a, F>,
    dirs: usize,
) -> Vec<Vec<ArrayViewMut2<'a, F>>> {
    let h_out = output.dim().2 / dirs;
    let mut by_batch: Vec<Vec<ArrayViewMut2<'a, F>>> = output
        .into_outer_iter_mut()
        .map(|mut rest| {
            let mut parts = Vec::with_capacity(dirs);
            for _ in 1..dirs {
                let (part, after) = rest.split_at(Axis(1), h_out);
                parts.push(part);
                rest = after;
            }
            parts.push(rest);
            parts
        })
        .collect();
    let mut rows: Vec<Vec<ArrayViewMut2<'a, F>>> = (0..dirs).map(|_| Vec::new()).collect();
    for &b in &schedule.order {
        for (d, part) in std::mem::take(&mut by_batch[b]).into_iter().enumerate() {
            rows[d].push(part);
        }
    }
    rows
}

/// Runs `tasks` on the thread pool when `parallel`, else (or when there is one task) one after
/// another on this thread, with no hand-off.
fn run_tasks<T: Send>(parallel: bool, tasks: Vec<T>, run: impl Fn(T) + Sync + Send) {
    if !parallel || tasks.len() == 1 {
        tasks.into_iter().for_each(run);
    } else {
        tasks.into_par_iter().for_each(run);
    }
}

/// `rows[j] = state[order[j]]`: a state `[B, K]` in running order.
fn gather_rows<F: Real>(schedule: &Schedule, state: ArrayView2<'_, F>, rows: &mut Rows<F>) {
    rows.resize(schedule.batch(), state.ncols());
    for (j, &b) in schedule.order.iter().enumerate() {
        let mut row = matrix_mut(rows.get_mut(j..j + 1), state.ncols());
        row.row_mut(0).assign(&state.row(b));
    }
}

/// `state[order[j]] = rows[j]`: a state `[B, K]` back in batch order.
fn scatter_rows<F: Real>(schedule: &Schedule, rows: &Rows<F>, mut state: ArrayViewMut2<'_, F>) {
    for (j, &b) in schedule.order.iter().enumerate() {
        state
            .row_mut(b)
            .assign(&ArrayView1::from(rows.get(j..j + 1)));
    }
}

/// Splits a per-step buffer of rows of `width` into each chunk's part of each step:
/// `[chunk][step]`, the running rows among `chunks[k]` at step `s` (empty once they are all
/// finished); no steps at all for an empty buffer (`r` of a layer without projection).
/// `chunks` are ranges of rows one after another from row 0.
fn step_pieces<'a, F>(
    mut data: &'a mut [F],
    width: usize,
    schedule: &Schedule,
    chunks: &[Range<usize>],
) -> Vec<Vec<&'a mut [F]>> {
    let mut pieces: Vec<Vec<&mut [F]>> = chunks.iter().map(|_| Vec::new()).collect();
    if data.is_empty() {
        return pieces;
    }
    for s in 0..schedule.seq() {
        let n = schedule.running(s);
        let (mut step, rest) = std::mem::take(&mut data).split_at_mut(n * width);
        data = rest;
        for (rows, pieces) in chunks.iter().zip(&mut pieces) {
            let len = rows.end.min(n).saturating_sub(rows.start);
            let (piece, rest) = std::mem::take(&mut step).split_at_mut(len * width);
            step = rest;
            pieces.push(piece);
        }
    }
    pieces
}

/// Splits slots of `batch` rows of `width` (each row one of the batch, in running order) into
/// each chunk's rows of each slot: `[chunk][slot]`.
fn slot_pieces<'a, F>(
    data: &'a mut [F],
    width: usize,
    batch: usize,
    chunks: &[Range<usize>],
) -> Vec<Vec<&'a mut [F]>> {
    let mut pieces: Vec<Vec<&mut [F]>> = chunks.iter().map(|_| Vec::new()).collect();
    for slot in data.chunks_mut((batch * width).max(1)) {
        for (chunk, piece) in pieces.iter_mut().zip(row_pieces(slot, width, chunks)) {
            chunk.push(piece);
        }
    }
    pieces
}

/// Splits rows of `width` (one per batch row, in running order) into each chunk's rows.
fn row_pieces<'a, F>(
    mut data: &'a mut [F],
    width: usize,
    chunks: &[Range<usize>],
) -> Vec<&'a mut [F]> {
    chunks
        .iter()
        .map(|rows| {
            let (piece, rest) = std::mem::take(&mut data).split_at_mut(rows.len() * width);
            data = rest;
            piece
        })
        .collect()
}

/// One chunk of rows of one direction in the forward pass: its part of each step's buffers.
struct ForwardChunk<'a, F> {
    weights: &'a StepWeights<F>,
    /// The direction.
    d: usize,
    /// The layer's input, `[B, T, I_l]` in standard layout.
    input: ArrayView3<'a, F>,
    /// The chunk's rows of `h0`, `c0`.
    h0: ArrayView2<'a, F>,
    c0: ArrayView2<'a, F>,
    /// The direction's part of the chunk's rows' outputs, `[T, H_out]` each.
    y: Vec<ArrayViewMut2<'a, F>>,
    /// The chunk's rows, in running order.
    rows: Range<usize>,
    /// The chunk's rows of the slots of the input, `h`, `c`, the gates and `r`, step `s` using
    /// slot `s % slots` (see [`Keep`]: on a tape every step has a slot of its own, see
    /// [`step_pieces`]; no slots for `r` when the layer is not projected).
    x: Vec<&'a mut [F]>,
    h: Vec<&'a mut [F]>,
    c: Vec<&'a mut [F]>,
    gates: Vec<&'a mut [F]>,
    r: Vec<&'a mut [F]>,
}

/// The steps of one chunk of rows (see the module docs): each reads its rows' inputs, runs the
/// step and writes their outputs.
fn chunk_forward<F: Real>(isa: Isa, schedule: &Schedule, chunk: ForwardChunk<'_, F>) {
    let ForwardChunk {
        weights,
        d,
        input,
        h0,
        c0,
        mut y,
        rows,
        mut x,
        mut h,
        mut c,
        mut gates,
        mut r,
    } = chunk;
    let (hidden, h_out) = (c0.ncols(), h0.ncols());
    let (_, seq, inputs) = input.dim();
    let input = input.to_slice().expect("layer inputs are standard layout");
    let mut scratch = GemmScratch::default();
    for s in 0..seq {
        let n = schedule.step_rows(s, &rows).len();
        if n == 0 {
            break;
        }
        let slots = x.len();
        let x_s = &mut x[s % slots][..n * inputs];
        for (k, x_row) in x_s.chunks_exact_mut(inputs).enumerate() {
            let j = rows.start + k;
            let at = (schedule.order[j] * seq + schedule.time(d, s, j)) * inputs;
            x_row.copy_from_slice(&input[at..at + inputs]);
        }
        let ((h_prev, h_s), (c_prev, c_s)) = match s {
            0 => (
                (h0, &mut *h[0]),
                (c0.to_slice().expect("rows are contiguous"), &mut *c[0]),
            ),
            _ => {
                let slots = h.len();
                let (h_prev, h_s) = prev_and_now(&mut h, (s - 1) % slots, s % slots);
                let (c_prev, c_s) = prev_and_now(&mut c, (s - 1) % slots, s % slots);
                (
                    (matrix(&h_prev[..n * h_out], h_out), h_s),
                    (&c_prev[..n * hidden], c_s),
                )
            }
        };
        let (h_s, c_s) = (&mut h_s[..n * h_out], &mut c_s[..n * hidden]);
        let slots = gates.len();
        let a = &mut gates[s % slots][..n * 4 * hidden];
        gemm(
            isa,
            &[matrix(x_s, inputs), h_prev],
            weights.w.all(),
            Init::Bias(&weights.bias),
            &mut matrix_mut(a, 4 * hidden),
            &mut scratch,
        );
        match &weights.w_hr {
            None => lstm_forward_step_rows(isa, a, c_prev, c_s, h_s, hidden),
            Some(w_hr) => {
                let slots = r.len();
                let r_s = &mut r[s % slots][..n * hidden];
                lstm_forward_step_rows(isa, a, c_prev, c_s, r_s, hidden);
                gemm(
                    isa,
                    &[matrix(r_s, hidden)],
                    w_hr.all(),
                    Init::Zero,
                    &mut matrix_mut(h_s, h_out),
                    &mut scratch,
                );
            }
        }
        for (k, h_row) in h_s.chunks_exact(h_out).enumerate() {
            let mut out = y[k].row_mut(schedule.time(d, s, rows.start + k));
            out.as_slice_mut()
                .expect("output rows are contiguous")
                .copy_from_slice(h_row);
        }
    }
}

/// `slots[prev]` to read and `slots[now]` to write (`prev ≠ now`).
fn prev_and_now<'a, F>(
    slots: &'a mut [&mut [F]],
    prev: usize,
    now: usize,
) -> (&'a [F], &'a mut [F]) {
    if prev < now {
        let (before, from_now) = slots.split_at_mut(now);
        (&*before[prev], &mut *from_now[0])
    } else {
        let (before, from_prev) = slots.split_at_mut(prev);
        (&*from_prev[0], &mut *before[now])
    }
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
    backward_with(
        isa,
        weights,
        tape,
        upstream,
        want,
        &mut GeneralScratch::default(),
    )
}

/// [`backward`] with working memory in `scratch`, whose buffers are reused.
pub fn backward_with<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    tape: &GeneralTape<F>,
    upstream: &Upstream<F>,
    want: GradRequest,
    scratch: &mut GeneralScratch<F>,
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
    let [h_shape, c_shape] = crate::lstm::state_shapes(&config, batch);
    let mut dh0 = Array3::zeros(h_shape);
    let mut dc0 = Array3::zeros(c_shape);
    let mut grads = vec![None; config.num_layers * dirs];
    // The gradient on the current layer's output (none: zero), standard layout.
    let mut dy = upstream.dy.as_ref().map(|dy| dy.as_standard_layout());
    let scratch = &mut scratch.directions;
    scratch.resize_with(dirs, DirectionScratch::default);
    for l in (0..config.num_layers).rev() {
        let need_dx = l > 0 || want.x;
        layer_backward(
            isa,
            weights,
            l,
            tape,
            (dy.as_ref().map(|dy| dy.view()), upstream),
            (want.weights, need_dx),
            scratch,
        );
        for (d, ds) in scratch.iter_mut().enumerate() {
            let ld = l * dirs + d;
            scatter_rows(&tape.schedule, &ds.dh0, dh0.index_axis_mut(Axis(0), ld));
            scatter_rows(&tape.schedule, &ds.dc, dc0.index_axis_mut(Axis(0), ld));
            grads[ld] = ds.grads.take().map(|g| without_absent_biases(&config, g));
        }
        if !need_dx {
            break;
        }
        let mut dx = Array3::zeros((batch, seq, config.layer_input_size(l)));
        input_grads(&tape.schedule, scratch, &mut dx);
        // The gradient on layer l's input reaches layer l - 1's output through its dropout.
        if let (Some(d), true) = (&tape.dropout, l > 0) {
            let values = dx.as_slice_mut().expect("a new array is standard layout");
            dropout_in_place(values, d, l - 1);
        }
        dy = Some(dx.into());
    }
    let (h0, c0) = if want.state {
        (Some(dh0), Some(dc0))
    } else {
        (None, None)
    };
    Ok(LstmGrads {
        x: want.x.then(|| dy.expect("dx of layer 0").into_owned()),
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

/// The backward pass of layer `l`, into each direction's `scratch`: from the gradient `dy`
/// `[B, T, D·H_out]` on the layer's outputs (standard layout; none: zero) and `upstream`'s on
/// its final states, `dh0`, `dc` (`dL/dc0`) and, as `(weights, dx)` ask, the parameter
/// gradients and the `dx` rows.
fn layer_backward<F: Real>(
    isa: Isa,
    weights: &LstmWeights<F>,
    l: usize,
    tape: &GeneralTape<F>,
    (dy, upstream): (Option<ArrayView3<'_, F>>, &Upstream<F>),
    want: (bool, bool),
    scratch: &mut [DirectionScratch<F>],
) {
    let config = weights.config();
    let schedule = &tape.schedule;
    let dirs = scratch.len();
    let (hidden, h_out) = (config.hidden_size, config.output_size());
    let (batch, rows) = (schedule.batch(), schedule.rows());
    let projected = config.proj_size > 0;
    let tapes = &tape.directions[l * dirs..(l + 1) * dirs];
    for (d, ds) in scratch.iter_mut().enumerate() {
        let (ld, w) = (l * dirs + d, weights.layer(l, d));
        ds.w_hh
            .pack(4 * hidden, h_out, &[(0, 0, w.weight_hh.view())]);
        ds.w_hr = w.weight_hr.as_ref().map(|w_hr| {
            let mut p = ds.w_hr.take().unwrap_or_default();
            p.pack(h_out, hidden, &[(0, 0, w_hr.view())]);
            p
        });
        ds.dh_n.resize(batch, h_out);
        match &upstream.dh_n {
            Some(u) => gather_rows(schedule, u.index_axis(Axis(0), ld), &mut ds.dh_n),
            None => ds.dh_n.data.fill(F::zero()),
        }
        ds.dc.resize(batch, hidden);
        match &upstream.dc_n {
            Some(u) => gather_rows(schedule, u.index_axis(Axis(0), ld), &mut ds.dc),
            None => ds.dc.data.fill(F::zero()),
        }
        ds.dgates.resize(rows, 4 * hidden);
        ds.dh.resize(if projected { rows } else { 0 }, h_out);
    }
    let work = 4 * hidden * h_out + if projected { hidden * h_out } else { 0 };
    let (parts, parallel) = share(dirs, rows, work);
    let chunks = schedule.split(parts);
    let mut tasks = Vec::with_capacity(dirs * chunks.len());
    for (d, (ds, tape)) in scratch.iter_mut().zip(tapes).enumerate() {
        let dgates = step_pieces(&mut ds.dgates.data, 4 * hidden, schedule, &chunks);
        let dh = step_pieces(&mut ds.dh.data, h_out, schedule, &chunks);
        let dc = row_pieces(&mut ds.dc.data, hidden, &chunks);
        let pieces = dgates.into_iter().zip(dh).zip(dc);
        for (rows, ((dgates, dh), dc)) in chunks.iter().zip(pieces) {
            tasks.push(BackwardChunk {
                tape,
                w_hh: &ds.w_hh,
                w_hr: ds.w_hr.as_ref(),
                d,
                dy,
                dh_n: ds.dh_n.get(rows.clone()),
                rows: rows.clone(),
                dc,
                dgates,
                dh,
            });
        }
    }
    run_tasks(parallel, tasks, |chunk| {
        chunk_backward(isa, schedule, chunk)
    });
    let directions: Vec<_> = scratch.iter_mut().zip(tapes).enumerate().collect();
    // The directions' whole-sequence products (each also split by rows, in `gemm_parallel`).
    let inputs = config.layer_input_size(l);
    let (_, parallel) = share(dirs, rows, 4 * hidden * (2 * inputs + h_out + 1));
    run_tasks(parallel, directions, |(d, (ds, tape))| {
        direction_products(isa, weights.layer(l, d), schedule, tape, ds, want)
    });
}

/// `dx` `[B, T, I_l]` from each direction's `dx` rows, at the times they were read: direction
/// 0's, then direction 1's added (0 past each length, as allocated).
fn input_grads<F: Real>(schedule: &Schedule, scratch: &[DirectionScratch<F>], dx: &mut Array3<F>) {
    // Each sequence on its own, in parallel when there are many values to copy.
    let parallel = scratch.len() * schedule.rows() * dx.dim().2 >= MIN_PARALLEL_WORK;
    let sequences = sequence_rows(schedule, dx.view_mut(), 1).remove(0);
    let tasks: Vec<_> = sequences.into_iter().enumerate().collect();
    run_tasks(parallel, tasks, |(j, mut dx)| {
        for (d, ds) in scratch.iter().enumerate() {
            for s in 0..schedule.lengths[j] {
                let from = ds
                    .dx
                    .get(schedule.offsets[s] + j..schedule.offsets[s] + j + 1);
                let mut to = dx.row_mut(schedule.time(d, s, j));
                let to = to.as_slice_mut().expect("rows are contiguous");
                match d {
                    0 => to.copy_from_slice(from),
                    _ => to.iter_mut().zip(from).for_each(|(v, &g)| *v += g),
                }
            }
        }
    });
}

/// One chunk of rows of one direction in the backward pass.
struct BackwardChunk<'a, F> {
    tape: &'a DirectionTape<F>,
    /// `W_hh` `[4H, H_out]` and `W_hr` `[H_out, H]` (when projected), packed.
    w_hh: &'a PackedB<F>,
    w_hr: Option<&'a PackedB<F>>,
    /// The direction, and the gradient on the layer's outputs `[B, T, D·H_out]` (standard
    /// layout; none: zero).
    d: usize,
    dy: Option<ArrayView3<'a, F>>,
    /// The chunk's rows of `dL/dh_n`.
    dh_n: &'a [F],
    /// The chunk's rows, in running order.
    rows: Range<usize>,
    /// The chunk's rows of `dL/dc`: `dc_n` in, `dc0` out.
    dc: &'a mut [F],
    /// Per step, the chunk's running rows of `dgates` and of `dh` (no steps when not
    /// projected), see [`step_pieces`].
    dgates: Vec<&'a mut [F]>,
    dh: Vec<&'a mut [F]>,
}

/// The reverse sweep of one chunk of rows: every step's `dgates` (and `dh` when projected), and
/// `dL/dc0`.
fn chunk_backward<F: Real>(isa: Isa, schedule: &Schedule, chunk: BackwardChunk<'_, F>) {
    let BackwardChunk {
        tape,
        w_hh,
        w_hr,
        d,
        dy,
        dh_n,
        rows,
        dc,
        mut dgates,
        dh: mut dh_steps,
    } = chunk;
    let (hidden, h_out) = (tape.c0.width, tape.h0.width);
    let dy = dy.map(|dy| {
        let (_, seq, width) = dy.dim();
        let values = dy.to_slice().expect("dy is standard layout");
        (values, seq, width)
    });
    let mut dh = vec![F::zero(); rows.len() * h_out];
    let mut dr = vec![
        F::zero();
        if w_hr.is_some() {
            rows.len() * hidden
        } else {
            0
        }
    ];
    let mut scratch = GemmScratch::default();
    for s in (0..schedule.seq()).rev() {
        let here = schedule.step_rows(s, &rows);
        let n = here.len();
        if n == 0 {
            continue;
        }
        // dh = dy + (dgates_{s+1} · W_hh for the rows still running then, dh_n for the rows
        // whose last step this is), in the order of the plain path.
        let dh = &mut dh[..n * h_out];
        match dy {
            None => dh.fill(F::zero()),
            Some((dy, seq, width)) => {
                for (k, dh_row) in dh.chunks_exact_mut(h_out).enumerate() {
                    let j = rows.start + k;
                    let at = (schedule.order[j] * seq + schedule.time(d, s, j)) * width + d * h_out;
                    dh_row.copy_from_slice(&dy[at..at + h_out]);
                }
            }
        }
        let (now, later) = dgates.split_at_mut(s + 1);
        let later: &[F] = later.first().map_or(&[], |g| &**g);
        let running = later.len() / (4 * hidden);
        gemm(
            isa,
            &[matrix(later, 4 * hidden)],
            w_hh.all(),
            Init::Accumulate,
            &mut matrix_mut(&mut dh[..running * h_out], h_out),
            &mut scratch,
        );
        let ending = running * h_out..n * h_out;
        dh[ending.clone()]
            .iter_mut()
            .zip(&dh_n[ending])
            .for_each(|(v, &u)| *v += u);
        let dh: &[F] = match w_hr {
            None => dh,
            Some(w_hr) => {
                dh_steps[s].copy_from_slice(dh);
                let dr = &mut dr[..n * hidden];
                gemm(
                    isa,
                    &[matrix(dh, h_out)],
                    w_hr.all(),
                    Init::Zero,
                    &mut matrix_mut(dr, hidden),
                    &mut scratch,
                );
                dr
            }
        };
        let c_prev = match s {
            0 => tape.c0.get(rows.start..rows.start + n),
            _ => {
                let prev = schedule.step_rows(s - 1, &rows).start;
                tape.c.get(prev..prev + n)
            }
        };
        lstm_backward_step_rows(
            isa,
            tape.gates.get(here.clone()),
            tape.c.get(here),
            c_prev,
            dh,
            &mut dc[..n * hidden],
            now[s],
            hidden,
        );
    }
}

/// The whole-sequence products of one direction after its sweep: `dL/dh0 = dgates_0 · W_hh`,
/// and as `(weights, dx)` ask, the parameter gradients and the `dx` rows `dgates · W_ih`.
fn direction_products<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    schedule: &Schedule,
    tape: &DirectionTape<F>,
    ds: &mut DirectionScratch<F>,
    (want_weights, want_dx): (bool, bool),
) {
    let (four_h, inputs) = w.weight_ih.dim();
    let h_out = w.weight_hh.ncols();
    let (batch, rows) = (schedule.batch(), schedule.rows());
    // Every row runs step 0.
    ds.dh0.resize(batch, h_out);
    gemm_parallel(
        isa,
        &[ds.dgates.view(0..batch)],
        ds.w_hh.all(),
        Init::Zero,
        &mut matrix_mut(&mut ds.dh0.data, h_out),
    );
    if want_weights {
        ds.grads = Some(direction_weight_grads(isa, w, schedule, tape, ds));
    }
    if want_dx {
        ds.w_ih.pack(four_h, inputs, &[(0, 0, w.weight_ih.view())]);
        ds.dx.resize(rows, inputs);
        gemm_parallel(
            isa,
            &[ds.dgates.all()],
            ds.w_ih.all(),
            Init::Zero,
            &mut matrix_mut(&mut ds.dx.data, inputs),
        );
    }
}

/// The parameter gradients of one direction: `[dW_ih | dW_hh | db] = dgatesᵀ · [x | h_{s-1} |
/// 1]` over all `R` rows, and `dW_hr = dhᵀ · r` when projected.
fn direction_weight_grads<F: Real>(
    isa: Isa,
    w: &LayerWeights<F>,
    schedule: &Schedule,
    tape: &DirectionTape<F>,
    ds: &mut DirectionScratch<F>,
) -> LayerWeights<F> {
    let (four_h, inputs) = w.weight_ih.dim();
    let h_out = w.weight_hh.ncols();
    let (batch, rows) = (schedule.batch(), schedule.rows());
    ds.ones.resize(rows, F::one());
    // h_{s-1} of step s's rows: h0 for step 0, the first n_s rows of step s - 1's h after it.
    let mut blocks = vec![(0, 0, tape.x.all()), (0, inputs, tape.h0.view(0..batch))];
    for s in 1..schedule.seq() {
        let prev = schedule.offsets[s - 1];
        let h_prev = tape.h.view(prev..prev + schedule.running(s));
        blocks.push((schedule.offsets[s], inputs, h_prev));
    }
    blocks.push((0, inputs + h_out, matrix(&ds.ones[..rows], 1)));
    ds.operand.pack(rows, inputs + h_out + 1, &blocks);
    if ds.dw.dim() != (four_h, inputs + h_out + 1) {
        ds.dw = Array2::zeros((four_h, inputs + h_out + 1));
    }
    gemm_parallel(
        isa,
        &[ds.dgates.all().t()],
        ds.operand.all(),
        Init::Zero,
        &mut ds.dw.view_mut(),
    );
    let bias = ds.dw.column(inputs + h_out).to_owned();
    let weight_hr = w.weight_hr.as_ref().map(|w_hr| {
        ds.operand.pack(rows, tape.r.width, &[(0, 0, tape.r.all())]);
        let mut dw_hr = Array2::<F>::zeros(w_hr.raw_dim());
        gemm_parallel(
            isa,
            &[ds.dh.all().t()],
            ds.operand.all(),
            Init::Zero,
            &mut dw_hr.view_mut(),
        );
        dw_hr
    });
    LayerWeights {
        weight_ih: ds.dw.slice(s![.., ..inputs]).to_owned(),
        weight_hh: ds.dw.slice(s![.., inputs..inputs + h_out]).to_owned(),
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
