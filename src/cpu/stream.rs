//! The CPU path's streaming session ([`crate::stream`]): the state `h`, `c` `[L, B, H]` in host
//! memory, the parameters packed once when the stream is made, and a push that runs the steps
//! of its chunk exactly as [`super::lstm::forward_with`] runs them.

use ndarray::{Array3, ArrayView3, Axis, s};

use super::isa::Isa;
use super::lstm::{CpuLstm, ForwardScratch, forward_state_in_place};
use crate::error::Result;
use crate::lstm::{Lstm, LstmState, check_input};
use crate::real::Real;
use crate::shape::expect_shape;
use crate::stream::{LstmStream, StreamOutput, StreamRequest, VersionWatch, check_rows};
use crate::weights::LstmWeights;

/// A streaming session of `B` sequences on the CPU (see [`crate::stream`]).
///
/// ```
/// use lstm_wgpu::{Lstm, LstmConfig, LstmWeights, cpu::lstm::CpuLstm};
/// use lstm_wgpu::stream::{LstmStream, StreamRequest};
/// use lstm_wgpu::ndarray::{Array3, Axis, s};
///
/// let mut lstm = CpuLstm::new(LstmWeights::<f32>::init_uniform(LstmConfig::new(4, 16, 2)?, 7))?;
/// let x = Array3::from_shape_fn((1, 10, 4), |(_, t, i)| (t * 4 + i) as f32 / 40.0); // [B, T, I]
/// let whole = lstm.forward(x.view(), None)?;
///
/// let mut stream = lstm.stream(1)?;
/// let mut last = None;
/// for t in 0..10 {
///     last = stream.push(x.slice(s![.., t..t + 1, ..]), StreamRequest::LAST)?.last; // [B, H]
/// }
/// // One push per step gives the bits of one call over the whole sequence.
/// assert_eq!(last.unwrap(), whole.y.index_axis(Axis(1), 9));
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CpuStream<F = f32> {
    /// The model's parameters when the stream was made.
    weights: LstmWeights<F>,
    isa: Isa,
    scratch: ForwardScratch<F>,
    /// `scratch` holds `weights`, packed (after the first push).
    packed: bool,
    state: LstmState<F>,
    watch: VersionWatch,
}

impl<F: Real> CpuLstm<F> {
    /// A streaming session of `batch` sequences from zero state, on this model's parameters
    /// and instruction set. `batch = 0` is [`crate::Error::ZeroSize`].
    pub fn stream(&self, batch: usize) -> Result<CpuStream<F>> {
        let config = *self.config();
        config.require_plain("CpuStream")?;
        crate::shape::expect_nonzero("stream batch", &[batch], &["batch"])?;
        Ok(CpuStream {
            weights: self.params().clone(),
            isa: self.isa(),
            scratch: ForwardScratch::default(),
            packed: false,
            state: LstmState::zeros(&config, batch),
            watch: self.weights_version().watch(),
        })
    }
}

impl<F: Real> CpuStream<F> {
    /// The state now: `h`, `c` `[L, B, H]`.
    pub fn state(&self) -> &LstmState<F> {
        &self.state
    }
}

impl<F: Real> LstmStream<F> for CpuStream<F> {
    fn batch(&self) -> usize {
        self.state.h.dim().1
    }

    fn push(&mut self, x: ArrayView3<'_, F>, want: StreamRequest) -> Result<StreamOutput<F>> {
        self.watch.check()?;
        let config = *self.weights.config();
        let (_, seq) = check_input(&config, &x, None)?;
        let batch = self.batch();
        expect_shape("x", x.shape(), &[batch, seq, config.input_size])?;
        let mut y = want
            .y
            .then(|| Array3::zeros((batch, seq, config.hidden_size)));
        forward_state_in_place(
            self.isa,
            &self.weights,
            x,
            &mut self.state,
            &mut self.scratch,
            y.as_mut().map(|y| y.view_mut()),
            self.packed,
        )?;
        self.packed = true;
        let top = config.num_layers - 1;
        Ok(StreamOutput {
            last: want
                .last
                .then(|| self.state.h.index_axis(Axis(0), top).to_owned()),
            y,
            h_n: want.state.then(|| self.state.h.clone()),
            c_n: want.state.then(|| self.state.c.clone()),
        })
    }

    fn reset(&mut self, rows: &[usize]) -> Result<()> {
        check_rows(rows, self.batch())?;
        for &r in rows {
            self.state.h.slice_mut(s![.., r, ..]).fill(F::zero());
            self.state.c.slice_mut(s![.., r, ..]).fill(F::zero());
        }
        Ok(())
    }
}
