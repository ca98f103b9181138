//! The LSTM on the GPU, with the same meaning as [`crate::cpu::lstm`] (both implement
//! [`Lstm`]).
//!
//! Parameters live on the GPU in one arena (gate-interleaved, see `src/gpu/layout.rs`); each
//! batch shape gets a forward plan (and, for training, a backward plan) the first time it is
//! seen, reused afterwards. Every call records its whole sequence (forward, or forward and
//! backward) into one command encoder, submits once, and reads back, with one mapping, only what
//! the caller asked for.

use crate::gpu::recording::Recording;
use std::sync::Arc;

use ndarray::{Array3, ArrayView3};

use crate::error::Result;
use crate::gpu::caller_buffer::{self, GpuTensor};
use crate::gpu::context::Gpu;
use crate::gpu::layout::{ArenaLayout, LstmSlots};
use crate::gpu::plan::backward::BackwardPlan;
use crate::gpu::plan::forward::{Dims, ForwardPlan, Mode, Weights};
use crate::gpu::profile::NotProfiled;
use crate::gpu::readback::{ReadPlan, read_buffer_async};
use crate::gpu::stats::{Counters, GpuStats};
use crate::gpu::weight_texels::WeightTexels;
use crate::lstm::{
    Dropout, GradRequest, Lstm, LstmGrads, LstmOutput, LstmState, Tape, TapeIssuer, Upstream,
    check_input, check_lengths, check_same_config, check_upstream,
};
use crate::shape::expect_nonzero;
use crate::stream::WeightsVersion;
use crate::weights::{LstmConfig, LstmWeights};

/// An LSTM whose parameters live on a GPU. Its calls are those of [`Lstm`].
///
/// ```no_run
/// use lstm_wgpu::{Lstm, LstmConfig, LstmWeights, gpu::{Gpu, GpuLstm}};
/// use lstm_wgpu::ndarray::Array3;
///
/// let gpu = Gpu::from_env()?;
/// let weights = LstmWeights::init_uniform(LstmConfig::new(28, 128, 1)?, 0);
/// let mut lstm = GpuLstm::new(&gpu, &weights)?;
/// let x = Array3::<f32>::zeros((16, 28, 28)); // [B, T, I]
/// let out = lstm.forward(x.view(), None)?;      // y [B, T, H], h_n and c_n [L, B, H]
/// assert_eq!(out.y.shape(), &[16, 28, 128]);
/// # Ok::<(), lstm_wgpu::Error>(())
/// ```
pub struct GpuLstm {
    gpu: Gpu,
    slots: LstmSlots,
    arena_len: usize,
    params: wgpu::Buffer,
    /// A copy of the weights in textures, where the adapter reads those faster (written with
    /// the parameters).
    texels: Option<Arc<WeightTexels>>,
    grads: Option<wgpu::Buffer>,
    counters: Counters,
    inference: Option<Workspace>,
    training: Option<Workspace>,
    tapes: TapeIssuer,
    version: WeightsVersion,
    dropout: Option<Dropout>,
}

/// The plans of one batch shape and a staging buffer for everything they can return.
struct Workspace {
    forward: ForwardPlan,
    backward: Option<BackwardPlan>,
    staging: wgpu::Buffer,
}

impl GpuLstm {
    /// Uploads `weights` (PyTorch layout) to `gpu`.
    pub fn new(gpu: &Gpu, weights: &LstmWeights<f32>) -> Result<Self> {
        weights.validate()?;
        let config = *weights.config();
        let mut arena = ArenaLayout::default();
        let slots = LstmSlots::new(config, &mut arena);
        let params = gpu.storage(
            "parameters",
            arena.len,
            wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        )?;
        let texels = WeightTexels::new(gpu, &slots)?.map(Arc::new);
        let mut lstm = GpuLstm {
            gpu: gpu.clone(),
            slots,
            arena_len: arena.len,
            params,
            texels,
            grads: None,
            counters: Counters::default(),
            inference: None,
            training: None,
            tapes: TapeIssuer::new(),
            version: WeightsVersion::default(),
            dropout: None,
        };
        lstm.set_weights(weights)?;
        Ok(lstm)
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// What this model has recorded and transferred since it was created.
    pub fn stats(&self) -> GpuStats {
        self.counters.snapshot()
    }

    /// Where the parameters sit in [`Self::params`].
    pub(crate) fn slots(&self) -> &LstmSlots {
        &self.slots
    }

    /// The parameter arena on the GPU.
    pub(crate) fn params(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// What the forward steps read the weights from: the parameters and, where this model
    /// keeps them, its weight textures.
    pub(crate) fn weights_for_steps(&self) -> Weights<'_> {
        Weights {
            slots: &self.slots,
            params: &self.params,
            texels: self.texels.as_deref(),
        }
    }

    /// The weight textures, shared with the streams made from this model.
    pub(crate) fn texels(&self) -> Option<&Arc<WeightTexels>> {
        self.texels.as_ref()
    }

    /// The version of the parameters, which streams made from this model watch.
    pub(crate) fn weights_version(&self) -> &WeightsVersion {
        &self.version
    }

    /// The training or the inference workspace.
    fn slot(&mut self, train: bool) -> &mut Option<Workspace> {
        match train {
            true => &mut self.training,
            false => &mut self.inference,
        }
    }

    /// What the plans of a training (`train`) or an inference workspace run.
    fn mode(&self, train: bool) -> Mode {
        Mode {
            save: train,
            dropout: train && self.dropout.is_some(),
        }
    }

    /// Makes sure a workspace for `(batch, seq)` exists (with backward when `train`), its
    /// sequences `lengths` long (all `T` when `None`; checked by the caller).
    fn prepare(
        &mut self,
        train: bool,
        (batch, seq): (usize, usize),
        lengths: Option<&[usize]>,
    ) -> Result<()> {
        self.prepare_shape(train, batch, seq)?;
        let ws = match train {
            true => &mut self.training,
            false => &mut self.inference,
        };
        let ws = ws.as_mut().expect("prepared just above");
        ws.forward.set_lengths(&self.gpu, &self.counters, lengths);
        Ok(())
    }

    /// Writes the dropout masks' key of the current pass into a training workspace's plans
    /// and advances the pass (a training pass is about to be submitted).
    fn next_dropout_pass(&mut self) -> Result<()> {
        let Some(dropout) = self.dropout else {
            return Ok(());
        };
        let ws = self
            .training
            .as_ref()
            .expect("a training pass has a workspace");
        if ws.forward.drops() {
            ws.forward
                .write_dropout(&self.gpu, &self.counters, &dropout)?;
            if let Some(bw) = &ws.backward {
                bw.write_dropout(&self.gpu, &self.counters, &dropout)?;
            }
        }
        self.dropout = Some(dropout.at_pass(dropout.pass + 1));
        Ok(())
    }

    /// Makes sure a workspace for `(batch, seq)` exists (with backward when `train`).
    fn prepare_shape(&mut self, train: bool, batch: usize, seq: usize) -> Result<()> {
        let mode = self.mode(train);
        if self
            .slot(train)
            .as_ref()
            .is_some_and(|w| w.forward.fits(batch, seq, mode))
        {
            return Ok(());
        }
        // Free the old shape's buffers first; a tape of the old training shape is then stale.
        if self.slot(train).take().is_some() && train {
            self.tapes.invalidate();
        }
        if train && self.grads.is_none() {
            let usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
            self.grads = Some(self.gpu.storage("gradients", self.arena_len, usage)?);
        }
        let context = match train {
            true => "allocating the training workspace",
            false => "allocating the inference workspace",
        };
        let ws = self
            .gpu
            .catch(context, || self.workspace(train, batch, seq))??;
        *self.slot(train) = Some(ws);
        Ok(())
    }

    fn workspace(&self, train: bool, batch: usize, seq: usize) -> Result<Workspace> {
        let (gpu, counters) = (&self.gpu, &self.counters);
        let forward = ForwardPlan::new(
            gpu,
            counters,
            &self.weights_for_steps(),
            (batch, seq),
            self.mode(train),
        )?;
        let d = *forward.dims();
        let mut staging_len = d.batch * d.seq * d.layer_out() + d.state_len();
        let backward = match (&self.grads, train) {
            (Some(grads), true) => {
                staging_len += d.batch * d.seq * d.input + d.state_len() + self.arena_len;
                let weights = (&self.slots, &self.params, self.texels.as_deref());
                let bw = BackwardPlan::new(gpu, counters, weights, grads, &forward)?;
                Some(bw)
            }
            _ => None,
        };
        Ok(Workspace {
            forward,
            backward,
            staging: gpu.staging("readback", staging_len)?,
        })
    }

    /// Uploads, records forward (and backward when `upstream` is given), submits once, reads
    /// back once.
    async fn run(
        &self,
        ws: &Workspace,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
        upstream: Option<&Upstream<f32>>,
        want: GradRequest,
    ) -> Result<(LstmOutput<f32>, Option<LstmGrads<f32>>)> {
        let (gpu, counters) = (&self.gpu, &self.counters);
        // Outputs first, then (with backward) the requested gradients: one copy list, one map.
        let mut plan = ReadPlan::new();
        ws.forward.read_outputs(&mut plan);
        let backward = upstream.zip(ws.backward.as_ref());
        if let (Some(bw), Some(grads)) = (&backward, &self.grads) {
            bw.1.read_grads(&mut plan, want, grads, self.arena_len);
        }
        gpu.catch("running the LSTM", || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            ws.forward
                .load_inputs(gpu, counters, &mut encoder, x, state);
            if let Some((up, bw)) = backward {
                bw.load_upstream(gpu, counters, &mut encoder, up);
            }
            {
                let mut pass = Recording::begin(&mut encoder);
                ws.forward.record(gpu, &mut pass, counters);
                if let Some((_, bw)) = backward {
                    bw.record(gpu, &mut pass, counters, &ws.forward, want.x);
                }
            }
            plan.record(&mut encoder, &ws.staging);
            gpu.submit(encoder, counters);
        })?;
        let mut parts = plan
            .read_async(gpu, &ws.staging, counters)
            .await?
            .into_iter();
        let out = unpack_outputs(ws.forward.dims(), &mut parts);
        let grads = backward.map(|_| self.unpack_grads(ws.forward.dims(), want, parts));
        Ok((out, grads))
    }

    fn unpack_grads(
        &self,
        d: &Dims,
        want: GradRequest,
        mut parts: impl Iterator<Item = Vec<f32>>,
    ) -> LstmGrads<f32> {
        let mut next = || parts.next().unwrap_or_default();
        let x = want.x.then(|| array3((d.batch, d.seq, d.input), next()));
        let (h0, c0) = match want.state {
            true => {
                let (h, c) = split_state(d, next());
                (Some(h), Some(c))
            }
            false => (None, None),
        };
        let layers = want.weights.then(|| self.slots.unpack(&next()));
        LstmGrads { x, h0, c0, layers }
    }
}

/// `y` `[B, T, D·O]` and `h_n` `[L·D, B, O]`, `c_n` `[L·D, B, H]` from the first two parts of
/// a read plan.
fn unpack_outputs(d: &Dims, parts: &mut impl Iterator<Item = Vec<f32>>) -> LstmOutput<f32> {
    let y = array3(
        (d.batch, d.seq, d.layer_out()),
        parts.next().unwrap_or_default(),
    );
    let (h_n, c_n) = split_state(d, parts.next().unwrap_or_default());
    LstmOutput { y, h_n, c_n }
}

/// A `[h | c]` state read back, as `h` `[L·D, B, O]` and `c` `[L·D, B, H]`.
fn split_state(d: &Dims, mut both: Vec<f32>) -> (Array3<f32>, Array3<f32>) {
    let c = both.split_off(d.h_state_len().min(both.len()));
    let ld = d.layers * d.dirs;
    (
        array3((ld, d.batch, d.out), both),
        array3((ld, d.batch, d.hidden), c),
    )
}

/// An array of a shape from values whose count the read plan fixed to match it.
fn array3(shape: (usize, usize, usize), values: Vec<f32>) -> Array3<f32> {
    Array3::from_shape_vec(shape, values).expect("the read plan sized every part for its shape")
}

/// Where [`GpuLstm::encode_forward`] writes its outputs, in the caller's buffers (`COPY_DST`);
/// `None` skips that output.
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardTargets<'a> {
    /// The top layer's `h` at every step, `y` `[B, T, H]` (`[B, T, D·H_out]`).
    pub y: Option<GpuTensor<'a>>,
    /// `h_n` then `c_n` of every layer, `[2, L, B, H]` (`h_n` `[L·D, B, H_out]` then `c_n`
    /// `[L·D, B, H]`).
    pub state: Option<GpuTensor<'a>>,
}

impl GpuLstm {
    /// Records a forward pass into the caller's `encoder`: `x` `[B, T, I]` and, when given,
    /// `state` (`h0` then `c0`, `[2, L, B, H]`, in general `h0` `[L·D, B, H_out]` then `c0`
    /// `[L·D, B, H]`; zeros when `None`) are read from the caller's
    /// buffers (`COPY_SRC`), the outputs written into `out`. Nothing is uploaded, submitted or
    /// read back: the work runs when the caller submits `encoder`, in order with the caller's
    /// own passes around it. `encoder` must come from this model's device.
    ///
    /// The model's working buffers are reused by its later calls; that is safe whatever the
    /// order of submission, because each call's commands copy its inputs in, compute and copy
    /// its outputs out before the next call's commands begin.
    ///
    /// A buffer too small for its tensor, a misaligned offset, a missing usage or a buffer of
    /// another device is [`crate::Error::CallerBuffer`]; zero `batch` or `seq`,
    /// [`crate::Error::ZeroSize`]. Nothing is recorded then.
    ///
    /// ```no_run
    /// use lstm_wgpu::gpu::{ForwardTargets, Gpu, GpuLstm, GpuTensor};
    /// use lstm_wgpu::{LstmConfig, LstmWeights};
    /// use lstm_wgpu::wgpu::{self, util::DeviceExt};
    ///
    /// let gpu = Gpu::from_env()?;
    /// let mut lstm = GpuLstm::new(&gpu, &LstmWeights::init_uniform(LstmConfig::new(4, 8, 1)?, 0))?;
    /// let (b, t) = (2, 3);
    /// let x = gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
    ///     label: Some("my x"),
    ///     contents: bytemuck::cast_slice(&vec![0.5f32; b * t * 4]), // [B, T, I]
    ///     usage: wgpu::BufferUsages::COPY_SRC,
    /// });
    /// let y = gpu.device().create_buffer(&wgpu::BufferDescriptor {
    ///     label: Some("my y"),
    ///     size: (b * t * 8 * 4) as u64, // [B, T, H] f32
    ///     usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
    ///     mapped_at_creation: false,
    /// });
    /// let mut encoder = gpu.device().create_command_encoder(&Default::default());
    /// // ... the application's own passes ...
    /// let out = ForwardTargets { y: Some(GpuTensor::whole(&y)), state: None };
    /// lstm.encode_forward(&mut encoder, (b, t), GpuTensor::whole(&x), None, out)?;
    /// // ... passes that read y ...
    /// gpu.queue().submit([encoder.finish()]);
    /// # Ok::<(), lstm_wgpu::Error>(())
    /// ```
    pub fn encode_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        (batch, seq): (usize, usize),
        x: GpuTensor<'_>,
        state: Option<GpuTensor<'_>>,
        out: ForwardTargets<'_>,
    ) -> Result<()> {
        let c = *self.config();
        expect_nonzero("x", &[batch, seq], &["batch", "seq"])?;
        let (src, dst) = (wgpu::BufferUsages::COPY_SRC, wgpu::BufferUsages::COPY_DST);
        let ld = c.num_layers * c.num_directions();
        let state_len = ld * batch * (c.output_size() + c.hidden_size);
        let gpu = &self.gpu.clone();
        caller_buffer::check(gpu, "x", x, batch * seq * c.input_size, src)?;
        if let Some(s) = state {
            caller_buffer::check(gpu, "h0/c0", s, state_len, src)?;
        }
        if let Some(y) = out.y {
            let len = batch * seq * c.layer_output_size();
            caller_buffer::check(gpu, "y", y, len, dst)?;
        }
        if let Some(s) = out.state {
            caller_buffer::check(gpu, "h_n/c_n", s, state_len, dst)?;
        }
        self.prepare(false, (batch, seq), None)?;
        let ws = self.inference.as_ref().expect("prepared just above");
        let (plan, counters) = (&ws.forward, &self.counters);
        plan.copy_x_in(encoder, x.buffer, x.offset);
        match state {
            Some(s) => plan.copy_state_in(encoder, s.buffer, s.offset),
            None => plan.clear_state(encoder),
        }
        {
            // The application submits this encoder: no timestamps the crate would not resolve.
            let _no_timestamps = NotProfiled::new();
            let mut pass = Recording::begin(encoder);
            plan.record(gpu, &mut pass, counters);
        }
        if let Some(y) = out.y {
            ForwardPlan::copy_out(encoder, plan.y(), y.buffer, y.offset);
        }
        if let Some(s) = out.state {
            ForwardPlan::copy_out(encoder, plan.state_n(), s.buffer, s.offset);
        }
        Ok(())
    }
}

/// The calls of [`Lstm`] that read back, as futures: each records and submits its work when
/// first polled, then waits for the readback without blocking a thread, so they can run on any
/// executor. The future is woken from the mapping's callback (natively a thread of the
/// [`Gpu`] polls the device while mappings are pending; in a browser the event loop does).
/// The blocking calls of [`Lstm`] are these, run to completion on the calling thread, which
/// waits on the device itself.
impl GpuLstm {
    /// [`Lstm::weights`], asynchronously.
    pub async fn weights_async(&self) -> Result<LstmWeights<f32>> {
        let image =
            read_buffer_async(&self.gpu, &self.params, self.arena_len, &self.counters).await?;
        LstmWeights::new(*self.config(), self.slots.unpack(&image))
    }

    /// [`Lstm::forward`], asynchronously.
    pub async fn forward_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        self.forward_maybe_lengths(x, None, state).await
    }

    /// [`Lstm::forward_lengths`], asynchronously.
    pub async fn forward_lengths_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: &[usize],
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        self.forward_maybe_lengths(x, Some(lengths), state).await
    }

    async fn forward_maybe_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        if let Some(lengths) = lengths {
            check_lengths(lengths, batch, seq)?;
        }
        self.prepare(false, (batch, seq), lengths)?;
        let ws = self.inference.as_ref().expect("prepared just above");
        let (out, _) = self.run(ws, x, state, None, GradRequest::NONE).await?;
        Ok(out)
    }

    /// [`Lstm::forward_train`], asynchronously.
    pub async fn forward_train_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        self.forward_train_maybe_lengths(x, None, state).await
    }

    /// [`Lstm::forward_train_lengths`], asynchronously.
    pub async fn forward_train_lengths_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: &[usize],
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        self.forward_train_maybe_lengths(x, Some(lengths), state)
            .await
    }

    async fn forward_train_maybe_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        if let Some(lengths) = lengths {
            check_lengths(lengths, batch, seq)?;
        }
        self.prepare(true, (batch, seq), lengths)?;
        self.next_dropout_pass()?;
        // Issued before the run overwrites the activations: should it fail, no tape is current.
        let tape = self.tapes.issue(batch, seq);
        let ws = self.training.as_ref().expect("prepared just above");
        let (out, _) = self.run(ws, x, state, None, GradRequest::NONE).await?;
        Ok((out, tape))
    }

    /// [`Lstm::backward`], asynchronously; reads back only what `want` asks for.
    pub async fn backward_async(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<LstmGrads<f32>> {
        self.tapes.check(tape)?;
        check_upstream(self.config(), tape.batch(), tape.seq(), upstream)?;
        // A current tape means forward_train prepared this workspace.
        let ws = self
            .training
            .as_ref()
            .expect("a current tape has a workspace");
        let (Some(bw), Some(grads)) = (&ws.backward, &self.grads) else {
            unreachable!("training workspaces have a backward plan and a gradient arena");
        };
        let (gpu, counters) = (&self.gpu, &self.counters);
        let mut plan = ReadPlan::new();
        bw.read_grads(&mut plan, want, grads, self.arena_len);
        gpu.catch("recording backward", || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            bw.load_upstream(gpu, counters, &mut encoder, upstream);
            {
                let mut pass = Recording::begin(&mut encoder);
                bw.record(gpu, &mut pass, counters, &ws.forward, want.x);
            }
            plan.record(&mut encoder, &ws.staging);
            gpu.submit(encoder, counters);
        })?;
        let parts = plan.read_async(gpu, &ws.staging, counters).await?;
        Ok(self.unpack_grads(ws.forward.dims(), want, parts.into_iter()))
    }

    /// [`Lstm::forward_backward`], asynchronously: one submission for both passes, one
    /// readback.
    pub async fn forward_backward_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<(LstmOutput<f32>, LstmGrads<f32>)> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        check_upstream(self.config(), batch, seq, upstream)?;
        self.prepare(true, (batch, seq), None)?;
        self.next_dropout_pass()?;
        self.tapes.invalidate();
        let ws = self.training.as_ref().expect("prepared just above");
        let (out, grads) = self.run(ws, x, state, Some(upstream), want).await?;
        Ok((out, grads.expect("backward ran")))
    }
}

impl Lstm<f32> for GpuLstm {
    fn config(&self) -> &LstmConfig {
        &self.slots.config
    }

    fn weights(&self) -> Result<LstmWeights<f32>> {
        crate::gpu::mapping::block_on(self.weights_async())
    }

    fn set_weights(&mut self, weights: &LstmWeights<f32>) -> Result<()> {
        weights.validate()?;
        check_same_config(self.config(), weights.config())?;
        let mut image = vec![0.0f32; self.arena_len];
        self.slots.pack(weights, &mut image);
        // Streams made before run on the old parameters: stale from now on, even should the
        // upload fail half-way.
        self.version.bump();
        self.gpu.catch("uploading the parameters", || {
            let bytes = bytemuck::cast_slice(&image);
            self.gpu.write(&self.params, 0, bytes, &self.counters);
            if let Some(t) = &self.texels {
                t.write(&self.gpu, &self.slots, &image, &self.counters);
            }
        })
    }

    fn forward(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        crate::gpu::mapping::block_on(self.forward_async(x, state))
    }

    fn forward_train(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        crate::gpu::mapping::block_on(self.forward_train_async(x, state))
    }

    /// Finished rows are masked inside the step kernels: no dispatch more than a batch of
    /// full length.
    fn forward_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: &[usize],
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        crate::gpu::mapping::block_on(self.forward_lengths_async(x, lengths, state))
    }

    fn forward_train_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: &[usize],
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        crate::gpu::mapping::block_on(self.forward_train_lengths_async(x, lengths, state))
    }

    fn set_dropout(&mut self, dropout: Option<Dropout>) -> Result<()> {
        self.dropout = dropout;
        Ok(())
    }

    fn dropout(&self) -> Option<Dropout> {
        self.dropout
    }

    /// Reads back only what `want` asks for.
    fn backward(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<LstmGrads<f32>> {
        crate::gpu::mapping::block_on(self.backward_async(tape, upstream, want))
    }

    /// One submission for both passes, one readback.
    fn forward_backward(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<(LstmOutput<f32>, LstmGrads<f32>)> {
        crate::gpu::mapping::block_on(self.forward_backward_async(x, state, upstream, want))
    }
}
