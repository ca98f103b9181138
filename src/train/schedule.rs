//! Which examples each training step sees.
//!
//! Epoch `e` visits the training set in a permutation drawn from `(seed, e)`; step `s` takes
//! batch `s mod S` of epoch `s / S`, with `S = ⌊N / B⌋` steps per epoch (the few examples left
//! over are skipped that epoch; they come up in other positions in the next). The batch of a step
//! depends on nothing but the seed and the step number, so a run resumed from a checkpoint sees
//! exactly the batches the uninterrupted run would have.

use crate::error::{Error, Result};
use crate::rng::Rng;

/// The batch order of one training set.
#[derive(Debug, Clone)]
pub struct BatchOrder {
    examples: usize,
    batch: usize,
    seed: u64,
    epoch: Option<(u64, Vec<usize>)>,
}

impl BatchOrder {
    /// The order of `examples` examples in batches of `batch`.
    pub fn new(examples: usize, batch: usize, seed: u64) -> Result<Self> {
        if batch == 0 || batch > examples {
            return Err(Error::config(
                "batch size",
                format!("{batch} does not fit a training set of {examples} examples"),
            ));
        }
        Ok(BatchOrder {
            examples,
            batch,
            seed,
            epoch: None,
        })
    }

    /// Steps per epoch, `⌊N / B⌋`.
    pub fn steps_per_epoch(&self) -> u64 {
        (self.examples / self.batch) as u64
    }

    /// The epoch (0-based) that step `step` (0-based) belongs to.
    pub fn epoch_of(&self, step: u64) -> u64 {
        step / self.steps_per_epoch()
    }

    /// The example indices of step `step` (0-based).
    pub fn batch(&mut self, step: u64) -> &[usize] {
        let epoch = self.epoch_of(step);
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.examples).collect();
            Rng::new(self.seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03)).shuffle(&mut order);
            self.epoch = Some((epoch, order));
        }
        let start = (step % self.steps_per_epoch()) as usize * self.batch;
        match &self.epoch {
            Some((_, order)) => &order[start..start + self.batch],
            None => &[],
        }
    }
}
