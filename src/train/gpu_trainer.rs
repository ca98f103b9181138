//! Training on the GPU: one submission per step holds the forward pass, the dense head and loss,
//! backpropagation through time, gradient clipping and the optimizer update. Parameters,
//! gradients and optimizer moments never leave the GPU; the only readback is the batch's loss
//! and accuracy, and only on steps that report them.

use std::collections::VecDeque;

use ndarray::{Array1, Array2, Array3, ArrayView3};

use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::layout::{ArenaLayout, ArenaSlot, LstmSlots};
use crate::gpu::mapping::Callback;
use crate::gpu::plan::arenas::{Arena, Arenas};
use crate::gpu::plan::classifier::{ClassifierPlan, HeadSlots};
use crate::gpu::plan::forward::Mode;
use crate::gpu::plan::update::UpdatePlan;
use crate::gpu::stats::{Counters, GpuStats};
use crate::lstm::Dropout;
use crate::optim::TrainConfig;
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};
use crate::train::metrics::Metrics;
use crate::train::optimizer_state::OptimizerState;
use crate::train::trainer::{Trainer, check_batch, check_dataset, labels_u32};
use crate::weights::LstmWeights;

/// Steps allowed in flight before the host waits: enough to keep the GPU busy while the next
/// batch is prepared, few enough to bound the memory queued uploads hold.
const IN_FLIGHT: usize = 2;

/// Where the classifier's tensors sit in the parameter arena (and, identically, in the gradient
/// and moment arenas).
struct Layout {
    lstm: LstmSlots,
    head: HeadSlots,
    len: usize,
}

impl Layout {
    fn new(config: ClassifierConfig) -> Self {
        let mut arena = ArenaLayout::default();
        let lstm = LstmSlots::new(config.lstm, &mut arena);
        let fc_weight = arena.alloc(config.classes * config.features());
        let fc_bias = arena.alloc(config.classes);
        let head = HeadSlots {
            fc_weight,
            fc_bias,
            classes: config.classes,
        };
        Layout {
            lstm,
            head,
            len: arena.len,
        }
    }

    fn pack(&self, w: &ClassifierWeights) -> Vec<f32> {
        let mut image = vec![0.0; self.len];
        self.lstm.pack(&w.lstm, &mut image);
        let h = &self.head;
        for (dst, v) in h.fc_weight.of_mut(&mut image).iter_mut().zip(&w.fc_weight) {
            *dst = *v;
        }
        for (dst, v) in h.fc_bias.of_mut(&mut image).iter_mut().zip(&w.fc_bias) {
            *dst = *v;
        }
        image
    }

    fn unpack(&self, config: ClassifierConfig, image: &[f32]) -> Result<ClassifierWeights> {
        let (c, f) = (config.classes, config.features());
        let fc = |s: ArenaSlot| s.of(image).to_vec();
        Ok(ClassifierWeights {
            lstm: LstmWeights::new(config.lstm, self.lstm.unpack(image))?,
            fc_weight: Array2::from_shape_vec((c, f), fc(self.head.fc_weight)).map_err(|_| {
                Error::Shape {
                    tensor: "fc.weight".into(),
                    expected: vec![c, f],
                    actual: vec![self.head.fc_weight.len],
                }
            })?,
            fc_bias: Array1::from_vec(fc(self.head.fc_bias)),
        })
    }
}

/// Trains a classifier on a GPU.
pub struct GpuTrainer {
    gpu: Gpu,
    counters: Counters,
    model: ClassifierConfig,
    config: TrainConfig,
    layout: Layout,
    arenas: Arenas,
    step: u64,
    train: Option<ClassifierPlan>,
    eval: Option<ClassifierPlan>,
    update: UpdatePlan,
    /// Resolves when the GPU has finished each step still in flight, oldest first.
    in_flight: VecDeque<Callback<()>>,
    /// Dropout between the LSTM's layers in training steps (step `s` draws pass `s`).
    dropout: Option<Dropout>,
}

impl GpuTrainer {
    /// Uploads `weights` (and `state` to resume, else fresh optimizer state) to `gpu`.
    pub fn new(
        gpu: &Gpu,
        weights: &ClassifierWeights,
        config: TrainConfig,
        state: Option<OptimizerState>,
    ) -> Result<Self> {
        weights.validate()?;
        config.validate()?;
        let model = weights.config();
        gpu.check_storage("parameters", Layout::new(model).len)?;
        // One copy of its own: the packed upload image.
        OptimizerState::reserve_host(state.as_ref(), &config.optimizer, model, 1)?;
        let state = OptimizerState::resume_or_new(state, &config.optimizer, model)?;
        let layout = Layout::new(model);
        let counters = Counters::default();
        let (arenas, update) = gpu.catch("uploading the parameters", || -> Result<_> {
            let arenas = Arenas::new(gpu, &counters, layout.len, state.moments.len())?;
            arenas.upload(gpu, &counters, Arena::Params, &layout.pack(weights))?;
            for (i, m) in state.moments.iter().enumerate() {
                arenas.upload(gpu, &counters, Arena::Moment(i), &layout.pack(m))?;
            }
            let update = UpdatePlan::new(gpu, &counters, &config, &arenas)?;
            Ok((arenas, update))
        })??;
        Ok(GpuTrainer {
            gpu: gpu.clone(),
            counters,
            model,
            config,
            layout,
            arenas,
            step: state.step,
            train: None,
            eval: None,
            update,
            in_flight: VecDeque::new(),
            dropout: None,
        })
    }

    /// The same trainer with dropout between the LSTM's layers in its training steps, as
    /// [`crate::train::CpuTrainer::with_dropout`] (the same masks).
    pub fn with_dropout(mut self, dropout: Option<Dropout>) -> Self {
        self.dropout = dropout;
        self
    }

    /// What the training plan runs.
    fn train_mode(&self) -> Mode {
        Mode {
            save: true,
            dropout: self.dropout.is_some() && self.model.lstm.num_layers > 1,
        }
    }

    /// Checks, allocating nothing, that training a `model` with `config` fits: its parameter,
    /// gradient and optimizer arenas within `gpu`'s buffer limits
    /// ([`Error::DeviceLimit`]), and the host copies (the weights,
    /// their packed upload image, new moments) in host memory
    /// ([`Error::HostMemory`]). For sizes a user chooses, call it
    /// before initialising the weights.
    pub fn check_fits(gpu: &Gpu, model: ClassifierConfig, config: &TrainConfig) -> Result<()> {
        gpu.check_storage("parameters", Layout::new(model).len)?;
        // The weights and their packed upload image.
        OptimizerState::reserve_host(None, &config.optimizer, model, 2)
    }

    /// The gradients of the last step, before clipping, PyTorch layout.
    pub fn gradients(&self) -> Result<ClassifierWeights> {
        crate::gpu::mapping::block_on(self.gradients_async())
    }

    /// What this trainer has recorded and transferred since it was created.
    pub fn stats(&self) -> GpuStats {
        self.counters.snapshot()
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Waits until fewer than [`IN_FLIGHT`] steps are queued.
    async fn throttle(&mut self) -> Result<()> {
        while self.in_flight.len() >= IN_FLIGHT {
            if let Some(done) = self.in_flight.pop_front() {
                done.await;
            }
        }
        self.gpu.check_alive()
    }

    /// Reads an arena back as classifier tensors.
    async fn read_arena(&self, which: Arena) -> Result<ClassifierWeights> {
        let image = self
            .arenas
            .read_async(&self.gpu, &self.counters, which)
            .await?;
        self.layout.unpack(self.model, &image)
    }
}

/// The trainer's calls as futures: each records and submits its work when first polled, then
/// waits for the GPU without blocking a thread (as [`crate::gpu::GpuLstm::forward_async`]), so
/// a training loop can run on any executor. The blocking calls of [`Trainer`] are these, run to
/// completion on the calling thread, which waits on the device itself.
impl GpuTrainer {
    /// [`Trainer::step`], asynchronously.
    pub async fn step_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        self.step_lengths_async(x, None, labels, report).await
    }

    /// [`Trainer::step_lengths`], asynchronously.
    pub async fn step_lengths_async(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        check_batch(&self.model, &x, labels)?;
        let shape = (labels.len(), x.shape()[1]);
        if let Some(l) = lengths {
            crate::lstm::check_lengths(l, shape.0, shape.1)?;
        }
        self.throttle().await?;
        let mode = self.train_mode();
        let dropout = self.dropout.map(|d| d.at_pass(self.step));
        let (gpu, counters) = (&self.gpu, &self.counters);
        let plan = plan_for(
            &mut self.train,
            gpu,
            counters,
            (&self.arenas, &self.layout),
            shape,
            mode,
        )?;
        plan.set_lengths(gpu, counters, lengths);
        let labels = labels_u32(labels);
        gpu.catch("running a training step", || -> Result<_> {
            if let (Some(d), true) = (&dropout, mode.dropout) {
                plan.write_dropout(gpu, counters, d)?;
            }
            plan.upload_batch(gpu, counters, x, &labels);
            self.update.set_step(gpu, counters, self.step + 1)?;
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            plan.record_training_step(gpu, counters, &mut encoder, &self.update, report);
            gpu.submit(encoder, counters);
            Ok(())
        })??;
        self.step += 1;
        self.in_flight.push_back(gpu.work_done());
        if !report {
            return Ok(None);
        }
        let m = plan.read_metrics_async(gpu, counters).await?;
        self.in_flight.clear(); // the readback waited for everything
        Ok(Some(metrics(m)))
    }

    /// [`Trainer::evaluate`], asynchronously.
    pub async fn evaluate_async(
        &mut self,
        data: &SequenceDataset,
        batch: usize,
    ) -> Result<Metrics> {
        check_dataset(&self.model, data)?;
        let batch = batch.clamp(1, data.len().max(1));
        let shape = (batch, data.seq_len());
        let (gpu, counters) = (&self.gpu, &self.counters);
        let plan = plan_for(
            &mut self.eval,
            gpu,
            counters,
            (&self.arenas, &self.layout),
            shape,
            Mode::INFERENCE,
        )?;
        let mut x = Array3::zeros((batch, data.seq_len(), data.features()));
        let mut labels = Vec::new();
        let indices: Vec<usize> = (0..data.len()).collect();
        let chunks = indices.chunks(batch).count();
        for (i, chunk) in indices.chunks(batch).enumerate() {
            // A short last batch is padded with copies of its first example, labelled as
            // padding (>= C) so the loss skips them.
            let mut padded = chunk.to_vec();
            padded.resize(batch, chunk[0]);
            data.gather(&padded, &mut x, &mut labels)?;
            plan.set_lengths(gpu, counters, data.lengths_of(&padded).as_deref());
            let mut l32 = labels_u32(&labels);
            l32[chunk.len()..].fill(u32::MAX);
            gpu.catch("evaluating", || {
                plan.upload_batch(gpu, counters, x.view(), &l32);
                let mut encoder = gpu.device().create_command_encoder(&Default::default());
                plan.record_evaluation(gpu, counters, &mut encoder, i == 0, i + 1 == chunks);
                gpu.submit(encoder, counters);
            })?;
        }
        let m = plan.read_metrics_async(gpu, counters).await?;
        self.in_flight.clear();
        Ok(metrics(m))
    }

    /// [`Trainer::weights`], asynchronously.
    pub async fn weights_async(&self) -> Result<ClassifierWeights> {
        self.read_arena(Arena::Params).await
    }

    /// [`Trainer::optimizer_state`], asynchronously.
    pub async fn optimizer_state_async(&self) -> Result<OptimizerState> {
        let mut moments = Vec::with_capacity(self.arenas.moments());
        for i in 0..self.arenas.moments() {
            moments.push(self.read_arena(Arena::Moment(i)).await?);
        }
        Ok(OptimizerState {
            step: self.step,
            moments,
        })
    }

    /// [`Self::gradients`], asynchronously.
    pub async fn gradients_async(&self) -> Result<ClassifierWeights> {
        self.read_arena(Arena::Grads).await
    }
}

/// Makes `slot` hold a plan for `(batch, seq)` in `mode` (training or evaluation), building one
/// only when the shape changed.
fn plan_for<'a>(
    slot: &'a mut Option<ClassifierPlan>,
    gpu: &Gpu,
    counters: &Counters,
    (arenas, layout): (&Arenas, &Layout),
    (batch, seq): (usize, usize),
    mode: Mode,
) -> Result<&'a mut ClassifierPlan> {
    if !slot.as_ref().is_some_and(|p| p.fits(batch, seq, mode)) {
        *slot = None; // free the old shape's buffers first
        let context = match mode.save {
            true => "preparing the training step",
            false => "preparing evaluation",
        };
        let plan = gpu.catch(context, || {
            let shape = (batch, seq);
            ClassifierPlan::new(
                gpu,
                counters,
                arenas,
                &layout.lstm,
                &layout.head,
                shape,
                mode,
            )
        })??;
        *slot = Some(plan);
    }
    Ok(slot.as_mut().expect("set just above"))
}

fn metrics([loss_sum, correct, count]: [f32; 3]) -> Metrics {
    Metrics {
        loss_sum: loss_sum as f64,
        correct: correct.round() as usize,
        count: count.round() as usize,
    }
}

impl Trainer for GpuTrainer {
    fn step_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        crate::gpu::mapping::block_on(self.step_lengths_async(x, lengths, labels, report))
    }

    fn evaluate(&mut self, data: &SequenceDataset, batch: usize) -> Result<Metrics> {
        crate::gpu::mapping::block_on(self.evaluate_async(data, batch))
    }

    fn weights(&self) -> Result<ClassifierWeights> {
        crate::gpu::mapping::block_on(self.weights_async())
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        crate::gpu::mapping::block_on(self.optimizer_state_async())
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn device(&self) -> String {
        format!("GPU: {}", self.gpu.describe())
    }

    fn dropout(&self) -> Option<Dropout> {
        self.dropout
    }
}
