//! What a training device does, so the training loop runs the same on the CPU and the GPU.

use ndarray::ArrayView3;

use crate::data::SequenceDataset;
use crate::error::{Error, Result};
use crate::lstm::Dropout;
use crate::optim::TrainConfig;
use crate::train::classifier::{ClassifierConfig, ClassifierWeights};
use crate::train::metrics::Metrics;
use crate::train::optimizer_state::OptimizerState;

/// One device's training step and evaluation of a [`ClassifierWeights`] model.
pub trait Trainer {
    /// One optimisation step on `x` `[B, T, I]` with `labels` `[B]` (each `< C`): forward,
    /// loss, backward, clipping, update. Returns the batch's metrics when `report` is set (the
    /// GPU path reads them back only then).
    fn step(
        &mut self,
        x: ArrayView3<'_, f32>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>> {
        self.step_lengths(x, None, labels, report)
    }

    /// [`Trainer::step`] on sequences `lengths` `[B]` long (each in `1..=T`; all `T` when
    /// `None`): the classifier reads each one's state at its own last step.
    fn step_lengths(
        &mut self,
        x: ArrayView3<'_, f32>,
        lengths: Option<&[usize]>,
        labels: &[u8],
        report: bool,
    ) -> Result<Option<Metrics>>;

    /// Loss and accuracy over all of `data`, in batches of `batch` examples.
    fn evaluate(&mut self, data: &SequenceDataset, batch: usize) -> Result<Metrics>;

    /// The current parameters.
    fn weights(&self) -> Result<ClassifierWeights>;

    /// The optimizer's state (for a checkpoint).
    fn optimizer_state(&self) -> Result<OptimizerState>;

    /// The training configuration.
    fn config(&self) -> &TrainConfig;

    /// Where it runs, in words.
    fn device(&self) -> String;

    /// The dropout between the LSTM's layers in training steps, if any (step `s` draws the
    /// masks of pass `s`).
    fn dropout(&self) -> Option<Dropout>;
}

/// Checks a batch against the model: `x` `[B, T, I]` with `B = labels.len() > 0`, every label
/// below `C`.
pub(crate) fn check_batch(
    config: &ClassifierConfig,
    x: &ArrayView3<'_, f32>,
    labels: &[u8],
) -> Result<()> {
    let s = x.shape();
    crate::shape::expect_nonzero("x", s, &["batch", "seq", "input"])?;
    crate::shape::expect_shape("x", s, &[labels.len(), s[1], config.lstm.input_size])?;
    if let Some(&bad) = labels.iter().find(|&&l| l as usize >= config.classes) {
        return Err(Error::Data(format!(
            "label {bad} is out of range for {} classes",
            config.classes
        )));
    }
    Ok(())
}

/// Checks a data set against the model (features and classes).
pub(crate) fn check_dataset(config: &ClassifierConfig, data: &SequenceDataset) -> Result<()> {
    if data.features() != config.lstm.input_size {
        return Err(Error::Shape {
            tensor: format!("{} inputs", data.name),
            expected: vec![data.len(), data.seq_len(), config.lstm.input_size],
            actual: vec![data.len(), data.seq_len(), data.features()],
        });
    }
    if data.num_classes > config.classes {
        return Err(Error::Data(format!(
            "{} has {} classes, the model {}",
            data.name, data.num_classes, config.classes
        )));
    }
    Ok(())
}

/// Labels as the loss kernels take them.
pub(crate) fn labels_u32(labels: &[u8]) -> Vec<u32> {
    labels.iter().map(|&l| l as u32).collect()
}
