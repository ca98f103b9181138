//! Optimizer choice, gradient clipping, and the optimizer's state (for checkpoints).

use crate::cpu::adam::AdamConfig;
use crate::error::{Error, Result};
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};

/// Which update rule, with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Gradient descent, with heavy-ball momentum when `momentum > 0` (`torch.optim.SGD`).
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum `μ` in `[0, 1)`; 0 is plain gradient descent.
        momentum: f32,
    },
    /// Adam (`torch.optim.Adam`).
    Adam(AdamConfig),
}

impl Optimizer {
    /// Adam with PyTorch's defaults and learning rate `lr`.
    pub fn adam(lr: f32) -> Self {
        Optimizer::Adam(AdamConfig {
            lr,
            ..AdamConfig::default()
        })
    }

    /// Short name: `sgd` or `adam`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam(_) => "adam",
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd { lr, .. } => *lr,
            Optimizer::Adam(a) => a.lr,
        }
    }

    /// Names of the per-parameter state tensors, as PyTorch's optimizers call them.
    pub fn moment_names(&self) -> &'static [&'static str] {
        match self {
            Optimizer::Sgd { .. } => &["momentum_buffer"],
            Optimizer::Adam(_) => &["exp_avg", "exp_avg_sq"],
        }
    }

    /// Rejects hyper-parameters outside their ranges.
    pub fn validate(&self) -> Result<()> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::config(
                "learning rate",
                format!("{lr} is not a positive number"),
            ));
        }
        match self {
            Optimizer::Sgd { momentum, .. } if !(0.0..1.0).contains(momentum) => Err(
                Error::config("momentum", format!("{momentum} is outside [0, 1)")),
            ),
            Optimizer::Adam(a)
                if !(0.0..1.0).contains(&a.beta1) || !(0.0..1.0).contains(&a.beta2) =>
            {
                Err(Error::config(
                    "Adam betas",
                    format!("({}, {}) outside [0, 1)", a.beta1, a.beta2),
                ))
            }
            Optimizer::Adam(a) if a.eps.is_nan() || a.eps <= 0.0 => Err(Error::config(
                "Adam eps",
                format!("{} is not positive", a.eps),
            )),
            _ => Ok(()),
        }
    }
}

/// How to train: the update rule and optional clipping of the global gradient norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// The update rule.
    pub optimizer: Optimizer,
    /// When set, gradients are scaled so their global L2 norm is at most this
    /// (`torch.nn.utils.clip_grad_norm_`).
    pub clip_norm: Option<f32>,
}

impl TrainConfig {
    /// Rejects out-of-range settings.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        match self.clip_norm {
            Some(c) if !(c.is_finite() && c > 0.0) => Err(Error::config(
                "clip norm",
                format!("{c} is not a positive number"),
            )),
            _ => Ok(()),
        }
    }
}

/// The optimizer's state: steps taken and one tensor set per moment
/// ([`Optimizer::moment_names`]), shaped like the parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Per-parameter state, in the order of [`Optimizer::moment_names`].
    pub moments: Vec<ClassifierWeights>,
}

impl OptimizerState {
    /// Fresh state (step 0, zero moments).
    pub fn new(optimizer: &Optimizer, config: ClassifierConfig) -> Self {
        OptimizerState {
            step: 0,
            moments: optimizer
                .moment_names()
                .iter()
                .map(|_| ClassifierWeights::zeros(config))
                .collect(),
        }
    }

    /// `state` checked against `optimizer` and `config` when resuming, else fresh state.
    pub fn resume_or_new(
        state: Option<OptimizerState>,
        optimizer: &Optimizer,
        config: ClassifierConfig,
    ) -> Result<Self> {
        match state {
            Some(s) => {
                s.validate(optimizer, config)?;
                Ok(s)
            }
            None => Ok(OptimizerState::new(optimizer, config)),
        }
    }

    /// Checks that the state fits `optimizer` and a model of `config`.
    pub fn validate(&self, optimizer: &Optimizer, config: ClassifierConfig) -> Result<()> {
        if self.moments.len() != optimizer.moment_names().len() {
            return Err(Error::config(
                "optimizer state",
                format!(
                    "{} moment tensors for {}, which keeps {}",
                    self.moments.len(),
                    optimizer.name(),
                    optimizer.moment_names().len()
                ),
            ));
        }
        for m in &self.moments {
            m.validate()?;
            if m.config() != config {
                return Err(Error::config(
                    "optimizer state",
                    "moments shaped for another model",
                ));
            }
        }
        Ok(())
    }
}
