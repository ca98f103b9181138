//! Loss and accuracy over some examples.

/// Sums over the examples seen; combine batches with [`Metrics::add`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Sum of the per-example cross-entropy.
    pub loss_sum: f64,
    /// Examples whose largest logit is the label.
    pub correct: usize,
    /// Examples counted.
    pub count: usize,
}

impl Metrics {
    /// Mean cross-entropy (what `nn.CrossEntropyLoss` reports for a batch).
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }

    /// Fraction classified correctly.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }

    /// Adds another batch's sums.
    pub fn add(&mut self, other: Metrics) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.count += other.count;
    }
}
