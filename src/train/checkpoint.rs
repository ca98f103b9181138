//! Checkpoints: the model, the optimizer's state and the position in training, in one
//! safetensors file written atomically (temporary file, then rename).
//!
//! The model's tensors keep their PyTorch names (`weight_ih_l0`, ..., `fc.weight`, `fc.bias`), so
//! `load_state_dict(..., strict=False)` reads a checkpoint directly; the optimizer's tensors are
//! `optimizer.<state>.<name>` with PyTorch's state names (`exp_avg`, `exp_avg_sq`,
//! `momentum_buffer`). Everything else is string metadata: the optimizer's hyper-parameters
//! (`weight_decay` for Adam), the learning-rate schedule (`lr_schedule` = `constant`, `cosine`
//! or `step`, `warmup_steps`, and `lr_total_steps` or `lr_step_size` and `lr_gamma`), clipping,
//! the step, the step the run was planned to end at (`planned_steps`, when known), seed, batch
//! size and data set. A checkpoint written before weight decay and schedules existed has none of
//! their keys and loads as plain Adam at a constant learning rate; one written before
//! `planned_steps` existed loads without it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lstm::Dropout;
use crate::optim::{AdamConfig, LrDecay, LrSchedule, Optimizer, TrainConfig};
use crate::tensor_file::{self, TensorWriter};
use crate::train::classifier::ClassifierWeights;
use crate::train::optimizer_state::OptimizerState;

/// The format written. Version 2 added the learning-rate schedule, weight decay and dropout: a
/// reader of version 1 would silently train on without them, so it must refuse these files.
const FORMAT: &str = "lstm-wgpu checkpoint 2";
/// Formats read: version 1 files load with no schedule, no weight decay and no dropout.
const READABLE: [&str; 2] = ["lstm-wgpu checkpoint 1", FORMAT];

/// Everything needed to evaluate a model or continue training it.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The parameters.
    pub weights: ClassifierWeights,
    /// Optimizer and clipping.
    pub config: TrainConfig,
    /// Dropout between the LSTM's layers in training (its pass is not stored: step `s` draws
    /// pass `s`).
    pub dropout: Option<Dropout>,
    /// Optimizer state; `state.step` is the number of steps trained.
    pub state: OptimizerState,
    /// The step the run was planned to end at, when its writer knew it, so that a resumed run
    /// ends there too (a cosine schedule's end, `LrDecay::Cosine::total_steps`, is the same
    /// step in runs that plan one).
    pub planned_steps: Option<u64>,
    /// Seed of the batch order (see [`crate::train::schedule`]).
    pub seed: u64,
    /// Training batch size.
    pub batch_size: usize,
    /// Name of the training set.
    pub dataset: String,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically: a crash leaves the previous file intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = TensorWriter::new();
        self.weights.add_to(&mut w, "");
        for (name, m) in self
            .config
            .optimizer
            .moment_names()
            .iter()
            .zip(&self.state.moments)
        {
            m.add_to(&mut w, &format!("optimizer.{name}."));
        }
        w.meta("format", FORMAT);
        w.meta("step", self.state.step.to_string());
        if let Some(n) = self.planned_steps {
            w.meta("planned_steps", n.to_string());
        }
        w.meta("seed", self.seed.to_string());
        w.meta("batch_size", self.batch_size.to_string());
        w.meta("dataset", self.dataset.clone());
        w.meta("optimizer", self.config.optimizer.name());
        match self.config.optimizer {
            Optimizer::Sgd { lr, momentum } => {
                w.meta("lr", lr.to_string());
                w.meta("momentum", momentum.to_string());
            }
            Optimizer::Adam(a) => {
                w.meta("lr", a.lr.to_string());
                w.meta("beta1", a.beta1.to_string());
                w.meta("beta2", a.beta2.to_string());
                w.meta("eps", a.eps.to_string());
                w.meta("weight_decay", a.weight_decay.to_string());
            }
        }
        let schedule = &self.config.schedule;
        w.meta("lr_schedule", schedule.name());
        w.meta("warmup_steps", schedule.warmup_steps.to_string());
        match schedule.decay {
            LrDecay::Constant => {}
            LrDecay::Cosine { total_steps } => w.meta("lr_total_steps", total_steps.to_string()),
            LrDecay::Step { step_size, gamma } => {
                w.meta("lr_step_size", step_size.to_string());
                w.meta("lr_gamma", gamma.to_string());
            }
        }
        if let Some(c) = self.config.clip_norm {
            w.meta("clip_norm", c.to_string());
        }
        if let Some(d) = self.dropout {
            w.meta("dropout", d.p().to_string());
            w.meta("dropout_seed", d.seed.to_string());
        }
        w.write_atomic(path.as_ref())
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = tensor_file::read_file(path)?;
        let meta = tensor_file::metadata(&bytes)?;
        if !meta
            .get("format")
            .is_some_and(|f| READABLE.contains(&f.as_str()))
        {
            return Err(bad(
                path,
                format!("no \"format\": \"{FORMAT}\" in its metadata"),
            ));
        }
        let st = tensor_file::parse(&bytes)?;
        let weights = ClassifierWeights::from_safetensors(&st, "")?;
        let get = |key: &str| -> Result<&String> {
            meta.get(key)
                .ok_or_else(|| bad(path, format!("metadata `{key}` is missing")))
        };
        let num = |key: &str| -> Result<f64> {
            get(key)?
                .parse::<f64>()
                .map_err(|_| bad(path, format!("metadata `{key}` is not a number")))
        };
        let int = |key: &str| -> Result<u64> {
            get(key)?
                .parse::<u64>()
                .map_err(|_| bad(path, format!("metadata `{key}` is not a whole number")))
        };
        let float = |key: &str| -> Result<f32> {
            get(key)?
                .parse::<f32>()
                .map_err(|_| bad(path, format!("metadata `{key}` is not a number")))
        };
        let lr = num("lr")? as f32;
        let optimizer = match get("optimizer")?.as_str() {
            "sgd" => Optimizer::Sgd {
                lr,
                momentum: num("momentum")? as f32,
            },
            "adam" => Optimizer::Adam(AdamConfig {
                lr,
                beta1: num("beta1")? as f32,
                beta2: num("beta2")? as f32,
                eps: num("eps")? as f32,
                weight_decay: match meta.get("weight_decay") {
                    Some(_) => float("weight_decay")?,
                    None => 0.0,
                },
            }),
            other => return Err(bad(path, format!("unknown optimizer `{other}`"))),
        };
        let clip_norm = match meta.get("clip_norm") {
            Some(_) => Some(num("clip_norm")? as f32),
            None => None,
        };
        // Checkpoints from before dropout existed have none.
        let dropout = match meta.get("dropout") {
            Some(_) => Some(Dropout::new(num("dropout")? as f32, int("dropout_seed")?)?),
            None => None,
        };
        let decay = match meta.get("lr_schedule").map(String::as_str) {
            None | Some("constant") => LrDecay::Constant,
            Some("cosine") => LrDecay::Cosine {
                total_steps: int("lr_total_steps")?,
            },
            Some("step") => LrDecay::Step {
                step_size: int("lr_step_size")?,
                gamma: float("lr_gamma")?,
            },
            Some(other) => return Err(bad(path, format!("unknown lr_schedule `{other}`"))),
        };
        let schedule = LrSchedule {
            warmup_steps: match meta.get("warmup_steps") {
                Some(_) => int("warmup_steps")?,
                None => 0,
            },
            decay,
        };
        let moments = optimizer
            .moment_names()
            .iter()
            .map(|name| ClassifierWeights::from_safetensors(&st, &format!("optimizer.{name}.")))
            .collect::<Result<Vec<_>>>()?;
        let state = OptimizerState {
            step: int("step")?,
            moments,
        };
        let planned_steps = match meta.get("planned_steps") {
            Some(_) => Some(int("planned_steps")?),
            None => None,
        };
        let config = TrainConfig {
            optimizer,
            clip_norm,
            schedule,
        };
        config.validate()?;
        state.validate(&optimizer, weights.config())?;
        Ok(Checkpoint {
            weights,
            config,
            dropout,
            state,
            planned_steps,
            seed: int("seed")?,
            batch_size: int("batch_size")? as usize,
            dataset: get("dataset")?.clone(),
        })
    }
}
