//! Data sets for sequence classification.
//!
//! Every data set is a [`SequenceDataset`]: `N` sequences of at most `T` timesteps with `F`
//! features per step, stored as one `[N, T, F]` row-major `f32` array, and one class label per
//! sequence; sequences shorter than `T` start at step 0 and have their length recorded. A
//! classifier reads a whole sequence and predicts the label from its last hidden state (at each
//! sequence's own last step).
//!
//! Two sources are provided:
//!
//! - [`idx`] reads the IDX files of MNIST and Fashion-MNIST (plain or gzip-compressed) and turns
//!   each 28x28 image into a sequence read row by row: `T = 28` timesteps of `F = 28` pixels,
//!   scaled to `[0, 1]`, ten classes. [`load_mnist_dir`] loads a directory holding the four
//!   standard files, such as [`FASHION_MNIST_DIR`].
//! - [`temporal_order`] generates the "temporal order" task of Hochreiter & Schmidhuber (1997),
//!   experiment 6a: two symbols placed far apart among random distractors, whose order is the
//!   class. It can only be solved by keeping information across long time lags, which is what an
//!   LSTM is for.

use ndarray::{Array3, Axis};

use crate::{Error, Result};

pub mod idx;
pub mod temporal_order;

pub use idx::{FASHION_MNIST_DIR, IdxArray, MnistSplit, load_mnist_dir, read_idx};

/// A labelled set of sequences for classification: `inputs` is `[N, T, F]` row-major `f32`
/// (`N` sequences, `T` timesteps, `F` features per step), `labels[n] < num_classes`, and, for
/// sequences of different lengths, `lengths[n]` in `1..=T` (sequence `n` uses steps
/// `0..lengths[n]`; the steps after it are padding).
///
/// Build one with [`SequenceDataset::new`], which checks these invariants; the fields are public
/// for reading, and code that changes them directly must keep the invariants itself.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceDataset {
    /// A short human-readable name (`"fashion-mnist train"`, `"temporal-order"`, ...).
    pub name: String,
    /// The sequences, `[N, T, F]` in standard (row-major) layout.
    pub inputs: Array3<f32>,
    /// One label per sequence, `labels.len() == N`, each `< num_classes`.
    pub labels: Vec<u8>,
    /// The number of classes; labels lie in `0..num_classes`.
    pub num_classes: usize,
    /// Each sequence's length `[N]`, each in `1..=T`; `None` when all are `T` steps long.
    pub lengths: Option<Vec<usize>>,
}

impl SequenceDataset {
    /// Wraps `inputs` (`[N, T, F]`) and `labels` (`[N]`) as a data set of `num_classes` classes.
    ///
    /// `inputs` is converted to standard layout if it is not already. Returns [`Error::Data`]
    /// when the set is empty (`N`, `T` or `F` is zero), when `labels.len() != N`, or when a label
    /// is `>= num_classes`.
    pub fn new(
        name: impl Into<String>,
        inputs: Array3<f32>,
        labels: Vec<u8>,
        num_classes: usize,
    ) -> Result<Self> {
        let name = name.into();
        let (n, t, f) = inputs.dim();
        if n == 0 || t == 0 || f == 0 {
            return Err(Error::Data(format!(
                "`{name}` is empty: inputs have shape [{n}, {t}, {f}] (sequences, timesteps, features)"
            )));
        }
        if labels.len() != n {
            return Err(Error::Data(format!(
                "`{name}` has {n} sequences but {} labels",
                labels.len()
            )));
        }
        if let Some((i, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &label)| usize::from(label) >= num_classes)
        {
            return Err(Error::Data(format!(
                "`{name}`: label {label} of sequence {i} is out of range for {num_classes} classes"
            )));
        }
        let inputs = if inputs.is_standard_layout() {
            inputs
        } else {
            inputs.as_standard_layout().into_owned()
        };
        Ok(SequenceDataset {
            name,
            inputs,
            labels,
            num_classes,
            lengths: None,
        })
    }

    /// The same data set with sequence `n` `lengths[n]` steps long (`[N]`, each in `1..=T`);
    /// [`Error::Shape`] for a slice of the wrong size, [`Error::SequenceLength`] naming the
    /// first length out of range.
    pub fn with_lengths(self, lengths: Vec<usize>) -> Result<Self> {
        crate::lstm::check_lengths(&lengths, self.len(), self.seq_len())?;
        Ok(SequenceDataset {
            lengths: Some(lengths),
            ..self
        })
    }

    /// The lengths of the examples `indices` (`None` when every sequence is `T` steps long).
    /// Indices must be in range (as [`SequenceDataset::gather`] checks).
    pub fn lengths_of(&self, indices: &[usize]) -> Option<Vec<usize>> {
        self.lengths
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect())
    }

    /// The number of sequences `N`.
    pub fn len(&self) -> usize {
        self.inputs.len_of(Axis(0))
    }

    /// Whether the set holds no sequence (never true for a set built by [`SequenceDataset::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of timesteps `T` of every sequence.
    pub fn seq_len(&self) -> usize {
        self.inputs.len_of(Axis(1))
    }

    /// The number of features `F` per timestep.
    pub fn features(&self) -> usize {
        self.inputs.len_of(Axis(2))
    }

    /// Copies the examples `indices` into `x` (`[indices.len(), T, F]`, row `b` receiving
    /// sequence `indices[b]`) and their labels into `labels` (cleared, then filled in the same
    /// order).
    ///
    /// Returns [`Error::Shape`] when `x` has the wrong shape and [`Error::Data`] when an index is
    /// out of range; in both cases `x` and `labels` are left untouched.
    pub fn gather(
        &self,
        indices: &[usize],
        x: &mut Array3<f32>,
        labels: &mut Vec<u8>,
    ) -> Result<()> {
        let expected = [indices.len(), self.seq_len(), self.features()];
        if x.shape() != expected {
            return Err(Error::Shape {
                tensor: "x".to_string(),
                expected: expected.to_vec(),
                actual: x.shape().to_vec(),
            });
        }
        if let Some((b, &i)) = indices.iter().enumerate().find(|&(_, &i)| i >= self.len()) {
            return Err(Error::Data(format!(
                "`{}`: index {i} (batch row {b}) is out of range for {} sequences",
                self.name,
                self.len()
            )));
        }
        for (mut row, &i) in x.outer_iter_mut().zip(indices) {
            row.assign(&self.inputs.index_axis(Axis(0), i));
        }
        labels.clear();
        labels.extend(indices.iter().map(|&i| self.labels[i]));
        Ok(())
    }
}
