//! Hyper-parameters only: the update rule ([`Optimizer`], [`AdamConfig`]), the learning-rate
//! schedule ([`LrSchedule`]) and gradient clipping ([`TrainConfig`]). The CPU twins (`cpu::adam`,
//! `cpu::sgd`), the GPU kernels and the trainers all read them from here; this module imports
//! nothing of theirs.

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

    /// The same optimizer with learning rate `lr` (what a schedule sets for one step).
    pub fn with_lr(self, lr: f32) -> Self {
        match self {
            Optimizer::Sgd { momentum, .. } => Optimizer::Sgd { lr, momentum },
            Optimizer::Adam(a) => Optimizer::Adam(AdamConfig { lr, ..a }),
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

/// How the learning rate decays once the warm-up is over; `k` counts the steps since then.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LrDecay {
    /// It stays at the optimizer's learning rate: `d(k) = 1`.
    #[default]
    Constant,
    /// Half a cosine from the optimizer's learning rate down to 0 (no floor) at `total_steps`,
    /// the run's length counted from its first step: `d(k) = (1 + cos(π·k / K)) / 2` with
    /// `K = total_steps − W`, and 0 from `k = K` on. The last step of the run (`k = K − 1`)
    /// still trains at `(1 − cos(π / K)) / 2` of the learning rate.
    Cosine {
        /// The run's length in optimizer steps, warm-up included; more than the warm-up.
        total_steps: u64,
    },
    /// Multiplied by `gamma` every `step_size` steps: `d(k) = gamma^⌊k / step_size⌋`.
    Step {
        /// Steps between two multiplications, at least 1.
        step_size: u64,
        /// The factor, in `(0, 1]`.
        gamma: f32,
    },
}

/// The learning rate of every step, as a multiple of the optimizer's: an optional linear
/// warm-up over the first `W` steps, then a [`LrDecay`].
///
/// The step that follows `s` completed steps (`s = 0` for the first; the optimizer state's
/// `step` when resuming) trains at `lr · f(s)`:
///
/// ```text
/// f(s) = (s + 1) / W     for s < W   (lr/W on the first step, the full lr on the W-th)
/// f(s) = d(s − W)        for s ≥ W   (the decay, d(0) = 1)
/// ```
///
/// That is `torch.optim.lr_scheduler.LambdaLR(optimizer, f)` stepped once after every
/// optimizer step (`s` is its `last_epoch`). Without warm-up, [`LrDecay::Cosine`] is
/// `CosineAnnealingLR(T_max=total_steps)` and [`LrDecay::Step`] is `StepLR(step_size, gamma)`;
/// with `W ≥ 2` the whole schedule is `SequentialLR([LinearLR(start_factor=1/W,
/// total_iters=W−1), <the decay>], milestones=[W])` (the cosine's `T_max` then being
/// `total_steps − W`). `f` is a pure function of the step, so a resumed run trains at exactly
/// the learning rates of the uninterrupted one.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LrSchedule {
    /// Warm-up steps `W`; 0 for none.
    pub warmup_steps: u64,
    /// The decay after the warm-up.
    pub decay: LrDecay,
}

impl LrSchedule {
    /// The optimizer's learning rate at every step (the default).
    pub fn constant() -> Self {
        LrSchedule::default()
    }

    /// Cosine decay to 0 over a run of `total_steps` steps.
    pub fn cosine(total_steps: u64) -> Self {
        LrSchedule {
            warmup_steps: 0,
            decay: LrDecay::Cosine { total_steps },
        }
    }

    /// Multiplied by `gamma` every `step_size` steps.
    pub fn step(step_size: u64, gamma: f32) -> Self {
        LrSchedule {
            warmup_steps: 0,
            decay: LrDecay::Step { step_size, gamma },
        }
    }

    /// The same schedule after a linear warm-up over `warmup_steps` steps.
    pub fn with_warmup(self, warmup_steps: u64) -> Self {
        LrSchedule {
            warmup_steps,
            ..self
        }
    }

    /// The decay's name: `constant`, `cosine` or `step`.
    pub fn name(&self) -> &'static str {
        match self.decay {
            LrDecay::Constant => "constant",
            LrDecay::Cosine { .. } => "cosine",
            LrDecay::Step { .. } => "step",
        }
    }

    /// `f(step)`: the multiple of the learning rate for the step that follows `step` completed
    /// steps, in f64 (as PyTorch's schedulers compute it).
    pub fn factor(&self, step: u64) -> f64 {
        let w = self.warmup_steps;
        if step < w {
            return (step + 1) as f64 / w as f64;
        }
        let k = step - w;
        match self.decay {
            LrDecay::Constant => 1.0,
            LrDecay::Cosine { total_steps } => {
                let n = total_steps.saturating_sub(w);
                if k >= n {
                    0.0
                } else {
                    0.5 * (1.0 + (std::f64::consts::PI * k as f64 / n as f64).cos())
                }
            }
            LrDecay::Step { step_size, gamma } => {
                let times = k / step_size.max(1);
                (gamma as f64).powi(times.min(i32::MAX as u64) as i32)
            }
        }
    }

    /// The learning rate of the step that follows `step` completed steps, for an optimizer
    /// learning rate `lr`: `lr · f(step)`, in f64 and rounded once. A constant schedule returns
    /// `lr` itself.
    pub fn lr_at(&self, lr: f32, step: u64) -> f32 {
        (lr as f64 * self.factor(step)) as f32
    }

    /// Rejects a cosine that ends within its warm-up, a step size of 0 and a `gamma` outside
    /// `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        match self.decay {
            LrDecay::Constant => Ok(()),
            LrDecay::Cosine { total_steps } if total_steps <= self.warmup_steps => {
                Err(Error::config(
                    "learning-rate schedule",
                    format!(
                        "a cosine over {total_steps} steps leaves no step after a warm-up of {}",
                        self.warmup_steps
                    ),
                ))
            }
            LrDecay::Cosine { .. } => Ok(()),
            LrDecay::Step { step_size: 0, .. } => Err(Error::config(
                "learning-rate schedule",
                "a step size of 0 steps",
            )),
            LrDecay::Step { gamma, .. } if !(gamma > 0.0 && gamma <= 1.0) => Err(Error::config(
                "learning-rate schedule",
                format!("gamma {gamma} is outside (0, 1]"),
            )),
            LrDecay::Step { .. } => Ok(()),
        }
    }
}

/// In words, for logs: `constant`, `cosine to 0 at step 10000`, `step x0.5 every 1000 steps`,
/// each followed by `after a 500-step warm-up` when there is one.
impl std::fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decay {
            LrDecay::Constant => write!(f, "constant")?,
            LrDecay::Cosine { total_steps } => write!(f, "cosine to 0 at step {total_steps}")?,
            LrDecay::Step { step_size, gamma } => {
                write!(f, "step x{gamma} every {step_size} steps")?
            }
        }
        if self.warmup_steps > 0 {
            write!(f, " after a {}-step warm-up", self.warmup_steps)?;
        }
        Ok(())
    }
}

/// How to train: the update rule, its learning-rate schedule and optional clipping of the
/// global gradient norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// The update rule; its learning rate is the one the schedule multiplies.
    pub optimizer: Optimizer,
    /// When set, gradients are scaled so their global L2 norm is at most this
    /// (`torch.nn.utils.clip_grad_norm_`).
    pub clip_norm: Option<f32>,
    /// The learning rate of each step ([`LrSchedule::constant`] keeps the optimizer's).
    pub schedule: LrSchedule,
}

impl TrainConfig {
    /// Rejects out-of-range settings.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate()?;
        self.schedule.validate()?;
        match self.clip_norm {
            Some(c) if !(c.is_finite() && c > 0.0) => Err(Error::config(
                "clip norm",
                format!("{c} is not a positive number"),
            )),
            _ => Ok(()),
        }
    }

    /// The scheduled learning rate of the step that follows `step` completed steps
    /// ([`LrSchedule::lr_at`] of the optimizer's).
    pub fn lr_at(&self, step: u64) -> f32 {
        self.schedule.lr_at(self.optimizer.lr(), step)
    }

    /// The update rule of the step that follows `step` completed steps: the optimizer with its
    /// scheduled learning rate ([`TrainConfig::lr_at`]). Both trainers update with it.
    pub fn optimizer_at(&self, step: u64) -> Optimizer {
        self.optimizer.with_lr(self.lr_at(step))
    }
}
