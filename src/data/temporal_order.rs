//! The "temporal order" task: Hochreiter & Schmidhuber (1997), *Long Short-Term Memory*,
//! experiment 6a.
//!
//! The task shows what an LSTM is for: keeping information across long time lags among
//! irrelevant input. Each sequence is a string over an alphabet of eight symbols
//! `{a, b, c, d, X, Y, B, E}` ([`SYMBOLS`]), one-hot encoded (`F = 8`):
//!
//! - it starts with `B` (position 0) and ends with `E`;
//! - at a random position `t1` in `[10, 20]` and another `t2` in `[50, 60]` (both inclusive,
//!   counted from the `B`) it holds `X` or `Y`;
//! - every other element is a random distractor from `{a, b, c, d}`;
//! - its length is random in `[100, 110]` (inclusive).
//!
//! The class is the order of the two relevant symbols: `XX` = 0, `XY` = 1, `YX` = 2, `YY` = 3
//! ([`CLASS_NAMES`]). A network must remember the first symbol for some 40 steps and both for
//! some 50 more, ignoring about a hundred distractors, before it sees the `E` and answers.
//!
//! Sequences of different lengths share one `[N, T, F]` array with `T` the longest possible length
//! (`max_len`, 110 by default): each sequence starts at step 0 and is followed by all-zero
//! padding, and the data set records every sequence's length
//! ([`SequenceDataset::lengths`]). An LSTM given the lengths stops each row at its `E`, as
//! PyTorch's packed sequences do, and the classifier reads the hidden state there.
//!
//! For example, with the default configuration [`decode`] renders one sequence of class `YX`
//! (label 2) as something like
//!
//! ```text
//! Bcadbcdabcda Y dbacb ... dca X abdcb ... cadbE
//! ```
//!
//! (spaces and elisions added here).

use ndarray::{Array3, ArrayView1, ArrayView2};

use super::SequenceDataset;
use crate::rng::Rng;
use crate::{Error, Result};

/// The alphabet in one-hot index order: feature `i` of a timestep is 1 for symbol `SYMBOLS[i]`.
/// `a`-`d` are distractors, `X` and `Y` the relevant symbols, `B` and `E` the first and last.
pub const SYMBOLS: [char; 8] = ['a', 'b', 'c', 'd', 'X', 'Y', 'B', 'E'];

/// The number of features per timestep, `F = SYMBOLS.len()`.
pub const NUM_SYMBOLS: usize = SYMBOLS.len();

/// The number of classes.
pub const NUM_CLASSES: usize = 4;

/// The class names in label order: the two relevant symbols in the order they occur.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = ["XX", "XY", "YX", "YY"];

/// One-hot indices into [`SYMBOLS`].
const DISTRACTORS: usize = 4;
const X: usize = 4;
const Y: usize = 5;
const BEGIN: usize = 6;
const END: usize = 7;

/// The random ranges of a temporal-order data set; all ranges are inclusive and positions are
/// counted from the `B` at position 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemporalOrderConfig {
    /// The shortest sequence length, `B` and `E` included.
    pub min_len: usize,
    /// The longest sequence length; it is also the padded length `T` of the data set.
    pub max_len: usize,
    /// The range `(lo, hi)` of the position of the first relevant symbol.
    pub t1: (usize, usize),
    /// The range `(lo, hi)` of the position of the second relevant symbol.
    pub t2: (usize, usize),
}

impl Default for TemporalOrderConfig {
    /// The paper's setting: lengths 100..=110, `t1` in 10..=20, `t2` in 50..=60.
    fn default() -> Self {
        TemporalOrderConfig {
            min_len: 100,
            max_len: 110,
            t1: (10, 20),
            t2: (50, 60),
        }
    }
}

impl TemporalOrderConfig {
    /// Checks that the ranges are consistent: each range is non-empty (`lo <= hi`,
    /// `min_len <= max_len`), the first relevant position comes after the `B` (`t1.0 >= 1`), the
    /// whole `t1` range precedes the `t2` range (`t1.1 < t2.0`), and the `t2` range ends before the
    /// `E` of the shortest sequence (`min_len >= t2.1 + 2`). Returns [`Error::Config`] otherwise.
    pub fn validate(&self) -> Result<()> {
        let fail = |reason: String| Err(Error::config("temporal-order config", reason));
        let &TemporalOrderConfig {
            min_len,
            max_len,
            t1,
            t2,
        } = self;
        if min_len > max_len {
            return fail(format!("min_len {min_len} exceeds max_len {max_len}"));
        }
        if t1.0 > t1.1 {
            return fail(format!("the t1 range {t1:?} is empty"));
        }
        if t2.0 > t2.1 {
            return fail(format!("the t2 range {t2:?} is empty"));
        }
        if t1.0 == 0 {
            return fail("t1 cannot be position 0, which holds the B".to_string());
        }
        if t1.1 >= t2.0 {
            return fail(format!(
                "the t1 range {t1:?} must end before the t2 range {t2:?} starts"
            ));
        }
        // `t2.1 + 2` overflows only for absurd ranges, which are rejected like any other too short.
        match t2.1.checked_add(2) {
            Some(needed) if min_len >= needed => Ok(()),
            _ => fail(format!(
                "min_len {min_len} leaves no room for t2 up to {} followed by the E (need at least {})",
                t2.1,
                t2.1.saturating_add(2)
            )),
        }
    }
}

/// Generates `n` sequences, deterministically from `seed`.
///
/// The result is named `"temporal-order"`; its `inputs` are `[n, config.max_len, 8]`, each row a
/// one-hot sequence from step 0 to its `E`, then zero padding, with its length in `lengths`, and
/// its labels lie in `0..4` (see the [module documentation](self)). Returns [`Error::Config`] when the configuration
/// is invalid (see [`TemporalOrderConfig::validate`]), `n` is zero or the array would not fit in
/// memory.
pub fn generate(config: &TemporalOrderConfig, n: usize, seed: u64) -> Result<SequenceDataset> {
    generate_with(config, n, &mut Rng::new(seed), "temporal-order")
}

/// Generates a training set of `n_train` and a test set of `n_test` sequences (named
/// `"temporal-order train"` and `"temporal-order test"`), laid out as by [`generate`].
///
/// The two sets are drawn from two independent streams derived from `seed`, so both are
/// reproducible from it and each depends only on `seed` and its own size: the test set is the same
/// whatever `n_train` is.
pub fn train_test(
    config: &TemporalOrderConfig,
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Result<(SequenceDataset, SequenceDataset)> {
    let mut streams = Rng::new(seed);
    let mut train_rng = Rng::new(streams.next_u64());
    let mut test_rng = Rng::new(streams.next_u64());
    let train = generate_with(config, n_train, &mut train_rng, "temporal-order train")?;
    let test = generate_with(config, n_test, &mut test_rng, "temporal-order test")?;
    Ok((train, test))
}

/// Renders one sequence (`[T, 8]`, a row of a data set's `inputs`) back to its symbols: one
/// character of [`SYMBOLS`] per one-hot timestep, nothing for an all-zero (padding) timestep, and
/// `?` for a timestep that is neither.
///
/// ```
/// use lstm_wgpu::data::temporal_order::{TemporalOrderConfig, decode, generate};
/// use ndarray::Axis;
///
/// let data = generate(&TemporalOrderConfig::default(), 1, 7).unwrap();
/// let text = decode(data.inputs.index_axis(Axis(0), 0));
/// assert!(text.starts_with('B') && text.ends_with('E'));
/// assert!((100..=110).contains(&text.len()));
/// ```
pub fn decode(seq: ArrayView2<f32>) -> String {
    seq.outer_iter()
        .filter(|step| step.iter().any(|&v| v != 0.0))
        .map(symbol_of)
        .collect()
}

/// The symbol of a non-zero timestep, `?` unless it is exactly one-hot over [`SYMBOLS`].
fn symbol_of(step: ArrayView1<f32>) -> char {
    if step.len() != NUM_SYMBOLS {
        return '?';
    }
    let mut hot = step.iter().enumerate().filter(|&(_, &v)| v != 0.0);
    match (hot.next(), hot.next()) {
        (Some((i, &1.0)), None) => SYMBOLS[i],
        _ => '?',
    }
}

/// A uniform draw from the inclusive range `lo..=hi` (`lo <= hi`).
fn draw(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below(hi - lo + 1)
}

fn generate_with(
    config: &TemporalOrderConfig,
    n: usize,
    rng: &mut Rng,
    name: &str,
) -> Result<SequenceDataset> {
    config.validate()?;
    if n == 0 {
        return Err(Error::config(
            "temporal-order size",
            "at least one sequence is needed",
        ));
    }
    let t_max = config.max_len;
    if n.checked_mul(t_max)
        .and_then(|v| v.checked_mul(NUM_SYMBOLS))
        .and_then(|v| v.checked_mul(size_of::<f32>()))
        .is_none_or(|bytes| bytes > isize::MAX as usize)
    {
        return Err(Error::config(
            "temporal-order size",
            format!("{n} sequences of {t_max} steps do not fit in memory"),
        ));
    }

    let mut inputs = Array3::<f32>::zeros((n, t_max, NUM_SYMBOLS));
    let mut labels = Vec::with_capacity(n);
    let mut lengths = Vec::with_capacity(n);
    for mut seq in inputs.outer_iter_mut() {
        let len = draw(rng, config.min_len, config.max_len);
        let t1 = draw(rng, config.t1.0, config.t1.1);
        let t2 = draw(rng, config.t2.0, config.t2.1);
        let class = rng.below(NUM_CLASSES);
        let first = if class < 2 { X } else { Y };
        let second = if class.is_multiple_of(2) { X } else { Y };
        for pos in 0..len {
            let symbol = match pos {
                0 => BEGIN,
                p if p == len - 1 => END,
                p if p == t1 => first,
                p if p == t2 => second,
                _ => rng.below(DISTRACTORS),
            };
            seq[[pos, symbol]] = 1.0;
        }
        // `class < NUM_CLASSES = 4`, so the conversion cannot truncate.
        labels.push(class as u8);
        lengths.push(len);
    }
    SequenceDataset::new(name, inputs, labels, NUM_CLASSES)?.with_lengths(lengths)
}
