//! Hyper-parameters only: the update rule ([`Optimizer`], [`AdamConfig`]) and gradient clipping
//! ([`TrainConfig`]). The CPU twins (`cpu::adam`, `cpu::sgd`), the GPU kernels and the trainers
//! all read them from here; this module imports nothing of theirs.

use crate::error::{Error, Result};

/// Adam's hyper-parameters; `Default` is PyTorch's (lr 1e-3, β 0.9/0.999, ε 1e-8, no weight
/// decay).
///
/// With `weight_decay = λ > 0` this is AdamW (`torch.optim.AdamW`, decoupled weight decay): every
/// parameter, the classifier head's included, is first shrunk, `p ← p · (1 − lr·λ)`
/// ([`AdamConfig::decay_factor`]), then takes Adam's step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Decoupled weight decay `λ` (AdamW), finite and `≥ 0`; 0 is plain Adam.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// `(1 - β1^t, sqrt(1 - β2^t))` for step `t` (1-based), computed in f64 as PyTorch does on
    /// the host.
    pub fn bias_corrections(&self, step: u64) -> (f32, f32) {
        let t = step.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        (bc1 as f32, bc2.sqrt() as f32)
    }

    /// AdamW's shrinking factor `1 − lr·λ`, computed in f64 and rounded once, as PyTorch forms
    /// it on the host; exactly 1 without weight decay, so plain Adam's results do not change.
    pub fn decay_factor(&self) -> f32 {
        (1.0 - self.lr as f64 * self.weight_decay as f64) as f32
    }
}

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
            Optimizer::Adam(a) if !(a.weight_decay.is_finite() && a.weight_decay >= 0.0) => {
                Err(Error::config(
                    "weight decay",
                    format!("{} is not a finite number >= 0", a.weight_decay),
                ))
            }
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
