//! Softmax cross-entropy with integer labels, twin of `shaders/cross_entropy.wgsl`.
//!
//! ```text
//! p[b, :]       = softmax(logits[b, :])
//! loss_b        = logsumexp(logits[b, :]) - logits[b, label_b]
//! dlogits[b, c] = (p[b, c] - [c = label_b]) / n        n = rows with a valid label (< C)
//! ```
//! A label `>= C` marks a padding row (PyTorch's `ignore_index`): no loss, zero gradient. The
//! loss PyTorch's `nn.CrossEntropyLoss` reports is `loss_sum / n`.
//!
//! A valid row with a NaN or infinite logit has loss NaN and a NaN gradient row, and is not
//! counted correct (PyTorch gives NaN or ±∞ there; either way not finite).

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::real::Real;

/// Result of [`cross_entropy`] for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossEntropy<F = f32> {
    /// `Σ_b loss_b` over valid rows.
    pub loss_sum: F,
    /// Valid rows whose largest logit (first one on ties) is the label.
    pub correct: usize,
    /// Valid rows, `n`.
    pub count: usize,
    /// `dL/dlogits` of the mean loss, `[B, C]`.
    pub dlogits: Array2<F>,
}

/// Loss, gradient and accuracy of `logits` `[B, C]` against `labels` `[B]`.
pub fn cross_entropy<F: Real>(
    logits: ArrayView2<'_, F>,
    labels: &[u32],
) -> Result<CrossEntropy<F>> {
    let (rows, classes) = logits.dim();
    if labels.len() != rows {
        return Err(Error::Shape {
            tensor: "labels".into(),
            expected: vec![rows],
            actual: vec![labels.len()],
        });
    }
    let count = labels.iter().filter(|&&l| (l as usize) < classes).count();
    let scale = F::one() / F::from_f64_lossy(count.max(1) as f64);
    let mut dlogits = Array2::zeros((rows, classes));
    let (mut loss_sum, mut correct) = (F::zero(), 0);
    for ((row, mut d), &label) in logits
        .rows()
        .into_iter()
        .zip(dlogits.rows_mut())
        .zip(labels)
    {
        let label = label as usize;
        if label >= classes {
            continue;
        }
        let (mut best, mut m) = (0, row[0]);
        for (c, &l) in row.iter().enumerate() {
            if l > m {
                (best, m) = (c, l);
            }
        }
        if !row.iter().all(|l| l.is_finite()) {
            d.fill(F::nan());
            loss_sum += F::nan();
            continue;
        }
        let s: F = row.iter().map(|&l| (l - m).exp()).sum();
        for (c, (&l, d)) in row.iter().zip(d.iter_mut()).enumerate() {
            let onehot = if c == label { F::one() } else { F::zero() };
            *d = ((l - m).exp() / s - onehot) * scale;
        }
        loss_sum += m + s.ln() - row[label];
        correct += usize::from(best == label);
    }
    Ok(CrossEntropy {
        loss_sum,
        correct,
        count,
        dlogits,
    })
}
