//! Training on the CPU: the reference LSTM, the dense head and the optimizers in ndarray.

use ndarray::{Array2, Array3, ArrayView3, Axis};

use crate::cpu::adam::adam;
use crate::cpu::cross_entropy::cross_entropy;
use crate::cpu::grad_norm::{clip_scale, grad_norm};
use crate::cpu::isa::Isa;
use crate::cpu::lstm::{
    BackwardScratch, CpuTape, ForwardScratch, backward_with, forward_into_tape, forward_states,
};
use crate::cpu::sgd::sgd;
use crate::data::SequenceDataset;
use crate::error::Result;
use crate::lstm::{GradRequest, Upstream};
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
            gradients: None,
        })
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
        let config = self.weights.config();
        crate::lstm::check_input(&config.lstm, &x, None)?;
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
        Ok(self.head(h_n.index_axis(Axis(0), config.lstm.num_layers - 1)))
    }

    /// Logits `[B, C]` of the top layer's last hidden state `h_last` `[B, H]`.
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
    /// Clips `grads` by their global norm (when configured) and takes one optimizer step.
    fn clip_and_update(&mut self, grads: &ClassifierWeights) {
        let scale = match self.config.clip_norm {
            Some(max) => clip_scale(
                grad_norm(grads.tensors().into_iter().filter_map(|t| t.1)),
                max,
            ),
            None => 1.0,
        };
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
            match (&self.config.optimizer, moments.as_mut_slice()) {
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
    fn step(
        &mut self,
        x: ArrayView3<'_, f32>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        let config = self.weights.config();
        check_batch(&config, &x, labels)?;
        let (layers, batch, hidden) = (
            config.lstm.num_layers,
            labels.len(),
            config.lstm.hidden_size,
        );

        // Forward: LSTM, dense head on the top layer's last hidden state, loss.
        let (h_n, _) =
            forward_into_tape(self.isa, &self.weights.lstm, x, None, &mut self.tape, None)?;
        let h_last = h_n.index_axis(Axis(0), layers - 1);
        let logits = self.head(h_last);
        let ce = cross_entropy(logits.view(), &labels_u32(labels))?;

        // Backward: head, then the LSTM from dL/dh_n of the top layer.
        let mut grads = ClassifierWeights::zeros(config);
        grads.fc_weight = ce.dlogits.t().dot(&h_last);
        grads.fc_bias = ce.dlogits.sum_axis(Axis(0));
        let mut dh_n = Array3::zeros((layers, batch, hidden));
        dh_n.index_axis_mut(Axis(0), layers - 1)
            .assign(&ce.dlogits.dot(&self.weights.fc_weight));
        let upstream = Upstream {
            dh_n: Some(dh_n),
            ..Default::default()
        };
        let g = backward_with(
            self.isa,
            &self.weights.lstm,
            &self.tape,
            &upstream,
            GradRequest::WEIGHTS,
            &mut self.scratch,
        )?;
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
            let logits = self.logits(x.view())?;
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
}
