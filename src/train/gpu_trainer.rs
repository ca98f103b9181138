//! Training on the GPU: one submission per step holds the forward pass, the dense head and loss,
//! backpropagation through time, gradient clipping and the optimizer update. Parameters,
//! gradients and optimizer moments never leave the GPU; the only readback is the batch's loss
//! and accuracy, and only on steps that report them.

use std::collections::VecDeque;

use ndarray::{Array1, Array2, Array3, ArrayView3};

use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::kernels::Dispatch;
use crate::gpu::layout::{ArenaLayout, LstmSlots, Slot};
use crate::gpu::lstm_workspace::Workspace;
use crate::gpu::matmul::{Gemm, Operand};
use crate::gpu::optimizer::OptimizerDispatch;
use crate::gpu::readback::{ReadPlan, read_buffer};
use crate::gpu::stats::{Counters, GpuStats};
use crate::gpu::{column_sum, cross_entropy, grad_norm};
use crate::optim::TrainConfig;
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};
use crate::train::metrics::Metrics;
use crate::train::optimizer_state::OptimizerState;
use crate::train::trainer::{Trainer, check_batch, check_dataset};
use crate::weights::LstmWeights;

/// Steps allowed in flight before the host waits: enough to keep the GPU busy while the next
/// batch is prepared, few enough to bound the memory queued uploads hold.
const IN_FLIGHT: usize = 2;

/// Where the classifier's tensors sit in the parameter arena (and, identically, in the gradient
/// and moment arenas).
struct Layout {
    lstm: LstmSlots,
    fc_weight: Slot,
    fc_bias: Slot,
    len: usize,
}

impl Layout {
    fn new(config: ClassifierConfig) -> Self {
        let mut arena = ArenaLayout::default();
        let lstm = LstmSlots::new(config.lstm, &mut arena);
        let fc_weight = arena.alloc(config.classes * config.lstm.hidden_size);
        let fc_bias = arena.alloc(config.classes);
        Layout {
            lstm,
            fc_weight,
            fc_bias,
            len: arena.len,
        }
    }

    fn pack(&self, w: &ClassifierWeights) -> Vec<f32> {
        let mut image = vec![0.0; self.len];
        self.lstm.pack(&w.lstm, &mut image);
        let fc_weight = w.fc_weight.iter().copied();
        for (dst, v) in image[self.fc_weight.offset..][..self.fc_weight.len]
            .iter_mut()
            .zip(fc_weight)
        {
            *dst = v;
        }
        for (dst, &v) in image[self.fc_bias.offset..][..self.fc_bias.len]
            .iter_mut()
            .zip(&w.fc_bias)
        {
            *dst = v;
        }
        image
    }

    fn unpack(&self, config: ClassifierConfig, image: &[f32]) -> Result<ClassifierWeights> {
        let (c, h) = (config.classes, config.lstm.hidden_size);
        let fc = |s: Slot| image[s.offset..][..s.len].to_vec();
        Ok(ClassifierWeights {
            lstm: LstmWeights::new(config.lstm, self.lstm.unpack(image))?,
            fc_weight: Array2::from_shape_vec((c, h), fc(self.fc_weight)).map_err(|_| {
                Error::Shape {
                    tensor: "fc.weight".into(),
                    expected: vec![c, h],
                    actual: vec![self.fc_weight.len],
                }
            })?,
            fc_bias: Array1::from_vec(fc(self.fc_bias)),
        })
    }
}

/// The dense head and loss for one batch shape, on top of an LSTM workspace.
struct Head {
    batch: usize,
    seq: usize,
    lstm: Workspace,
    labels: wgpu::Buffer,
    metrics: wgpu::Buffer,
    metrics_staging: wgpu::Buffer,
    /// logits, cross-entropy; then (training only) dW_fc, db_fc, dh_last.
    dispatches: Vec<Dispatch>,
}

/// Trains a classifier on a GPU.
pub struct GpuTrainer {
    gpu: Gpu,
    counters: Counters,
    model: ClassifierConfig,
    config: TrainConfig,
    layout: Layout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    moments: Vec<wgpu::Buffer>,
    step: u64,
    train: Option<Head>,
    eval: Option<Head>,
    /// clip passes and the optimizer update, prepared once.
    update: Vec<Dispatch>,
    optimizer: OptimizerDispatch,
    in_flight: VecDeque<wgpu::SubmissionIndex>,
}

impl GpuTrainer {
    /// Uploads `weights` (and `state` to resume, else fresh optimizer state) to `gpu`.
    pub fn new(
        gpu: &Gpu,
        weights: &ClassifierWeights,
        config: TrainConfig,
        state: Option<OptimizerState>,
    ) -> Result<Self> {
        use wgpu::BufferUsages as U;
        weights.validate()?;
        config.validate()?;
        let model = weights.config();
        let state = OptimizerState::resume_or_new(state, &config.optimizer, model)?;
        let layout = Layout::new(model);
        let counters = Counters::default();
        let arena = |name: &str| gpu.storage(name, layout.len, U::COPY_DST | U::COPY_SRC);
        let params = arena("parameters")?;
        let grads = arena("gradients")?;
        let moments = state
            .moments
            .iter()
            .map(|_| arena("optimizer state"))
            .collect::<Result<Vec<_>>>()?;
        let clip = gpu.storage("clip", 2, U::COPY_DST | U::COPY_SRC)?;
        let partials = gpu.storage("norm partials", grad_norm::GROUPS, U::empty())?;
        gpu.catch("uploading the parameters", || {
            gpu.write(
                &params,
                0,
                bytemuck::cast_slice(&layout.pack(weights)),
                &counters,
            );
            for (buf, m) in moments.iter().zip(&state.moments) {
                gpu.write(buf, 0, bytemuck::cast_slice(&layout.pack(m)), &counters);
            }
            // (norm, scale): scale stays 1 when no clipping is configured.
            gpu.write(&clip, 0, bytemuck::cast_slice(&[0.0f32, 1.0]), &counters);
        })?;
        let mut update = Vec::new();
        if let Some(max) = config.clip_norm {
            update.extend(grad_norm::prepare(
                gpu, &counters, &grads, layout.len, max, &partials, &clip,
            ));
        }
        let optimizer = OptimizerDispatch::new(
            gpu,
            &counters,
            config.optimizer,
            &params,
            &grads,
            &moments,
            &clip,
            layout.len,
        );
        Ok(GpuTrainer {
            gpu: gpu.clone(),
            counters,
            model,
            config,
            layout,
            params,
            grads,
            moments,
            step: state.step,
            train: None,
            eval: None,
            update,
            optimizer,
            in_flight: VecDeque::new(),
        })
    }

    /// The gradients of the last step, before clipping, PyTorch layout.
    pub fn gradients(&self) -> Result<ClassifierWeights> {
        let image = self.read_arena(&self.grads)?;
        self.layout.unpack(self.model, &image)
    }

    /// What this trainer has recorded and transferred since it was created.
    pub fn stats(&self) -> GpuStats {
        self.counters.snapshot()
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Buffers and dispatches for batch shape `(batch, seq)`, for training or evaluation.
    fn head(&self, batch: usize, seq: usize, train: bool) -> Result<Head> {
        use wgpu::BufferUsages as U;
        let (gpu, counters, l) = (&self.gpu, &self.counters, &self.layout);
        let (c, h, layers) = (
            self.model.classes,
            self.model.lstm.hidden_size,
            self.model.lstm.num_layers,
        );
        let grads = train.then_some(&self.grads);
        // The head reads back its metrics through a small staging buffer of its own.
        let lstm = Workspace::new(
            gpu,
            counters,
            &l.lstm,
            &self.params,
            grads,
            l.len,
            batch,
            seq,
            false,
        )?;
        let labels = gpu.storage("labels", batch, U::COPY_DST)?;
        let logits = gpu.storage("logits", batch * c, U::empty())?;
        let dlogits = gpu.storage("dlogits", batch * c, U::empty())?;
        let metrics = gpu.storage("metrics", 3, U::COPY_SRC | U::COPY_DST)?;
        let metrics_staging = gpu.staging("metrics readback", 3)?;
        let h_top = (layers - 1) * batch * h;
        let mut dispatches = vec![
            // logits = h_top · fc.weightᵀ + fc.bias
            Gemm {
                m: batch,
                n: c,
                k: h,
                a: Operand::new(&lstm.state_n, h_top, h),
                b: Operand::new(&self.params, l.fc_weight.offset, h).t(),
                bias: Some((&self.params, l.fc_bias.offset)),
                c: (&logits, 0, c),
                accumulate: false,
            }
            .prepare(gpu, "logits", counters)?,
            cross_entropy::prepare(
                gpu, counters, &logits, &labels, &dlogits, &metrics, batch, c, !train,
            ),
        ];
        if let Some(bw) = &lstm.backward {
            // dfc.weight = dlogitsᵀ · h_top, dfc.bias = Σ_b dlogits, dh_top = dlogits · fc.weight.
            dispatches.push(
                Gemm {
                    m: c,
                    n: h,
                    k: batch,
                    a: Operand::new(&dlogits, 0, c).t(),
                    b: Operand::new(&lstm.state_n, h_top, h),
                    bias: None,
                    c: (&self.grads, l.fc_weight.offset, h),
                    accumulate: false,
                }
                .prepare(gpu, "dfc.weight", counters)?,
            );
            dispatches.push(column_sum::prepare(
                gpu,
                counters,
                &dlogits,
                0,
                batch,
                c,
                &self.grads,
                [l.fc_bias.offset, l.fc_bias.offset],
            )?);
            dispatches.push(
                Gemm {
                    m: batch,
                    n: h,
                    k: c,
                    a: Operand::new(&dlogits, 0, c),
                    b: Operand::new(&self.params, l.fc_weight.offset, h),
                    bias: None,
                    c: (&bw.d_state, h_top, h),
                    accumulate: false,
                }
                .prepare(gpu, "dh_n", counters)?,
            );
        }
        Ok(Head {
            batch,
            seq,
            lstm,
            labels,
            metrics,
            metrics_staging,
            dispatches,
        })
    }

    /// Waits until fewer than [`IN_FLIGHT`] steps are queued.
    fn throttle(&mut self) -> Result<()> {
        while self.in_flight.len() >= IN_FLIGHT {
            if let Some(index) = self.in_flight.pop_front() {
                self.gpu.wait_for(index)?;
            }
        }
        Ok(())
    }

    fn upload_batch(&self, head: &Head, x: ArrayView3<'_, f32>, labels: &[u32]) {
        let x = x.as_standard_layout();
        let (gpu, counters) = (&self.gpu, &self.counters);
        gpu.write(
            &head.lstm.x,
            0,
            bytemuck::cast_slice(x.as_slice().unwrap_or(&[])),
            counters,
        );
        gpu.write(&head.labels, 0, bytemuck::cast_slice(labels), counters);
    }

    fn read_metrics(&self, head: &Head) -> Result<Metrics> {
        let mut plan = ReadPlan::new();
        plan.add(&head.metrics, 0, 3);
        let v = plan
            .read(&self.gpu, &head.metrics_staging, &self.counters)?
            .remove(0);
        Ok(Metrics {
            loss_sum: v[0] as f64,
            correct: v[1].round() as usize,
            count: v[2].round() as usize,
        })
    }

    /// Reads an arena back.
    fn read_arena(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        read_buffer(&self.gpu, buffer, self.layout.len, &self.counters)
    }
}

impl Trainer for GpuTrainer {
    fn step(
        &mut self,
        x: ArrayView3<'_, f32>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        check_batch(&self.model, &x, labels)?;
        let (batch, seq) = (labels.len(), x.shape()[1]);
        if !self
            .train
            .as_ref()
            .is_some_and(|h| h.batch == batch && h.seq == seq)
        {
            self.train = None;
            let head = self.gpu.catch("preparing the training step", || {
                self.head(batch, seq, true)
            })??;
            self.train = Some(head);
        }
        self.throttle()?;
        let head = self.train.as_ref().expect("made above");
        let labels: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
        let (gpu, counters) = (&self.gpu, &self.counters);
        let index = gpu.catch("running a training step", || {
            self.upload_batch(head, x, &labels);
            self.optimizer.set_step(gpu, counters, self.step + 1);
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            // dL/dh_n and dL/dc_n start at zero; the head then writes the top layer's dL/dh_n.
            if let Some(bw) = &head.lstm.backward {
                encoder.clear_buffer(&bw.d_state, 0, None);
            }
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                let kernels = gpu.kernels();
                head.lstm.record_forward(gpu, &mut pass, counters);
                for d in &head.dispatches {
                    d.record(kernels, &mut pass, None, counters);
                }
                head.lstm.record_backward(gpu, &mut pass, counters, false);
                for d in &self.update {
                    d.record(kernels, &mut pass, None, counters);
                }
                self.optimizer
                    .dispatch
                    .record(kernels, &mut pass, None, counters);
            }
            if report {
                encoder.copy_buffer_to_buffer(&head.metrics, 0, &head.metrics_staging, 0, 12);
            }
            gpu.submit(encoder, counters)
        })?;
        self.step += 1;
        self.in_flight.push_back(index);
        if report {
            let m = self.read_metrics(self.train.as_ref().expect("made above"))?;
            self.in_flight.clear(); // the readback waited for everything
            Ok(Some(m))
        } else {
            Ok(None)
        }
    }

    fn evaluate(&mut self, data: &SequenceDataset, batch: usize) -> Result<Metrics> {
        check_dataset(&self.model, data)?;
        let batch = batch.clamp(1, data.len().max(1));
        let seq = data.seq_len();
        if !self
            .eval
            .as_ref()
            .is_some_and(|h| h.batch == batch && h.seq == seq)
        {
            self.eval = None;
            let head = self
                .gpu
                .catch("preparing evaluation", || self.head(batch, seq, false))??;
            self.eval = Some(head);
        }
        let head = self.eval.as_ref().expect("made above");
        let (gpu, counters) = (&self.gpu, &self.counters);
        let mut x = Array3::zeros((batch, seq, data.features()));
        let mut labels = Vec::new();
        let indices: Vec<usize> = (0..data.len()).collect();
        for (i, chunk) in indices.chunks(batch).enumerate() {
            // A short last batch is padded with copies of its first example, labelled as
            // padding (>= C) so the loss skips them.
            let mut padded = chunk.to_vec();
            padded.resize(batch, chunk[0]);
            data.gather(&padded, &mut x, &mut labels)?;
            let mut l32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
            for l in &mut l32[chunk.len()..] {
                *l = u32::MAX;
            }
            gpu.catch("evaluating", || {
                self.upload_batch(head, x.view(), &l32);
                let mut encoder = gpu.device().create_command_encoder(&Default::default());
                if i == 0 {
                    encoder.clear_buffer(&head.metrics, 0, None);
                }
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    head.lstm.record_forward(gpu, &mut pass, counters);
                    for d in &head.dispatches {
                        d.record(gpu.kernels(), &mut pass, None, counters);
                    }
                }
                if (i + 1) * batch >= data.len() {
                    encoder.copy_buffer_to_buffer(&head.metrics, 0, &head.metrics_staging, 0, 12);
                }
                gpu.submit(encoder, counters);
            })?;
        }
        let m = self.read_metrics(head)?;
        self.in_flight.clear();
        Ok(m)
    }

    fn weights(&self) -> Result<ClassifierWeights> {
        let image = self.read_arena(&self.params)?;
        self.layout.unpack(self.model, &image)
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        let moments = self
            .moments
            .iter()
            .map(|m| self.layout.unpack(self.model, &self.read_arena(m)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(OptimizerState {
            step: self.step,
            moments,
        })
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn device(&self) -> String {
        format!("GPU: {}", self.gpu.describe())
    }
}
