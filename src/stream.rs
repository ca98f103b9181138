//! Streaming: a session that keeps every layer's state `h`, `c` `[L, B, H]` on its device
//! between calls, so a sequence can arrive a chunk (or a single step) at a time.
//!
//! A stream of `B` sequences starts from zero state. Each [`LstmStream::push`] of a chunk
//! `x` `[B, Tc, I]` (any `Tc ≥ 1`) runs `Tc` steps from the state the previous push left and
//! keeps the new state. Pushing `x[:, 0..t1]`, then `x[:, t1..t2]`, ... gives the outputs of
//! one forward call over the whole `x`: the same steps, the same order, the same state in
//! between. [`LstmStream::reset`] zeroes the state of chosen sequences (a new utterance, a new
//! episode) and leaves the others running.
//!
//! A push reads back only what its [`StreamRequest`] names: nothing, the top layer's `h` after
//! the chunk's last step, every step's `y`, or the whole state. On the GPU the state never
//! leaves the device: a push uploads only its chunk.
//!
//! A stream is made from a model ([`crate::cpu::lstm::CpuLstm::stream`],
//! [`crate::gpu::GpuLstm::stream`]) and uses the model's parameters as they were then. Once the
//! model's parameters change (`set_weights`, an optimizer step), the stream's state belongs to
//! weights that are gone, and every later push is [`Error::StaleStream`]: make a new stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array2, Array3, ArrayView3};

use crate::error::{Error, Result};
use crate::real::Real;

/// What a [`LstmStream::push`] reads back. Fields left `false` cost nothing (on the GPU, no
/// copy and no transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamRequest {
    /// The top layer's `h` after the chunk's last step, `[B, H]`.
    pub last: bool,
    /// The top layer's `h` at every step of the chunk, `y` `[B, Tc, H]`.
    pub y: bool,
    /// Every layer's `h` and `c` after the chunk, `[L, B, H]` each.
    pub state: bool,
}

impl StreamRequest {
    /// Nothing: the state moves on, nothing is read back.
    pub const NONE: StreamRequest = StreamRequest {
        last: false,
        y: false,
        state: false,
    };
    /// Only the top layer's `h` after the last step (what a classifier head reads).
    pub const LAST: StreamRequest = StreamRequest {
        last: true,
        y: false,
        state: false,
    };
    /// Every step's output `y`.
    pub const Y: StreamRequest = StreamRequest {
        last: false,
        y: true,
        state: false,
    };
    /// Every layer's state.
    pub const STATE: StreamRequest = StreamRequest {
        last: false,
        y: false,
        state: true,
    };
    /// Everything.
    pub const ALL: StreamRequest = StreamRequest {
        last: true,
        y: true,
        state: true,
    };
}

/// What a push returns; the fields its [`StreamRequest`] did not ask for are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOutput<F = f32> {
    /// The top layer's `h` after the chunk's last step, `[B, H]`.
    pub last: Option<Array2<F>>,
    /// The top layer's `h` at every step of the chunk, `[B, Tc, H]`.
    pub y: Option<Array3<F>>,
    /// Every layer's `h` after the chunk, `[L, B, H]`.
    pub h_n: Option<Array3<F>>,
    /// Every layer's `c` after the chunk, `[L, B, H]`.
    pub c_n: Option<Array3<F>>,
}

/// A streaming session on some device (see the module docs); the CPU and GPU sessions mean
/// the same, so code can be written once for both.
///
/// ```
/// use lstm_wgpu::{LstmConfig, LstmWeights, cpu::lstm::CpuLstm};
/// use lstm_wgpu::stream::{LstmStream, StreamRequest};
/// use lstm_wgpu::ndarray::Array3;
///
/// /// Feeds `x` `[B, T, I]` one step at a time; returns the top layer's last `h` `[B, H]`.
/// fn step_by_step(s: &mut dyn LstmStream, x: &Array3<f32>) -> lstm_wgpu::Result<Vec<f32>> {
///     let mut last = None;
///     for t in 0..x.shape()[1] {
///         let chunk = x.slice(lstm_wgpu::ndarray::s![.., t..t + 1, ..]);
///         last = s.push(chunk, StreamRequest::LAST)?.last;
///     }
///     Ok(last.map(|h| h.iter().copied().collect()).unwrap_or_default())
/// }
///
/// let lstm = CpuLstm::new(LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 8, 2)?, 0))?;
/// let mut stream = lstm.stream(2)?; // two sequences
/// let h = step_by_step(&mut stream, &Array3::ones((2, 5, 3)))?;
/// assert_eq!(h.len(), 2 * 8);
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
pub trait LstmStream<F: Real = f32> {
    /// The number of sequences `B`.
    fn batch(&self) -> usize;

    /// Runs the steps of `x` `[B, Tc, I]` (`Tc ≥ 1`) from the state the last push left, keeps
    /// the new state, and returns what `want` asks for. A chunk of the wrong batch or input
    /// size is [`Error::Shape`], an empty one [`Error::ZeroSize`], and a stream whose model's
    /// parameters changed [`Error::StaleStream`]; none of them changes the state.
    fn push(&mut self, x: ArrayView3<'_, F>, want: StreamRequest) -> Result<StreamOutput<F>>;

    /// Zeroes `h` and `c` of the sequences `rows` (indices into the batch) in every layer; the
    /// others keep theirs. An index outside the batch is [`Error::Config`] and resets nothing.
    fn reset(&mut self, rows: &[usize]) -> Result<()>;
}

/// Checks `rows` against a batch of `batch` sequences.
pub(crate) fn check_rows(rows: &[usize], batch: usize) -> Result<()> {
    match rows.iter().find(|&&r| r >= batch) {
        Some(r) => Err(Error::config(
            "stream reset",
            format!("sequence {r} is outside the batch of {batch}"),
        )),
        None => Ok(()),
    }
}

/// A model's parameter version: bumped whenever its parameters change, watched by its
/// streams. A clone of a model is another model, so a clone of this is a fresh counter.
#[derive(Debug, Default)]
pub(crate) struct WeightsVersion(Arc<AtomicU64>);

impl WeightsVersion {
    /// Marks the parameters as changed: every stream made before goes stale.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A watch on the parameters as they are now.
    pub(crate) fn watch(&self) -> VersionWatch {
        VersionWatch {
            cell: Arc::clone(&self.0),
            seen: self.0.load(Ordering::Relaxed),
        }
    }
}

impl Clone for WeightsVersion {
    fn clone(&self) -> Self {
        WeightsVersion::default()
    }
}

/// What a stream remembers of its model's parameters: the version it was made for.
#[derive(Debug, Clone)]
pub(crate) struct VersionWatch {
    cell: Arc<AtomicU64>,
    seen: u64,
}

impl VersionWatch {
    /// [`Error::StaleStream`] once the model's parameters have changed.
    pub(crate) fn check(&self) -> Result<()> {
        let current = self.cell.load(Ordering::Relaxed);
        if current == self.seen {
            Ok(())
        } else {
            Err(Error::StaleStream {
                stream: self.seen,
                current,
            })
        }
    }
}
