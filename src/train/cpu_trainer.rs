//! Training on the CPU: the reference LSTM, the dense head and the optimizers in ndarray.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, s};

use crate::cpu::adam::adam;
use crate::cpu::cross_entropy::cross_entropy;
use crate::cpu::general_lstm::{self, GeneralTape};
use crate::cpu::grad_norm::{clip_scale, grad_norm};
use crate::cpu::isa::Isa;
use crate::cpu::lstm::{
    BackwardScratch, CpuTape, ForwardScratch, backward_with, forward_into_tape, forward_states,
};
use crate::cpu::sgd::sgd;
use crate::data::SequenceDataset;
use crate::error::Result;
use crate::lstm::{Dropout, GradRequest, Upstream};
use crate::optim::{Optimizer, TrainConfig};
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};
use crate::train::metrics::Metrics;
use crate::train::optimizer_state::OptimizerState;
use crate::train::trainer::{Trainer, check_batch, check_dataset, labels_u32};
use crate::weights::LstmWeights;

/// Trains a classifier on the CPU. Buffers are kept between steps of the same shape.
#[derive(Debug, Clone)]
pub struct CpuTrainer {
    weights: ClassifierWeights,
    config: TrainConfig,
    state: OptimizerState,
    isa: Isa,
    tape: CpuTape<f32>,
    inference: ForwardScratch<f32>,
    /// `inference` holds the current LSTM weights, packed (until the next step changes them).
    inference_packed: bool,
    scratch: BackwardScratch<f32>,
    /// The tape of the general path (bidirectional or projected layers, lengths, dropout).
    general: GeneralTape<f32>,
    /// Dropout between layers in training steps; step `s` (0-based) draws the masks of pass `s`.
    dropout: Option<Dropout>,
    gradients: Option<ClassifierWeights>,
}

impl CpuTrainer {
    /// Starts from `weights`, with `state` to resume (or fresh state).
    pub fn new(
        weights: ClassifierWeights,
        config: TrainConfig,
        state: Option<OptimizerState>,
    ) -> Result<Self> {
        weights.validate()?;
        config.validate()?;
        // One copy of its own: the gradients.
        OptimizerState::reserve_host(state.as_ref(), &config.optimizer, weights.config(), 1)?;
        let state = OptimizerState::resume_or_new(state, &config.optimizer, weights.config())?;
        Ok(CpuTrainer {
            weights,
            config,
            state,
            isa: Isa::from_env()?,
            tape: CpuTape::default(),
            inference: ForwardScratch::default(),
            inference_packed: false,
            scratch: BackwardScratch::default(),
            general: GeneralTape::default(),
            dropout: None,
            gradients: None,
        })
    }

    /// The same trainer with dropout between the LSTM's layers in its training steps
    /// (`nn.LSTM(dropout=p)`; its `pass` is ignored: step `s`, counted from 0 over the whole
    /// run, draws the masks of pass `s`, so a resumed run draws what the uninterrupted one
    /// would). Evaluation never drops anything.
    pub fn with_dropout(mut self, dropout: Option<Dropout>) -> Self {
        self.dropout = dropout;
        self
    }

    /// Checks, allocating nothing, that the host memory training a `model` with `config` holds
    /// (the weights, their gradients, the optimizer's moments) can be allocated
    /// ([`Error::HostMemory`](crate::Error::HostMemory) otherwise). For sizes a user chooses,
    /// call it before initialising the weights.
    pub fn check_fits(model: ClassifierConfig, config: &TrainConfig) -> Result<()> {
        // The weights and their gradients.
        OptimizerState::reserve_host(None, &config.optimizer, model, 2)
    }

    /// The same trainer on the instruction set `isa`; fails when this processor lacks it.
    pub fn with_isa(mut self, isa: Isa) -> Result<Self> {
        self.isa = isa.check_supported()?;
        Ok(self)
    }

    /// The gradients of the last step, before clipping (`None` before the first step).
    pub fn gradients(&self) -> Option<&ClassifierWeights> {
        self.gradients.as_ref()
    }

    /// Class scores `[B, C]` for `x` `[B, T, I]` (forward only).
    pub fn logits(&mut self, x: ArrayView3<'_, f32>) -> Result<Array2<f32>> {
        self.logits_lengths(x, None)
    }

    /// Class scores `[B, C]` for `x` `[B, T, I]` of sequences `lengths` `[B]` long (all `T`
    /// when `None`), from each one's state at its last step.
    pub fn logits_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
    ) -> Result<Array2<f32>> {
        let config = self.weights.config();
        let (batch, seq) = crate::lstm::check_input(&config.lstm, &x, None)?;
        if let Some(l) = lengths {
            crate::lstm::check_lengths(l, batch, seq)?;
        }
        let h_n = match config.lstm.is_plain() && lengths.is_none() {
            true => {
                let (h_n, _) = forward_states(
                    self.isa,
                    &self.weights.lstm,
                    x,
                    None,
                    &mut self.inference,
                    None,
                    self.inference_packed,
                )?;
                self.inference_packed = true;
                h_n
            }
            false => general_lstm::forward(self.isa, &self.weights.lstm, x, lengths, None)?.h_n,
        };
        Ok(self.head(top_features(&config, &h_n).view()))
    }

    /// Logits `[B, C]` of the top layer's last hidden state `h_last` `[B, F]`.
    fn head(&self, h_last: ndarray::ArrayView2<'_, f32>) -> Array2<f32> {
        let mut logits = Array2::zeros((h_last.nrows(), self.weights.fc_bias.len()));
        logits.assign(&self.weights.fc_bias);
        ndarray::linalg::general_mat_mul(
            1.0,
            &h_last,
            &self.weights.fc_weight.t(),
            1.0,
            &mut logits,
        );
        logits
    }
}

impl CpuTrainer {
    /// Clips `grads` by their global norm (when configured) and takes one optimizer step at the
    /// step's scheduled learning rate.
    fn clip_and_update(&mut self, grads: &ClassifierWeights) {
        let scale = match self.config.clip_norm {
            Some(max) => clip_scale(
                grad_norm(grads.tensors().into_iter().filter_map(|t| t.1)),
                max,
            ),
            None => 1.0,
        };
        let optimizer = self.config.optimizer_at(self.state.step);
        self.state.step += 1;
        let step = self.state.step;
        let grad_tensors: Vec<&[f32]> = grads.tensors().into_iter().filter_map(|t| t.1).collect();
        let mut moments = self
            .state
            .moments
            .iter_mut()
            .map(|m| m.tensors_mut())
            .collect::<Vec<_>>();
        for (i, (p, g)) in self
            .weights
            .tensors_mut()
            .into_iter()
            .zip(&grad_tensors)
            .enumerate()
        {
            match (&optimizer, moments.as_mut_slice()) {
                (Optimizer::Adam(a), [m, v]) => adam(p, g, m[i], v[i], a, step, scale),
                (Optimizer::Sgd { lr, momentum }, [buf]) => {
                    sgd(p, g, buf[i], *lr, *momentum, scale)
                }
                // The state was checked against the optimizer when the trainer was made.
                _ => unreachable!("optimizer state does not match the optimizer"),
            }
        }
    }
}

impl Trainer for CpuTrainer {
    fn step_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        let config = self.weights.config();
        check_batch(&config, &x, labels)?;
        let (batch, seq) = (x.dim().0, x.dim().1);
        if let Some(l) = lengths {
            crate::lstm::check_lengths(l, batch, seq)?;
        }
        let dropout = self
            .dropout
            .filter(|_| config.lstm.num_layers > 1)
            .map(|d| d.at_pass(self.state.step));
        // The plain LSTM of full-length sequences takes the fast path; every other the general.
        let general = !config.lstm.is_plain() || lengths.is_some() || dropout.is_some();

        // Forward: LSTM, dense head on the top layer's last hidden state, loss.
        let h_n = match general {
            false => {
                forward_into_tape(self.isa, &self.weights.lstm, x, None, &mut self.tape, None)?.0
            }
            true => {
                let (out, tape) = general_lstm::forward_train(
                    self.isa,
                    &self.weights.lstm,
                    x,
                    lengths,
                    None,
                    dropout.as_ref(),
                )?;
                self.general = tape;
                out.h_n
            }
        };
        let h_last = top_features(&config, &h_n);
        let logits = self.head(h_last.view());
        let ce = cross_entropy(logits.view(), &labels_u32(labels))?;

        // Backward: head, then the LSTM from dL/dh_n of the top layer.
        let mut grads = ClassifierWeights::zeros(config);
        grads.fc_weight = ce.dlogits.t().dot(&h_last);
        grads.fc_bias = ce.dlogits.sum_axis(Axis(0));
        let upstream = Upstream {
            dh_n: Some(spread_features(
                &config,
                ce.dlogits.dot(&self.weights.fc_weight).view(),
            )),
            ..Default::default()
        };
        let g = match general {
            false => backward_with(
                self.isa,
                &self.weights.lstm,
                &self.tape,
                &upstream,
                GradRequest::WEIGHTS,
                &mut self.scratch,
            )?,
            true => general_lstm::backward(
                self.isa,
                &self.weights.lstm,
                &self.general,
                &upstream,
                GradRequest::WEIGHTS,
            )?,
        };
        grads.lstm = LstmWeights::new(config.lstm, g.layers.unwrap_or_default())?;

        self.clip_and_update(&grads);
        self.inference_packed = false;
        self.gradients = Some(grads);
        Ok(report.then_some(Metrics {
            loss_sum: ce.loss_sum as f64,
            correct: ce.correct,
            count: ce.count,
        }))
    }

    fn evaluate(&mut self, data: &SequenceDataset, batch: usize) -> Result<Metrics> {
        let config = self.weights.config();
        check_dataset(&config, data)?;
        let mut total = Metrics::default();
        let batch = batch.max(1);
        let mut x = Array3::zeros((0, 0, 0));
        let mut labels = Vec::new();
        let indices: Vec<usize> = (0..data.len()).collect();
        for chunk in indices.chunks(batch) {
            x = if x.dim() == (chunk.len(), data.seq_len(), data.features()) {
                x
            } else {
                Array3::zeros((chunk.len(), data.seq_len(), data.features()))
            };
            data.gather(chunk, &mut x, &mut labels)?;
            let lengths = data.lengths_of(chunk);
            let logits = self.logits_lengths(x.view(), lengths.as_deref())?;
            let ce = cross_entropy(logits.view(), &labels_u32(&labels))?;
            total.add(Metrics {
                loss_sum: ce.loss_sum as f64,
                correct: ce.correct,
                count: ce.count,
            });
        }
        Ok(total)
    }

    fn weights(&self) -> Result<ClassifierWeights> {
        Ok(self.weights.clone())
    }

    fn optimizer_state(&self) -> Result<OptimizerState> {
        Ok(self.state.clone())
    }

    fn config(&self) -> &TrainConfig {
        &self.config
    }

    fn device(&self) -> String {
        format!("CPU ({} threads)", rayon::current_num_threads())
    }

    fn dropout(&self) -> Option<Dropout> {
        self.dropout
    }
}

/// The dense layer's input `[B, F]`: the top layer's `h_n` of every direction side by side,
/// from `h_n` `[L·D, B, H_out]`.
pub(crate) fn top_features(config: &ClassifierConfig, h_n: &Array3<f32>) -> Array2<f32> {
    let c = &config.lstm;
    let (dirs, out) = (c.num_directions(), c.output_size());
    let top = (c.num_layers - 1) * dirs;
    let batch = h_n.dim().1;
    let mut f = Array2::zeros((batch, dirs * out));
    for d in 0..dirs {
        f.slice_mut(s![.., d * out..(d + 1) * out])
            .assign(&h_n.index_axis(Axis(0), top + d));
    }
    f
}

/// `dL/dh_n` `[L·D, B, H_out]` from the gradient on the dense layer's input `[B, F]`: the top
/// layer's directions get their parts, the layers below zero.
pub(crate) fn spread_features(
    config: &ClassifierConfig,
    d_features: ArrayView2<'_, f32>,
) -> Array3<f32> {
    let c = &config.lstm;
    let (dirs, out) = (c.num_directions(), c.output_size());
    let top = (c.num_layers - 1) * dirs;
    let batch = d_features.nrows();
    let mut dh_n = Array3::zeros((c.num_layers * dirs, batch, out));
    for d in 0..dirs {
        dh_n.index_axis_mut(Axis(0), top + d)
            .assign(&d_features.slice(s![.., d * out..(d + 1) * out]));
    }
    dh_n
}
