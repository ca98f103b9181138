//! What goes into and comes out of an LSTM, shared by the CPU and GPU paths.
//!
//! Layouts follow PyTorch `nn.LSTM(batch_first=True)`: inputs `x` are `[B, T, I]`, outputs `y`
//! are `[B, T, H]` (the last layer's hidden state at every step), states are `[L, B, H]`
//! (index = layer). All arrays are row-major.
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

/// Hidden and cell state of every layer: `h`, `c` are `[L, B, H]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmState<F = f32> {
    /// Hidden state, `[L, B, H]`.
    pub h: Array3<F>,
    /// Cell state, `[L, B, H]`.
    pub c: Array3<F>,
}

impl<F: Real> LstmState<F> {
    /// All-zero state, PyTorch's default when `h0`/`c0` are omitted.
    pub fn zeros(config: &LstmConfig, batch: usize) -> Self {
        let shape = (config.num_layers, batch, config.hidden_size);
        LstmState {
            h: Array3::zeros(shape),
            c: Array3::zeros(shape),
        }
    }
}

/// The result of a forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmOutput<F = f32> {
    /// Last layer's hidden state at every step, `[B, T, H]`.
    pub y: Array3<F>,
    /// Every layer's hidden state after the last step, `[L, B, H]`.
    pub h_n: Array3<F>,
    /// Every layer's cell state after the last step, `[L, B, H]`.
    pub c_n: Array3<F>,
}

/// Gradients of a scalar loss with respect to the forward's outputs; an absent one is zero.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream<F = f32> {
    /// `dL/dy`, `[B, T, H]`.
    pub dy: Option<Array3<F>>,
    /// `dL/dh_n`, `[L, B, H]`.
    pub dh_n: Option<Array3<F>>,
    /// `dL/dc_n`, `[L, B, H]`.
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
    /// `dL/dh0`, `[L, B, H]`.
    pub h0: Option<Array3<F>>,
    /// `dL/dc0`, `[L, B, H]`.
    pub c0: Option<Array3<F>>,
    /// Per layer: `dL/dweight_ih` `[4H, I_l]`, `dL/dweight_hh` `[4H, H]`, `dL/dbias_ih` and
    /// `dL/dbias_hh` `[4H]` (the two bias gradients are always equal).
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
    if new != current {
        return Err(crate::error::Error::Shape {
            tensor: "weights (input_size, hidden_size, num_layers)".into(),
            expected: vec![current.input_size, current.hidden_size, current.num_layers],
            actual: vec![new.input_size, new.hidden_size, new.num_layers],
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
        let want = [config.num_layers, b, config.hidden_size];
        expect_shape("h0", state.h.shape(), &want)?;
        expect_shape("c0", state.c.shape(), &want)?;
    }
    Ok((b, t))
}

/// Checks upstream gradients against the forward's `(B, T)`.
pub(crate) fn check_upstream<F: Real>(
    config: &LstmConfig,
    batch: usize,
    seq: usize,
    up: &Upstream<F>,
) -> Result<()> {
    let h = config.hidden_size;
    if let Some(dy) = &up.dy {
        expect_shape("dy", dy.shape(), &[batch, seq, h])?;
    }
    let want = [config.num_layers, batch, h];
    if let Some(d) = &up.dh_n {
        expect_shape("dh_n", d.shape(), &want)?;
    }
    if let Some(d) = &up.dc_n {
        expect_shape("dc_n", d.shape(), &want)?;
    }
    Ok(())
}
