//! The GPU path's streaming session ([`crate::stream`]): every layer's state stays in one GPU
//! buffer between pushes.
//!
//! A push records, in one command encoder: the zeroing of sequences reset since the last push,
//! a copy of the state into the chunk's forward plan (`h0`/`c0`), the plan's input projection
//! and one step dispatch per step and layer, a copy of `h_n`/`c_n` back into the state, and
//! the copies of whatever the request reads back. It uploads only its chunk `x`, submits once
//! and maps the staging buffer once (not at all when nothing is asked for). Plans are made per
//! chunk length the first time it is pushed and kept for the next pushes of that length.

use crate::gpu::recording::Recording;
use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayView3};

use crate::error::Result;
use crate::gpu::caller_buffer::{self, GpuTensor};
use crate::gpu::context::Gpu;
use crate::gpu::layout::LstmSlots;
use crate::gpu::lstm::GpuLstm;
use crate::gpu::plan::forward::{ForwardPlan, Mode, Weights};
use crate::gpu::profile::NotProfiled;
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::{Counters, GpuStats};
use crate::gpu::weight_texels::WeightTexels;
use crate::lstm::{Lstm, check_input};
use crate::shape::{expect_nonzero, expect_shape};
use crate::stream::{LstmStream, StreamOutput, StreamRequest, VersionWatch, check_rows};

/// Chunk lengths whose plans a stream keeps; pushing another length first drops the plan used
/// least recently.
const PLANS_KEPT: usize = 4;

/// A streaming session of `B` sequences on the GPU, its state on the GPU (see
/// [`crate::stream`]).
///
/// ```no_run
/// use lstm_wgpu::{LstmConfig, LstmWeights, gpu::{Gpu, GpuLstm}};
/// use lstm_wgpu::stream::{LstmStream, StreamRequest};
/// use lstm_wgpu::ndarray::Array3;
///
/// let gpu = Gpu::from_env()?;
/// let lstm = GpuLstm::new(&gpu, &LstmWeights::init_uniform(LstmConfig::new(28, 128, 1)?, 0))?;
/// let mut stream = lstm.stream(1)?;
/// for _ in 0..28 {
///     let row = Array3::<f32>::zeros((1, 1, 28)); // one step [B, 1, I], as it arrives
///     let h = stream.push(row.view(), StreamRequest::LAST)?.last.unwrap(); // [B, H]
///     assert_eq!(h.shape(), &[1, 128]);
/// }
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
pub struct GpuStream {
    gpu: Gpu,
    slots: LstmSlots,
    params: wgpu::Buffer,
    /// The model's weight textures, where it keeps them.
    texels: Option<Arc<WeightTexels>>,
    batch: usize,
    /// `[2, L, B, H]`: `h` then `c` of every layer, between pushes.
    state: wgpu::Buffer,
    /// Plans of the chunk lengths pushed most recently, the latest last.
    chunks: Vec<Chunk>,
    /// Sequences to zero before the next push's steps.
    resets: Vec<usize>,
    counters: Counters,
    watch: VersionWatch,
}

/// The forward plan of one chunk length, and a staging buffer for all it can return.
struct Chunk {
    plan: ForwardPlan,
    staging: wgpu::Buffer,
}

impl GpuLstm {
    /// A streaming session of `batch` sequences from zero state, on this model's parameters as
    /// they are now (see [`crate::stream`]). `batch = 0` is [`crate::Error::ZeroSize`];
    /// bidirectional or projected models are [`crate::Error::Config`] (a reverse direction
    /// needs the whole sequence).
    pub fn stream(&self, batch: usize) -> Result<GpuStream> {
        expect_nonzero("stream batch", &[batch], &["batch"])?;
        let c = self.config();
        c.require_plain("GpuStream")?;
        let state_len = 2 * c.num_layers * batch * c.hidden_size;
        let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let gpu = self.gpu().clone();
        let state = gpu.catch("allocating a stream's state", || {
            gpu.storage("stream state", state_len, usage)
        })??;
        let counters = Counters::default();
        // A new buffer's contents are zero (WebGPU guarantees it): the stream starts there.
        Ok(GpuStream {
            gpu,
            slots: self.slots().clone(),
            params: self.params().clone(),
            texels: self.texels().cloned(),
            batch,
            state,
            chunks: Vec::new(),
            resets: Vec::new(),
            counters,
            watch: self.weights_version().watch(),
        })
    }
}

impl GpuStream {
    /// What this stream has recorded and transferred since it was made (plans included).
    pub fn stats(&self) -> GpuStats {
        self.counters.snapshot()
    }

    /// Makes sure the plan for chunks of `seq` steps exists, and puts it last (most recently
    /// used).
    fn prepare(&mut self, seq: usize) -> Result<()> {
        match self
            .chunks
            .iter()
            .position(|c| c.plan.fits(self.batch, seq, Mode::INFERENCE))
        {
            Some(i) => {
                let c = self.chunks.remove(i);
                self.chunks.push(c);
            }
            None => {
                if self.chunks.len() == PLANS_KEPT {
                    self.chunks.remove(0);
                }
                let (gpu, counters) = (&self.gpu, &self.counters);
                let make = || -> Result<Chunk> {
                    let weights = Weights {
                        slots: &self.slots,
                        params: &self.params,
                        texels: self.texels.as_deref(),
                    };
                    let plan = ForwardPlan::new(
                        gpu,
                        counters,
                        &weights,
                        (self.batch, seq),
                        Mode::INFERENCE,
                    )?;
                    let d = *plan.dims();
                    // Room for everything a push can ask for at once: y [B, T, H], the top
                    // layer's h [B, H] (at most one layer's state) and h_n/c_n [2, L, B, H].
                    let staging_len = d.batch * d.seq * d.hidden + 3 * d.state_len();
                    let staging = gpu.staging("stream readback", staging_len)?;
                    Ok(Chunk { plan, staging })
                };
                let chunk = gpu.catch("allocating a stream's plan", make)??;
                self.chunks.push(chunk);
            }
        }
        Ok(())
    }

    /// Records a push's steps on `plan` (whose input is in place): the pending resets, the
    /// state into the plan, the steps, the new state back.
    fn record_steps(&self, encoder: &mut wgpu::CommandEncoder, plan: &ForwardPlan) {
        let c = self.slots.config;
        let (batch, hidden, layers) = (self.batch, c.hidden_size, c.num_layers);
        for &r in &self.resets {
            for half in 0..2 {
                for l in 0..layers {
                    let at = (((half * layers + l) * batch + r) * hidden * 4) as u64;
                    encoder.clear_buffer(&self.state, at, Some((hidden * 4) as u64));
                }
            }
        }
        plan.copy_state_in(encoder, &self.state, 0);
        {
            let mut pass = Recording::begin(encoder);
            plan.record(&self.gpu, &mut pass, &self.counters);
        }
        ForwardPlan::copy_out(encoder, plan.state_n(), &self.state, 0);
    }

    /// Records a push into the caller's `encoder`: the chunk `x` `[B, seq, I]` is read from
    /// the caller's buffer (`COPY_SRC`), the outputs named in `out` are written into the
    /// caller's buffers (`COPY_DST`). Nothing is uploaded, submitted or read back; the state
    /// moves on when the caller submits `encoder` (from this stream's device). Pushes recorded
    /// this way and blocking pushes may be mixed: they run in the order they reach the queue.
    ///
    /// Errors as [`LstmStream::push`], and [`crate::Error::CallerBuffer`] for a buffer that
    /// cannot hold its tensor, lacks the usage or belongs to another device; nothing is
    /// recorded then.
    pub fn encode_push(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        seq: usize,
        x: GpuTensor<'_>,
        out: StreamTargets<'_>,
    ) -> Result<()> {
        self.watch.check()?;
        expect_nonzero("x", &[seq], &["seq"])?;
        let c = self.slots.config;
        let (batch, hidden, layers) = (self.batch, c.hidden_size, c.num_layers);
        let (src, dst) = (wgpu::BufferUsages::COPY_SRC, wgpu::BufferUsages::COPY_DST);
        let gpu = &self.gpu;
        caller_buffer::check(gpu, "x", x, batch * seq * c.input_size, src)?;
        if let Some(t) = out.last {
            caller_buffer::check(gpu, "last", t, batch * hidden, dst)?;
        }
        if let Some(t) = out.y {
            caller_buffer::check(gpu, "y", t, batch * seq * hidden, dst)?;
        }
        if let Some(t) = out.state {
            caller_buffer::check(gpu, "h_n/c_n", t, 2 * layers * batch * hidden, dst)?;
        }
        self.prepare(seq)?;
        let plan = &self.chunks.last().expect("prepared just above").plan;
        plan.copy_x_in(encoder, x.buffer, x.offset);
        {
            // The application submits this encoder: no timestamps the crate would not resolve.
            let _no_timestamps = NotProfiled::new();
            self.record_steps(encoder, plan);
        }
        if let Some(t) = out.last {
            ForwardPlan::copy_out(
                encoder,
                top_h(plan, layers, batch, hidden),
                t.buffer,
                t.offset,
            );
        }
        if let Some(t) = out.y {
            ForwardPlan::copy_out(encoder, plan.y(), t.buffer, t.offset);
        }
        if let Some(t) = out.state {
            ForwardPlan::copy_out(encoder, plan.state_n(), t.buffer, t.offset);
        }
        self.resets.clear();
        Ok(())
    }

    /// [`LstmStream::push`] as a future: records and submits when first polled, then waits
    /// for the readback without blocking a thread (as [`GpuLstm::forward_async`]).
    pub async fn push_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        want: StreamRequest,
    ) -> Result<StreamOutput<f32>> {
        self.watch.check()?;
        let config = self.slots.config;
        let (_, seq) = check_input(&config, &x, None)?;
        expect_shape("x", x.shape(), &[self.batch, seq, config.input_size])?;
        self.prepare(seq)?;
        let (batch, hidden, layers) = (self.batch, config.hidden_size, config.num_layers);
        let chunk = self.chunks.last().expect("prepared just above");
        let (gpu, counters) = (&self.gpu, &self.counters);
        let plan = &chunk.plan;
        // One copy list: y, then the top layer's h_n, then the whole state, as asked.
        let mut reads = ReadPlan::new();
        let state_n = plan.state_n();
        if want.y {
            reads.add(plan.y());
        }
        if want.last {
            reads.add(top_h(plan, layers, batch, hidden));
        }
        if want.state {
            reads.add(state_n);
        }
        gpu.catch("running a stream", || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            plan.upload_x(gpu, counters, x);
            self.record_steps(&mut encoder, plan);
            reads.record(&mut encoder, &chunk.staging);
            gpu.submit(encoder, counters);
        })?;
        // Submitted: the zeroing is in the queue, ahead of any later push.
        self.resets.clear();
        let chunk = self.chunks.last().expect("prepared just above");
        let mut parts = reads
            .read_async(gpu, &chunk.staging, counters)
            .await?
            .into_iter();
        let mut next = || parts.next().unwrap_or_default();
        let sized = "the read plan sized every part for its shape";
        let y = want
            .y
            .then(|| Array3::from_shape_vec((batch, seq, hidden), next()).expect(sized));
        let last = want
            .last
            .then(|| Array2::from_shape_vec((batch, hidden), next()).expect(sized));
        let (h_n, c_n) = match want.state {
            true => {
                let mut h = next();
                let c = h.split_off(layers * batch * hidden);
                let shape = (layers, batch, hidden);
                (
                    Some(Array3::from_shape_vec(shape, h).expect(sized)),
                    Some(Array3::from_shape_vec(shape, c).expect(sized)),
                )
            }
            false => (None, None),
        };
        Ok(StreamOutput { last, y, h_n, c_n })
    }
}

/// The top layer's `h_n` `[B, H]` in `plan`'s `h_n`/`c_n`.
fn top_h(plan: &ForwardPlan, layers: usize, batch: usize, hidden: usize) -> Region<'_> {
    Region {
        offset: (layers - 1) * batch * hidden,
        len: batch * hidden,
        ..plan.state_n()
    }
}

/// Where [`GpuStream::encode_push`] writes its outputs, in the caller's buffers (`COPY_DST`);
/// `None` skips that output.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamTargets<'a> {
    /// The top layer's `h` after the chunk's last step, `[B, H]`.
    pub last: Option<GpuTensor<'a>>,
    /// The top layer's `h` at every step of the chunk, `y` `[B, Tc, H]`.
    pub y: Option<GpuTensor<'a>>,
    /// `h` then `c` of every layer after the chunk, `[2, L, B, H]`.
    pub state: Option<GpuTensor<'a>>,
}

impl LstmStream<f32> for GpuStream {
    fn batch(&self) -> usize {
        self.batch
    }

    fn push(&mut self, x: ArrayView3<'_, f32>, want: StreamRequest) -> Result<StreamOutput<f32>> {
        crate::gpu::mapping::block_on(self.push_async(x, want))
    }

    /// Records nothing yet: the next push zeroes the rows first, inside its own submission.
    fn reset(&mut self, rows: &[usize]) -> Result<()> {
        check_rows(rows, self.batch)?;
        self.resets.extend_from_slice(rows);
        Ok(())
    }
}
