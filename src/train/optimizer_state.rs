//! The optimizer's state (for checkpoints); the hyper-parameters are in [`crate::optim`].

use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};

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

    /// Checks that the host copies of the parameters a trainer is about to make fit in host
    /// memory: `own` copies of its own (gradients, upload images, the weights themselves), plus
    /// the moments of `optimizer` when there is no `state` to resume (new ones are allocated).
    pub(crate) fn reserve_host(
        state: Option<&OptimizerState>,
        optimizer: &Optimizer,
        config: ClassifierConfig,
        own: usize,
    ) -> Result<()> {
        let what = "trainer state";
        let moments = if state.is_none() {
            optimizer.moment_names().len()
        } else {
            0
        };
        let bytes = config
            .parameter_bytes()?
            .checked_mul((own + moments) as u64)
            .ok_or_else(|| crate::host_memory::overflow(what))?;
        crate::host_memory::reserve(what, bytes)
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
