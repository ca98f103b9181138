//! The training loop: batches in a reproducible order, a step each, evaluation at the end of
//! every epoch, and a callback that sees everything (to print, log, plot or checkpoint).

use ndarray::Array3;

use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::train::metrics::Metrics;
use crate::train::schedule::BatchOrder;
use crate::train::trainer::Trainer;

/// How long and in what order to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Total optimizer steps (a resumed run continues up to this count).
    pub steps: u64,
    /// Examples per step.
    pub batch_size: usize,
    /// Seed of the batch order.
    pub seed: u64,
    /// Report the minibatch loss and accuracy every this many steps (and at the first and last).
    pub display_step: u64,
    /// Examples per evaluation batch.
    pub eval_batch: usize,
}

/// What happened, for the callback of [`fit`]. Steps count from 1, epochs from 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A step finished; `metrics` are its minibatch's, present on display steps.
    Step {
        /// Steps done.
        step: u64,
        /// The epoch the step belongs to.
        epoch: u64,
        /// Minibatch loss and accuracy (display steps only).
        metrics: Option<Metrics>,
    },
    /// An epoch ended (or training stopped mid-epoch at its last step).
    EpochEnd {
        /// Steps done.
        step: u64,
        /// The epoch that ended.
        epoch: u64,
        /// Loss and accuracy on the test set, when one was given.
        test: Option<Metrics>,
    },
}

/// Trains from step `start` (0 for a new run, a checkpoint's step to resume) up to
/// `plan.steps`, calling `on` after every step and at every epoch's end.
///
/// A reported loss (a display step's minibatch, or an epoch's test set) that is not finite stops
/// training with [`Error::NonFinite`] before `on` sees it, so a callback that saves checkpoints
/// at epoch ends never saves a diverged model.
pub fn fit(
    trainer: &mut dyn Trainer,
    train: &SequenceDataset,
    test: Option<&SequenceDataset>,
    plan: &Plan,
    start: u64,
    on: &mut dyn FnMut(Event, &mut dyn Trainer) -> Result<()>,
) -> Result<()> {
    let mut order = BatchOrder::new(train.len(), plan.batch_size, plan.seed)?;
    let per_epoch = order.steps_per_epoch();
    let mut x = Array3::zeros((plan.batch_size, train.seq_len(), train.features()));
    let mut labels = Vec::with_capacity(plan.batch_size);
    let display = plan.display_step.max(1);
    for step in start..plan.steps {
        train.gather(order.batch(step), &mut x, &mut labels)?;
        let done = step + 1;
        let report = done == 1 || done % display == 0 || done == plan.steps;
        let lengths = train.lengths_of(order.batch(step));
        let metrics = trainer.step_lengths(x.view(), lengths.as_deref(), &labels, report)?;
        if let Some(m) = &metrics {
            finite_loss("minibatch loss", done, m)?;
        }
        let epoch = step / per_epoch + 1;
        on(
            Event::Step {
                step: done,
                epoch,
                metrics,
            },
            trainer,
        )?;
        if done % per_epoch == 0 || done == plan.steps {
            let test = match test {
                Some(t) => Some(trainer.evaluate(t, plan.eval_batch)?),
                None => None,
            };
            if let Some(m) = &test {
                finite_loss("test loss", done, m)?;
            }
            on(
                Event::EpochEnd {
                    step: done,
                    epoch,
                    test,
                },
                trainer,
            )?;
        }
    }
    Ok(())
}

/// [`Error::NonFinite`] naming `what` and the step when the loss of `m` is NaN or infinite.
fn finite_loss(what: &str, step: u64, m: &Metrics) -> Result<()> {
    let loss = m.loss();
    if loss.is_finite() {
        return Ok(());
    }
    Err(Error::NonFinite {
        tensor: format!("{what} at step {step}"),
        index: Vec::new(),
        value: loss,
    })
}
