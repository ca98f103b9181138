//! What goes into and comes out of an LSTM, shared by the CPU and GPU paths.
//!
//! Layouts follow PyTorch `nn.LSTM(batch_first=True)`: inputs `x` are `[B, T, I]`, outputs `y`
//! are `[B, T, H]` (the last layer's hidden state at every step), states are `[L, B, H]`
//! (index = layer). All arrays are row-major.
//!
//! With `D` directions per layer (2 when bidirectional) and `H_out` features of `h` (the
//! projection's size, or `H`), `y` is `[B, T, D·H_out]` (`[forward | reverse]` at each step),
//! `h` states are `[L·D, B, H_out]` and `c` states `[L·D, B, H]`, index `l·D + d`. The plain
//! shapes above are the case `D = 1`, `H_out = H`.
//!
//! Variable lengths (`lengths[b]` in `1..=T`, [`Lstm::forward_lengths`]) follow PyTorch's
//! `pack_padded_sequence(enforce_sorted=False)` and `pad_packed_sequence`: sequence `b` uses
//! steps `0 .. lengths[b]` only, `y` is 0 past its length, the forward direction's `h_n`/`c_n`
//! is its state after step `lengths[b] - 1`, the reverse direction starts at that step, and
//! every gradient from padded positions is 0.
//!
//! [`Lstm`] is what an LSTM does on either device: [`crate::cpu::lstm::CpuLstm`] and
//! [`crate::gpu::GpuLstm`] implement it with the same meaning, so code (and this crate's tests and
//! benchmarks) can be written once for both.

use ndarray::{Array3, ArrayView3};

use crate::error::Result;
use crate::real::Real;
use crate::shape::{expect_nonzero, expect_shape};
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// An LSTM on some device, holding its parameters and the working memory of its last calls.
///
/// ```
/// use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmWeights, Upstream, cpu::lstm::CpuLstm};
/// use lstm_wgpu::ndarray::Array3;
///
/// /// Gradients of sum(y) for any device.
/// fn grads_of_sum(lstm: &mut dyn Lstm, x: &Array3<f32>) -> lstm_wgpu::Result<lstm_wgpu::LstmGrads> {
///     let (out, tape) = lstm.forward_train(x.view(), None)?;
///     let upstream = Upstream { dy: Some(Array3::ones(out.y.raw_dim())), ..Default::default() };
///     lstm.backward(&tape, &upstream, GradRequest::ALL)
/// }
///
/// let mut lstm = CpuLstm::new(LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 1)?, 0))?;
/// let g = grads_of_sum(&mut lstm, &Array3::zeros((2, 5, 3)))?; // x [B, T, I]
/// assert_eq!(g.x.unwrap().shape(), &[2, 5, 3]);
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
pub trait Lstm<F: Real = f32> {
    /// The sizes.
    fn config(&self) -> &LstmConfig;

    /// The parameters, PyTorch layout (a copy; on a GPU, read back).
    fn weights(&self) -> Result<LstmWeights<F>>;

    /// Replaces the parameters; the configuration must stay the same.
    fn set_weights(&mut self, weights: &LstmWeights<F>) -> Result<()>;

    /// Forward pass: `x` `[B, T, I]`, `state` `h0`, `c0` `[L, B, H]` (zeros when `None`) →
    /// `y` `[B, T, H]`, `h_n`, `c_n` `[L, B, H]`. Keeps nothing for backward.
    fn forward(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>>;

    /// Forward pass that keeps the activations backward needs; shapes as [`Lstm::forward`].
    /// The returned [`Tape`] is valid until the next `forward_train` of this model.
    fn forward_train(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)>;

    /// [`Lstm::forward`] of a batch of sequences of different lengths: `lengths` `[B]`, each in
    /// `1..=T` (see the module documentation). A slice of the wrong size is
    /// [`Error::Shape`](crate::Error::Shape), a length outside `1..=T`
    /// [`Error::SequenceLength`](crate::Error::SequenceLength).
    fn forward_lengths(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: &[usize],
        state: Option<&LstmState<F>>,
    ) -> Result<LstmOutput<F>>;

    /// [`Lstm::forward_train`] of a batch of sequences of different lengths, as
    /// [`Lstm::forward_lengths`]; [`Lstm::backward`] of its tape gives 0 for every gradient from
    /// a padded position.
    fn forward_train_lengths(
        &mut self,
        x: ArrayView3<'_, F>,
        lengths: &[usize],
        state: Option<&LstmState<F>>,
    ) -> Result<(LstmOutput<F>, Tape)>;

    /// Sets dropout between stacked layers for the training passes that follow
    /// ([`Lstm::forward_train`], [`Lstm::forward_train_lengths`]); `None` (the default) for
    /// none. Inference calls never drop anything. Each training pass uses the masks of
    /// `dropout.pass` and advances it by one, so [`Lstm::dropout`] tells where a run stands.
    fn set_dropout(&mut self, dropout: Option<Dropout>) -> Result<()>;

    /// The dropout in effect, its `pass` the one the next training pass uses.
    fn dropout(&self) -> Option<Dropout>;

    /// Backpropagation through time from the activations of `tape` (the latest
    /// [`Lstm::forward_train`]). Absent upstream gradients are zero; fields not in `want` are
    /// `None`.
    fn backward(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<F>,
        want: GradRequest,
    ) -> Result<LstmGrads<F>>;

    /// Forward and backward of one batch, with `upstream` known beforehand (for example a fixed
    /// `dy`); on a GPU this is one submission.
    fn forward_backward(
        &mut self,
        x: ArrayView3<'_, F>,
        state: Option<&LstmState<F>>,
        upstream: &Upstream<F>,
        want: GradRequest,
    ) -> Result<(LstmOutput<F>, LstmGrads<F>)> {
        let (out, tape) = self.forward_train(x, state)?;
        let grads = self.backward(&tape, upstream, want)?;
        Ok((out, grads))
    }
}

/// Inverted dropout on the output of every layer but the last, in training passes only:
/// PyTorch's `nn.LSTM(dropout=p)`. Each element is zeroed with probability `p` and the others
/// are scaled by `1 / (1 - p)`; the gradient passes the same mask.
///
/// The masks come from a counter-based generator ([`crate::cpu::dropout`], twin of
/// `shaders/dropout.wgsl`): element `i` of layer `l`'s output `[B, T, D·H_out]` (row-major) in
/// training pass `pass` is kept when a hash of `(seed, pass, l, i)` is at least
/// [`Dropout::threshold`]. So both devices draw the same masks, a pass is reproducible from its
/// number alone, and a run resumed at pass `n` draws what the uninterrupted run would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropout {
    /// The probability of zeroing an element, in `[0, 1)`, as `f32` bits (see [`Dropout::p`]).
    p_bits: u32,
    /// The seed of every mask.
    pub seed: u64,
    /// The training pass the next mask belongs to; each training pass advances it by one.
    pub pass: u64,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)` from `seed`, starting at pass 0; anything else
    /// is [`Error::Config`](crate::Error::Config).
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(crate::error::Error::config(
                "dropout",
                format!("probability {p} is outside [0, 1)"),
            ));
        }
        Ok(Dropout {
            p_bits: p.to_bits(),
            seed,
            pass: 0,
        })
    }

    /// The same dropout at training pass `pass`.
    pub fn at_pass(self, pass: u64) -> Self {
        Dropout { pass, ..self }
    }

    /// The probability of zeroing an element.
    pub fn p(&self) -> f32 {
        f32::from_bits(self.p_bits)
    }

    /// Elements whose 32 random bits are below this are dropped: `round(p · 2³²)`.
    pub fn threshold(&self) -> u32 {
        let t = (f64::from(self.p()) * 4_294_967_296.0).round();
        t.min(f64::from(u32::MAX)) as u32
    }

    /// The factor on kept elements, `1 / (1 - p)`, as `f32`.
    pub fn scale(&self) -> f32 {
        self.scale_f64() as f32
    }

    /// `1 / (1 - p)` in `f64` (for `f64` models; `f32` ones use it rounded, [`Dropout::scale`]).
    pub fn scale_f64(&self) -> f64 {
        1.0 / (1.0 - f64::from(self.p()))
    }

    /// The 64-bit key of layer `layer`'s mask in this pass, as two words: SplitMix64 chained over
    /// the seed, the pass and the layer.
    pub fn key(&self, layer: usize) -> [u32; 2] {
        let k = splitmix64(splitmix64(splitmix64(self.seed) ^ self.pass) ^ layer as u64);
        [k as u32, (k >> 32) as u32]
    }
}

/// One SplitMix64 step (Steele, Lea, Flood 2014).
fn splitmix64(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hidden and cell state of every layer: `h`, `c` are `[L, B, H]` (in general `h`
/// `[L·D, B, H_out]`, `c` `[L·D, B, H]`, index `l·D + d`).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmState<F = f32> {
    /// Hidden state, `[L·D, B, H_out]`.
    pub h: Array3<F>,
    /// Cell state, `[L·D, B, H]`.
    pub c: Array3<F>,
}

impl<F: Real> LstmState<F> {
    /// All-zero state, PyTorch's default when `h0`/`c0` are omitted.
    pub fn zeros(config: &LstmConfig, batch: usize) -> Self {
        let [h, c] = state_shapes(config, batch);
        LstmState {
            h: Array3::zeros(h),
            c: Array3::zeros(c),
        }
    }
}

/// The shapes of the `h` and `c` states of `batch` sequences: `[L·D, B, H_out]`, `[L·D, B, H]`.
pub(crate) fn state_shapes(config: &LstmConfig, batch: usize) -> [[usize; 3]; 2] {
    let ld = config.num_layers * config.num_directions();
    [
        [ld, batch, config.output_size()],
        [ld, batch, config.hidden_size],
    ]
}

/// The result of a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmOutput<F = f32> {
    /// Last layer's hidden state at every step, `[B, T, H]` (`[B, T, D·H_out]`).
    pub y: Array3<F>,
    /// Every layer's hidden state after the last step, `[L, B, H]` (`[L·D, B, H_out]`).
    pub h_n: Array3<F>,
    /// Every layer's cell state after the last step, `[L, B, H]` (`[L·D, B, H]`).
    pub c_n: Array3<F>,
}

/// Gradients of a scalar loss with respect to the forward's outputs; an absent one is zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream<F = f32> {
    /// `dL/dy`, `[B, T, H]` (`[B, T, D·H_out]`).
    pub dy: Option<Array3<F>>,
    /// `dL/dh_n`, `[L, B, H]` (`[L·D, B, H_out]`).
    pub dh_n: Option<Array3<F>>,
    /// `dL/dc_n`, `[L, B, H]` (`[L·D, B, H]`).
    pub dc_n: Option<Array3<F>>,
}

impl<F> Default for Upstream<F> {
    fn default() -> Self {
        Upstream {
            dy: None,
            dh_n: None,
            dc_n: None,
        }
    }
}

/// Which gradients a backward pass should hand back. The GPU path reads back only these; the CPU
/// path computes everything and drops the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GradRequest {
    /// `dL/dx`, `[B, T, I]` (costs one extra GEMM on the GPU when asked for).
    pub x: bool,
    /// `dL/dh0` and `dL/dc0`, `[L, B, H]` each.
    pub state: bool,
    /// Every parameter's gradient, PyTorch layout.
    pub weights: bool,
}

impl GradRequest {
    /// Everything.
    pub const ALL: GradRequest = GradRequest {
        x: true,
        state: true,
        weights: true,
    };
    /// Nothing: backward still runs (and, on the GPU, leaves the gradients where an optimizer
    /// kernel can use them) but nothing is read back.
    pub const NONE: GradRequest = GradRequest {
        x: false,
        state: false,
        weights: false,
    };
    /// Only the parameter gradients (what an optimizer needs).
    pub const WEIGHTS: GradRequest = GradRequest {
        x: false,
        state: false,
        weights: true,
    };
}

/// Gradients of the loss; fields not asked for in the [`GradRequest`] are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmGrads<F = f32> {
    /// `dL/dx`, `[B, T, I]`.
    pub x: Option<Array3<F>>,
    /// `dL/dh0`, `[L, B, H]` (`[L·D, B, H_out]`).
    pub h0: Option<Array3<F>>,
    /// `dL/dc0`, `[L, B, H]` (`[L·D, B, H]`).
    pub c0: Option<Array3<F>>,
    /// Per layer and direction (index `l·D + d`, as [`LstmWeights::layers`]):
    /// `dL/dweight_ih` `[4H, I_l]`, `dL/dweight_hh` `[4H, H_out]`, `dL/dbias_ih` and
    /// `dL/dbias_hh` `[4H]` (the two bias gradients are always equal), `dL/dweight_hr`
    /// `[H_out, H]` when projected.
    pub layers: Option<Vec<LayerWeights<F>>>,
}

/// Handle to the activations a `forward_train` left for `backward` (on the GPU for
/// [`crate::gpu::GpuLstm`], in host memory for [`crate::cpu::lstm::CpuLstm`]). Only the most
/// recent one of the model that made it is valid: the buffers are reused. A tape of another
/// model is [`Error::ForeignTape`](crate::Error::ForeignTape), an older one of the same model
/// [`Error::StaleTape`](crate::Error::StaleTape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tape {
    model: u64,
    generation: u64,
    batch: usize,
    seq: usize,
}

impl Tape {
    /// Batch size `B` of the recorded forward pass.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sequence length `T` of the recorded forward pass.
    pub fn seq(&self) -> usize {
        self.seq
    }
}

/// Gives out a model's tapes and checks them: a process-wide model number and the generation
/// of the activations the model holds now. A clone is another model, with a number of its own.
#[derive(Debug)]
pub(crate) struct TapeIssuer {
    model: u64,
    generation: u64,
}

static NEXT_MODEL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl TapeIssuer {
    pub(crate) fn new() -> Self {
        let model = NEXT_MODEL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TapeIssuer {
            model,
            generation: 0,
        }
    }

    /// A tape for activations just recorded for `(batch, seq)`; earlier tapes become stale.
    pub(crate) fn issue(&mut self, batch: usize, seq: usize) -> Tape {
        self.invalidate();
        Tape {
            model: self.model,
            generation: self.generation,
            batch,
            seq,
        }
    }

    /// Makes every tape given out so far stale (the activations are gone).
    pub(crate) fn invalidate(&mut self) {
        self.generation += 1;
    }

    /// [`Error::ForeignTape`](crate::Error::ForeignTape) for another model's tape,
    /// [`Error::StaleTape`](crate::Error::StaleTape) unless it is this model's latest.
    pub(crate) fn check(&self, tape: &Tape) -> Result<()> {
        use crate::error::Error;
        if tape.model != self.model {
            return Err(Error::ForeignTape {
                tape_model: tape.model,
                model: self.model,
            });
        }
        if tape.generation != self.generation {
            return Err(Error::StaleTape {
                tape: tape.generation,
                current: self.generation,
            });
        }
        Ok(())
    }
}

impl Clone for TapeIssuer {
    fn clone(&self) -> Self {
        TapeIssuer::new()
    }
}

/// [`Error::Shape`](crate::Error::Shape) unless `new` has the sizes of `current` (replacing a
/// model's weights keeps its configuration).
pub(crate) fn check_same_config(current: &LstmConfig, new: &LstmConfig) -> Result<()> {
    let sizes = |c: &LstmConfig| {
        let dirs = c.num_directions();
        let bias = usize::from(c.bias);
        vec![
            c.input_size,
            c.hidden_size,
            c.num_layers,
            dirs,
            c.proj_size,
            bias,
        ]
    };
    if new != current {
        return Err(crate::error::Error::Shape {
            tensor: "weights (input_size, hidden_size, num_layers, directions, proj_size, bias)"
                .into(),
            expected: sizes(current),
            actual: sizes(new),
        });
    }
    Ok(())
}

/// Checks `x` `[B, T, I]` and an optional state against `config`; returns `(B, T)`.
pub(crate) fn check_input<F: Real>(
    config: &LstmConfig,
    x: &ArrayView3<'_, F>,
    state: Option<&LstmState<F>>,
) -> Result<(usize, usize)> {
    let s = x.shape();
    expect_nonzero("x", s, &["batch", "seq", "input"])?;
    expect_shape("x", s, &[s[0], s[1], config.input_size])?;
    let (b, t) = (s[0], s[1]);
    if let Some(state) = state {
        let [h, c] = state_shapes(config, b);
        expect_shape("h0", state.h.shape(), &h)?;
        expect_shape("c0", state.c.shape(), &c)?;
    }
    Ok((b, t))
}

/// Checks `lengths` `[B]` of a batch of `batch` sequences of at most `seq` steps: each in
/// `1..=seq`.
pub(crate) fn check_lengths(lengths: &[usize], batch: usize, seq: usize) -> Result<()> {
    expect_shape("lengths", &[lengths.len()], &[batch])?;
    match lengths.iter().position(|&n| n == 0 || n > seq) {
        Some(sequence) => Err(crate::error::Error::SequenceLength {
            sequence,
            length: lengths[sequence],
            seq,
        }),
        None => Ok(()),
    }
}

/// Checks upstream gradients against the forward's `(B, T)`.
pub(crate) fn check_upstream<F: Real>(
    config: &LstmConfig,
    batch: usize,
    seq: usize,
    up: &Upstream<F>,
) -> Result<()> {
    if let Some(dy) = &up.dy {
        expect_shape("dy", dy.shape(), &[batch, seq, config.layer_output_size()])?;
    }
    let [h, c] = state_shapes(config, batch);
    if let Some(d) = &up.dh_n {
        expect_shape("dh_n", d.shape(), &h)?;
    }
    if let Some(d) = &up.dc_n {
        expect_shape("dc_n", d.shape(), &c)?;
    }
    Ok(())
}
