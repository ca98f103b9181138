//! The LSTM on the GPU, with the same meaning as [`crate::cpu::lstm`].
//!
//! Parameters live on the GPU in one arena (gate-interleaved, see `src/gpu/layout.rs`); each
//! batch shape gets a workspace of buffers and prepared dispatches the first time it is seen,
//! reused afterwards.
//! Every call records its whole sequence (forward, or forward and backward) into one command
//! encoder, submits once, and reads back, with one mapping, only what the caller asked for.

use ndarray::{Array3, ArrayView3};

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::layout::{ArenaLayout, LstmSlots};
use crate::gpu::lstm_workspace::Workspace;
use crate::gpu::readback::{ReadPlan, read_buffer};
use crate::gpu::stats::{Counters, GpuStats};
use crate::lstm::{
    GradRequest, LstmGrads, LstmOutput, LstmState, Tape, Upstream, check_input, check_upstream,
};
use crate::weights::{LstmConfig, LstmWeights};

/// An LSTM whose parameters live on a GPU.
///
/// ```no_run
/// use lstm_wgpu::{LstmConfig, LstmWeights, gpu::{Gpu, GpuLstm}};
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
    grads: Option<wgpu::Buffer>,
    counters: Counters,
    inference: Option<Workspace>,
    training: Option<Workspace>,
    generation: u64,
}

impl GpuLstm {
    /// Uploads `weights` (PyTorch layout) to `gpu`.
    pub fn new(gpu: &Gpu, weights: &LstmWeights<f32>) -> Result<Self> {
        weights.validate()?;
        let config = *weights.config();
        let mut arena = ArenaLayout::default();
        let slots = LstmSlots::new(config, &mut arena);
        let counters = Counters::default();
        let params = gpu.storage(
            "parameters",
            arena.len,
            wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        )?;
        let mut lstm = GpuLstm {
            gpu: gpu.clone(),
            slots,
            arena_len: arena.len,
            params,
            grads: None,
            counters,
            inference: None,
            training: None,
            generation: 0,
        };
        lstm.set_weights(weights)?;
        Ok(lstm)
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.slots.config
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// What this model has recorded and transferred since it was created.
    pub fn stats(&self) -> GpuStats {
        self.counters.snapshot()
    }

    /// Replaces the parameters (same configuration).
    pub fn set_weights(&mut self, weights: &LstmWeights<f32>) -> Result<()> {
        weights.validate()?;
        if weights.config() != self.config() {
            let c = weights.config();
            let s = self.config();
            return Err(Error::Shape {
                tensor: "weights (input_size, hidden_size, num_layers)".into(),
                expected: vec![s.input_size, s.hidden_size, s.num_layers],
                actual: vec![c.input_size, c.hidden_size, c.num_layers],
            });
        }
        let mut image = vec![0.0f32; self.arena_len];
        self.slots.pack(weights, &mut image);
        self.gpu.catch("uploading the parameters", || {
            self.gpu.write(
                &self.params,
                0,
                bytemuck::cast_slice(&image),
                &self.counters,
            )
        })
    }

    /// Reads the parameters back, PyTorch layout.
    pub fn weights(&self) -> Result<LstmWeights<f32>> {
        let image = read_buffer(&self.gpu, &self.params, self.arena_len, &self.counters)?;
        LstmWeights::new(*self.config(), self.slots.unpack(&image))
    }

    fn workspace(&mut self, train: bool, batch: usize, seq: usize) -> Result<()> {
        let fits = |ws: &Option<Workspace>| ws.as_ref().is_some_and(|w| w.fits(batch, seq));
        if train {
            if self.grads.is_none() {
                self.grads = Some(self.gpu.storage(
                    "gradients",
                    self.arena_len,
                    wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                )?);
            }
            if !fits(&self.training) {
                self.training = None; // free the old shape's buffers first
                let ws = self.gpu.catch("allocating the training workspace", || {
                    Workspace::new(
                        &self.gpu,
                        &self.counters,
                        &self.slots,
                        &self.params,
                        self.grads.as_ref(),
                        self.arena_len,
                        batch,
                        seq,
                        true,
                    )
                })??;
                self.training = Some(ws);
            }
        } else if !fits(&self.inference) {
            self.inference = None;
            let ws = self.gpu.catch("allocating the inference workspace", || {
                Workspace::new(
                    &self.gpu,
                    &self.counters,
                    &self.slots,
                    &self.params,
                    None,
                    0,
                    batch,
                    seq,
                    true,
                )
            })??;
            self.inference = Some(ws);
        }
        Ok(())
    }

    /// Forward pass: `x` `[B, T, I]`, `state` `h0`, `c0` `[L, B, H]` (zeros when `None`) →
    /// `y` `[B, T, H]`, `h_n`, `c_n` `[L, B, H]`. Keeps nothing for backward.
    pub fn forward(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<LstmOutput<f32>> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        self.workspace(false, batch, seq)?;
        let ws = self.inference.as_ref().expect("workspace was just made");
        self.run(ws, x, state, None, GradRequest::NONE)
            .map(|(out, _)| out)
    }

    /// Forward pass that keeps the activations backward needs on the GPU; see
    /// [`GpuLstm::forward`] for shapes.
    pub fn forward_train(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) -> Result<(LstmOutput<f32>, Tape)> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        self.workspace(true, batch, seq)?;
        let ws = self.training.as_ref().expect("workspace was just made");
        let (out, _) = self.run(ws, x, state, None, GradRequest::NONE)?;
        self.generation += 1;
        Ok((out, Tape::new(self.generation, batch, seq)))
    }

    /// Backpropagation through time from the activations of `tape` (the latest
    /// [`GpuLstm::forward_train`]). Absent upstream gradients are zero. Reads back only what
    /// `want` asks for.
    pub fn backward(
        &mut self,
        tape: &Tape,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<LstmGrads<f32>> {
        tape.check(self.generation)?;
        check_upstream(self.config(), tape.batch(), tape.seq(), upstream)?;
        let ws = self.training.as_ref().expect("checked above");
        let gpu = &self.gpu;
        let counters = &self.counters;
        let staging = ws
            .staging
            .as_ref()
            .expect("GpuLstm workspaces have staging");
        let plan = self.grad_plan(ws, want);
        gpu.catch("recording backward", || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            ws.load_upstream(gpu, counters, &mut encoder, upstream);
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                ws.record_backward(gpu, &mut pass, counters, want.x);
            }
            plan.record(&mut encoder, staging);
            gpu.submit(encoder, counters);
        })?;
        let parts = plan.read(gpu, staging, counters)?;
        Ok(self.unpack_grads(ws, want, parts))
    }

    /// Forward and backward of one batch in one submission: `upstream` must be known before the
    /// forward runs (for example a fixed `dy`). Returns the outputs and the gradients `want`
    /// asks for.
    pub fn forward_backward(
        &mut self,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
        upstream: &Upstream<f32>,
        want: GradRequest,
    ) -> Result<(LstmOutput<f32>, LstmGrads<f32>)> {
        let (batch, seq) = check_input(self.config(), &x, state)?;
        check_upstream(self.config(), batch, seq, upstream)?;
        self.workspace(true, batch, seq)?;
        self.generation += 1;
        let ws = self.training.as_ref().expect("workspace was just made");
        let (out, grads) = self.run(ws, x, state, Some(upstream), want)?;
        Ok((out, grads.expect("backward ran")))
    }

    /// Uploads, records forward (and backward when `upstream` is given), submits once, reads
    /// back once.
    fn run(
        &self,
        ws: &Workspace,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
        upstream: Option<&Upstream<f32>>,
        want: GradRequest,
    ) -> Result<(LstmOutput<f32>, Option<LstmGrads<f32>>)> {
        let gpu = &self.gpu;
        let counters = &self.counters;
        let (b, t, h) = (ws.batch, ws.seq, self.config().hidden_size);
        let staging = ws
            .staging
            .as_ref()
            .expect("GpuLstm workspaces have staging");
        // Outputs first, then (with backward) the requested gradients: one copy list, one map.
        let mut plan = ReadPlan::new();
        plan.add(ws.y_top(), 0, b * t * h);
        plan.add(&ws.state_n, 0, ws.state_len());
        if upstream.is_some() {
            plan.extend(&self.grad_plan(ws, want));
        }
        gpu.catch("running the LSTM", || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            ws.load_inputs(gpu, counters, &mut encoder, x, state);
            if let Some(up) = upstream {
                ws.load_upstream(gpu, counters, &mut encoder, up);
            }
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                ws.record_forward(gpu, &mut pass, counters);
                if upstream.is_some() {
                    ws.record_backward(gpu, &mut pass, counters, want.x);
                }
            }
            plan.record(&mut encoder, staging);
            gpu.submit(encoder, counters);
        })?;
        let mut parts = plan.read(gpu, staging, counters)?.into_iter();
        let (y, state_n) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let out = self.unpack_outputs(ws, y, state_n);
        let grads = upstream.map(|_| self.unpack_grads(ws, want, parts.collect()));
        Ok((out, grads))
    }

    fn unpack_outputs(&self, ws: &Workspace, y: Vec<f32>, state: Vec<f32>) -> LstmOutput<f32> {
        let (b, t, h, l) = (
            ws.batch,
            ws.seq,
            self.config().hidden_size,
            self.config().num_layers,
        );
        let half = l * b * h;
        // The lengths are those of the plan built from the same workspace.
        LstmOutput {
            y: Array3::from_shape_vec((b, t, h), y).expect("y length"),
            h_n: Array3::from_shape_vec((l, b, h), state[..half].to_vec()).expect("h_n length"),
            c_n: Array3::from_shape_vec((l, b, h), state[half..].to_vec()).expect("c_n length"),
        }
    }

    fn grad_plan<'a>(&'a self, ws: &'a Workspace, want: GradRequest) -> ReadPlan<'a> {
        let mut plan = ReadPlan::new();
        if let Some(bw) = &ws.backward {
            if want.x {
                plan.add(&bw.dx, 0, ws.batch * ws.seq * self.config().input_size);
            }
            if want.state {
                plan.add(&bw.d_state, 0, ws.state_len());
            }
            if want.weights {
                if let Some(g) = &self.grads {
                    plan.add(g, 0, self.arena_len);
                }
            }
        }
        plan
    }

    fn unpack_grads(
        &self,
        ws: &Workspace,
        want: GradRequest,
        parts: Vec<Vec<f32>>,
    ) -> LstmGrads<f32> {
        let c = self.config();
        let (b, t, h, l) = (ws.batch, ws.seq, c.hidden_size, c.num_layers);
        let mut parts = parts.into_iter();
        let x = want.x.then(|| {
            Array3::from_shape_vec((b, t, c.input_size), parts.next().unwrap_or_default())
                .expect("dx length")
        });
        let (h0, c0) = if want.state {
            let s = parts.next().unwrap_or_default();
            let half = l * b * h;
            (
                Some(Array3::from_shape_vec((l, b, h), s[..half].to_vec()).expect("dh0 length")),
                Some(Array3::from_shape_vec((l, b, h), s[half..].to_vec()).expect("dc0 length")),
            )
        } else {
            (None, None)
        };
        let layers = want
            .weights
            .then(|| self.slots.unpack(&parts.next().unwrap_or_default()));
        LstmGrads { x, h0, c0, layers }
    }
}
