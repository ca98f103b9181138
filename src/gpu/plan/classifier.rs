//! The reference classifier's step on the GPU for one batch shape: the LSTM's forward plan, the
//! dense head and loss on the top layer's last hidden state, and (for training) the head's
//! backward and the LSTM's backward plan.
//!
//! ```text
//! logits      = h_n[top] · fc.weightᵀ + fc.bias           [B, C]
//! dlogits     = cross_entropy'(logits, labels)            [B, C]
//! dfc.weight  = dlogitsᵀ · h_n[top]     dfc.bias = Σ_b dlogits     dh_n[top] = dlogits · fc.weight
//! ```
//!
//! With `D` directions, `h_n[top]` is the top layer's directions side by side (`[B, D·O]`); it
//! sits in the state buffer as `[D, B, O]`, so each product is one GEMM per direction on its
//! block of `fc.weight`'s columns (the logits' second adding to the first).

use crate::gpu::recording::Recording;
use ndarray::ArrayView3;

use crate::error::Result;
use crate::gemm::{GemmSpec, MatrixLayout};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::{Dispatch, record_all};
use crate::gpu::kernels::column_sum::ColumnSum;
use crate::gpu::kernels::cross_entropy::CrossEntropy;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::layout::{ArenaSlot, LstmSlots};
use crate::gpu::plan::arenas::Arenas;
use crate::gpu::plan::backward::BackwardPlan;
use crate::gpu::plan::forward::{ForwardPlan, Mode, Weights};
use crate::gpu::plan::update::UpdatePlan;
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;

/// Where the dense head sits in the arenas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadSlots {
    /// `fc.weight` `[C, D·O]`.
    pub fc_weight: ArenaSlot,
    /// `fc.bias` `[C]`.
    pub fc_bias: ArenaSlot,
    /// Classes `C`.
    pub classes: usize,
}

/// Floats of the metrics buffer: `(loss sum, correct, count)`.
const METRICS: usize = 3;

/// Buffers and dispatches of one classifier batch shape, for training or evaluation.
pub(crate) struct ClassifierPlan {
    forward: ForwardPlan,
    backward: Option<BackwardPlan>,
    labels: wgpu::Buffer,
    metrics: wgpu::Buffer,
    metrics_staging: wgpu::Buffer,
    /// logits and cross-entropy.
    head: Vec<Dispatch>,
    /// (training) dfc.weight, dfc.bias, dh_n of the top layer.
    head_backward: Vec<Dispatch>,
}

/// The intermediate tensors of the head.
struct HeadBuffers<'a> {
    logits: &'a wgpu::Buffer,
    dlogits: &'a wgpu::Buffer,
    /// The top layer's `h_n`, `[D, B, O]`.
    h_top: Region<'a>,
    batch: usize,
    /// Features of `h`, `O`.
    out: usize,
    dirs: usize,
}

impl ClassifierPlan {
    /// The plan for `(batch, seq)`; with `mode.save` (training), also backward into
    /// `arenas.grads`, and the loss overwrites the metrics (else each batch adds to them); with
    /// `mode.dropout`, dropout between the LSTM's layers.
    #[allow(clippy::too_many_arguments)] // each argument is a different part of the model
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        arenas: &Arenas,
        lstm: &LstmSlots,
        slots: &HeadSlots,
        (batch, seq): (usize, usize),
        mode: Mode,
    ) -> Result<Self> {
        let train = mode.save;
        use wgpu::BufferUsages as U;
        // The optimizer updates the parameters on the GPU: the steps read them in place.
        let weights = Weights {
            slots: lstm,
            params: &arenas.params,
            texels: None,
        };
        let forward = ForwardPlan::new(gpu, counters, &weights, (batch, seq), mode)?;
        let backward = match train {
            true => Some(BackwardPlan::new(
                gpu,
                counters,
                (lstm, &arenas.params, None),
                &arenas.grads,
                &forward,
            )?),
            false => None,
        };
        let c = slots.classes;
        let labels = gpu.storage("labels", batch, U::COPY_DST)?;
        let logits = gpu.storage("logits", batch * c, U::empty())?;
        let dlogits = gpu.storage("dlogits", batch * c, U::empty())?;
        let metrics = gpu.storage("metrics", METRICS, U::COPY_SRC | U::COPY_DST)?;
        let metrics_staging = gpu.staging("metrics readback", METRICS)?;
        let top = lstm.config.num_layers - 1;
        let bufs = HeadBuffers {
            logits: &logits,
            dlogits: &dlogits,
            h_top: forward.h_n(top),
            batch,
            out: lstm.config.output_size(),
            dirs: lstm.config.num_directions(),
        };
        let loss = CrossEntropy {
            logits: &logits,
            labels: &labels,
            dlogits: &dlogits,
            metrics: &metrics,
            rows: batch,
            classes: c,
            accumulate: !train,
        };
        let mut head = logits_dispatch(gpu, counters, arenas, slots, &bufs)?;
        head.push(Dispatch::new(gpu, counters, "cross-entropy", &loss)?);
        let head_backward = match &backward {
            Some(bw) => head_backward(gpu, counters, arenas, slots, &bufs, bw.dh_n(top))?,
            None => Vec::new(),
        };
        Ok(ClassifierPlan {
            forward,
            backward,
            labels,
            metrics,
            metrics_staging,
            head,
            head_backward,
        })
    }

    /// Whether this plan serves `(batch, seq)` in `mode`.
    pub(crate) fn fits(&self, batch: usize, seq: usize, mode: Mode) -> bool {
        self.forward.fits(batch, seq, mode)
    }

    /// Makes the sequences of the next batch `lengths` long (`None`: all `T`; checked by the
    /// caller), uploading them only when they changed.
    pub(crate) fn set_lengths(
        &mut self,
        gpu: &Gpu,
        counters: &Counters,
        lengths: Option<&[usize]>,
    ) {
        self.forward.set_lengths(gpu, counters, lengths);
    }

    /// Writes the dropout masks' key of `dropout` (its pass) before a training step.
    pub(crate) fn write_dropout(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        dropout: &crate::lstm::Dropout,
    ) -> Result<()> {
        self.forward.write_dropout(gpu, counters, dropout)?;
        if let Some(bw) = &self.backward {
            bw.write_dropout(gpu, counters, dropout)?;
        }
        Ok(())
    }

    /// Uploads a batch: `x` `[B, T, I]` and `labels` `[B]` (`>= C` marks a padding row).
    pub(crate) fn upload_batch(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        x: ArrayView3<'_, f32>,
        labels: &[u32],
    ) {
        self.forward.upload_x(gpu, counters, x);
        gpu.write(&self.labels, 0, bytemuck::cast_slice(labels), counters);
    }

    /// Records one training step: forward, head and loss, backward, then `update`. With
    /// `report`, the metrics are copied out for [`ClassifierPlan::read_metrics`].
    pub(crate) fn record_training_step(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        update: &UpdatePlan,
        report: bool,
    ) {
        if let Some(bw) = &self.backward {
            // dL/dh_n and dL/dc_n start at zero; the head then writes the top layer's dL/dh_n.
            bw.clear_state_gradients(encoder);
        }
        {
            let mut pass = Recording::begin(encoder);
            self.forward.record(gpu, &mut pass, counters);
            record_all(gpu, &mut pass, &self.head, counters);
            record_all(gpu, &mut pass, &self.head_backward, counters);
            if let Some(bw) = &self.backward {
                bw.record(gpu, &mut pass, counters, &self.forward, false);
            }
            update.record(gpu, &mut pass, counters);
        }
        if report {
            self.copy_metrics(encoder);
        }
    }

    /// Records one evaluation batch, its metrics added to those of the batches before it since
    /// the `first`; the `last` copies them out for [`ClassifierPlan::read_metrics`].
    pub(crate) fn record_evaluation(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        first: bool,
        last: bool,
    ) {
        if first {
            encoder.clear_buffer(&self.metrics, 0, None);
        }
        {
            let mut pass = Recording::begin(encoder);
            self.forward.record(gpu, &mut pass, counters);
            record_all(gpu, &mut pass, &self.head, counters);
        }
        if last {
            self.copy_metrics(encoder);
        }
    }

    fn copy_metrics(&self, encoder: &mut wgpu::CommandEncoder) {
        let bytes = (METRICS * 4) as u64;
        encoder.copy_buffer_to_buffer(&self.metrics, 0, &self.metrics_staging, 0, bytes);
    }

    /// `(loss sum, correct, count)` as copied by the last recorded report (waits for it
    /// without blocking).
    pub(crate) async fn read_metrics_async(
        &self,
        gpu: &Gpu,
        counters: &Counters,
    ) -> Result<[f32; 3]> {
        let mut plan = ReadPlan::new();
        plan.add(Region::whole(&self.metrics, METRICS));
        let v = plan
            .read_async(gpu, &self.metrics_staging, counters)
            .await?
            .remove(0);
        Ok([v[0], v[1], v[2]])
    }
}

/// `logits = h_top · fc.weightᵀ + fc.bias`: per direction `d`, `h_n[top, d] · fc.weight[:,
/// d·O..(d+1)·O]ᵀ`, the first with the bias, the others adding.
fn logits_dispatch(
    gpu: &Gpu,
    counters: &Counters,
    arenas: &Arenas,
    slots: &HeadSlots,
    bufs: &HeadBuffers<'_>,
) -> Result<Vec<Dispatch>> {
    let (b, c, o) = (bufs.batch, slots.classes, bufs.out);
    let f = bufs.dirs * o;
    (0..bufs.dirs)
        .map(|d| {
            let spec = GemmSpec::new(
                (b, c, o),
                MatrixLayout::new(bufs.h_top.offset + d * b * o, o),
                MatrixLayout::new(slots.fc_weight.offset + d * o, f).t(),
                MatrixLayout::new(0, c),
            );
            let spec = match d {
                0 => spec.with_bias(slots.fc_bias.offset),
                _ => spec.accumulating(true),
            };
            let call = Matmul {
                subgroups: gpu.tuning().subgroups,
                spec,
                a: bufs.h_top.buffer,
                b: &arenas.params,
                bias: (d == 0).then_some(&arenas.params),
                c: bufs.logits,
            };
            Dispatch::new(gpu, counters, "logits", &call)
        })
        .collect()
}

/// `dfc.weight = dlogitsᵀ · h_top`, `dfc.bias = Σ_b dlogits`, `dh_top = dlogits · fc.weight`,
/// the products one per direction on its block of `fc.weight`'s columns.
fn head_backward(
    gpu: &Gpu,
    counters: &Counters,
    arenas: &Arenas,
    slots: &HeadSlots,
    bufs: &HeadBuffers<'_>,
    dh_top: Region<'_>,
) -> Result<Vec<Dispatch>> {
    let (b, c, o) = (bufs.batch, slots.classes, bufs.out);
    let f = bufs.dirs * o;
    let m = MatrixLayout::new;
    let mut list = Vec::new();
    for d in 0..bufs.dirs {
        let d_weight = Matmul {
            subgroups: gpu.tuning().subgroups,
            spec: GemmSpec::new(
                (c, o, b),
                m(0, c).t(),
                m(bufs.h_top.offset + d * b * o, o),
                m(slots.fc_weight.offset + d * o, f),
            ),
            a: bufs.dlogits,
            b: bufs.h_top.buffer,
            bias: None,
            c: &arenas.grads,
        };
        list.push(Dispatch::new(gpu, counters, "dfc.weight", &d_weight)?);
    }
    let d_bias = ColumnSum {
        input: bufs.dlogits,
        in_off: 0,
        rows: b,
        cols: c,
        out: &arenas.grads,
        out_offsets: [slots.fc_bias.offset; 2],
    };
    list.push(Dispatch::new(gpu, counters, "dfc.bias", &d_bias)?);
    for d in 0..bufs.dirs {
        let d_h = Matmul {
            subgroups: gpu.tuning().subgroups,
            spec: GemmSpec::new(
                (b, o, c),
                m(0, c),
                m(slots.fc_weight.offset + d * o, f),
                m(dh_top.offset + d * b * o, o),
            ),
            a: bufs.dlogits,
            b: &arenas.params,
            bias: None,
            c: dh_top.buffer,
        };
        list.push(Dispatch::new(gpu, counters, "dh_n", &d_h)?);
    }
    Ok(list)
}
