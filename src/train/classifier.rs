//! The sequence classifier of the reference task: an LSTM whose last hidden state goes through a
//! dense layer to class logits.
//!
//! ```text
//! h_T    = [h_n[top, forward] | h_n[top, reverse]]   [B, F]  (the top layer's h_n)
//! logits = h_T · fc.weightᵀ + fc.bias                [B, C]
//! loss   = mean_b cross_entropy(logits_b, label_b)
//! ```
//! `F = D·H_out` features: the top layer's final hidden state, each direction's concatenated
//! when bidirectional (`H` for the plain LSTM). With sequences of different lengths, `h_n` is each
//! sequence's state at its own last step. In a safetensors file the LSTM keeps PyTorch's
//! `nn.LSTM` names (`weight_ih_l0`, ...) and the dense layer is `fc.weight` `[C, F]`, `fc.bias`
//! `[C]`, as `nn.Linear` stores them.

use std::path::Path;

use ndarray::{Array1, Array2, Ix1, Ix2};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::shape::{expect_nonzero, expect_shape};
use crate::tensor_file::{self, TensorWriter};
use crate::weights::{LstmConfig, LstmWeights};

/// Sizes of a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifierConfig {
    /// The LSTM's sizes.
    pub lstm: LstmConfig,
    /// Number of classes `C`.
    pub classes: usize,
}

impl ClassifierConfig {
    /// A checked configuration.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        classes: usize,
    ) -> Result<Self> {
        expect_nonzero("ClassifierConfig", &[classes], &["classes"])?;
        let config = ClassifierConfig {
            lstm: LstmConfig::new(input_size, hidden_size, num_layers)?,
            classes,
        };
        config.parameter_bytes()?;
        Ok(config)
    }

    /// A classifier on an LSTM of `lstm`'s sizes, for `classes` classes.
    pub fn with_lstm(lstm: LstmConfig, classes: usize) -> Result<Self> {
        expect_nonzero("ClassifierConfig", &[classes], &["classes"])?;
        let config = ClassifierConfig { lstm, classes };
        config.parameter_bytes()?;
        Ok(config)
    }

    /// Features the dense layer reads, `F = D·H_out` (see the module documentation).
    pub fn features(&self) -> usize {
        self.lstm.layer_output_size()
    }

    /// Parameters of the LSTM and the dense layer together.
    pub fn num_parameters(&self) -> usize {
        self.lstm.num_parameters() + self.classes * (self.features() + 1)
    }

    /// Bytes of one copy of the parameters in `f32` (the parameters, their gradients and each
    /// optimizer moment take this much each), or [`Error::HostMemory`] when that overflows.
    pub fn parameter_bytes(&self) -> Result<u64> {
        let what = "classifier parameters";
        // features + 1 cannot overflow: LstmConfig bounded the LSTM's parameters.
        let count = (self.features() + 1)
            .checked_mul(self.classes)
            .and_then(|fc| fc.checked_add(self.lstm.num_parameters()))
            .ok_or_else(|| crate::host_memory::overflow(what))?;
        crate::host_memory::bytes_of(what, count, 4)
    }
}

/// All parameters of a classifier (also used for their gradients and optimizer moments, which
/// have the same shapes).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierWeights {
    /// The LSTM, PyTorch layout.
    pub lstm: LstmWeights<f32>,
    /// `fc.weight`, `[C, F]` (`F = D·H_out`, [`ClassifierConfig::features`]).
    pub fc_weight: Array2<f32>,
    /// `fc.bias`, `[C]`.
    pub fc_bias: Array1<f32>,
}

impl ClassifierWeights {
    /// PyTorch's default initialisation, from `seed`: LSTM uniform in `±1/√H`, `nn.Linear` uniform
    /// in `±1/√F` for weight and bias (`F` its input features). With `forget_bias`, the forget
    /// gate's bias starts there (TensorFlow's `BasicLSTMCell` uses 1.0).
    pub fn init(config: ClassifierConfig, seed: u64, forget_bias: Option<f32>) -> Self {
        let mut lstm = LstmWeights::init_uniform(config.lstm, seed);
        if let Some(b) = forget_bias {
            // A model without biases has no forget bias to set, and keeps none.
            let _ = lstm.set_forget_bias(b);
        }
        let f = config.features();
        let k = 1.0 / (f as f64).sqrt();
        let mut rng = Rng::new(seed ^ 0x5eed_fc00_5eed_fc00);
        let fc_weight =
            Array2::from_shape_simple_fn((config.classes, f), || rng.uniform(-k, k) as f32);
        let fc_bias = Array1::from_shape_simple_fn(config.classes, || rng.uniform(-k, k) as f32);
        ClassifierWeights {
            lstm,
            fc_weight,
            fc_bias,
        }
    }

    /// Like [`ClassifierWeights::init`], but first checks that the parameters fit in host memory
    /// ([`crate::host_memory::reserve`]), so a size from a command line that cannot fit is an
    /// [`Error::HostMemory`] rather than an abort.
    pub fn try_init(config: ClassifierConfig, seed: u64, forget_bias: Option<f32>) -> Result<Self> {
        crate::host_memory::reserve("classifier parameters", config.parameter_bytes()?)?;
        Ok(Self::init(config, seed, forget_bias))
    }

    /// Zeros of the same shapes as `config` describes.
    pub fn zeros(config: ClassifierConfig) -> Self {
        ClassifierWeights {
            lstm: LstmWeights::zeros(config.lstm),
            fc_weight: Array2::zeros((config.classes, config.features())),
            fc_bias: Array1::zeros(config.classes),
        }
    }

    /// The sizes (taken from the tensors).
    pub fn config(&self) -> ClassifierConfig {
        ClassifierConfig {
            lstm: *self.lstm.config(),
            classes: self.fc_bias.len(),
        }
    }

    /// Checks every shape, and that every tensor is row-major (the optimizers walk them as
    /// flat slices).
    pub fn validate(&self) -> Result<()> {
        self.lstm.validate()?;
        let (c, f) = (self.fc_bias.len(), self.config().features());
        expect_nonzero("fc.bias", &[c], &["classes"])?;
        expect_shape("fc.weight", self.fc_weight.shape(), &[c, f])?;
        for (name, t) in self.tensors() {
            if t.is_none() {
                return Err(Error::config(
                    "tensor layout",
                    format!("{name} is not row-major"),
                ));
            }
        }
        Ok(())
    }

    /// Every tensor as `(PyTorch name, flat row-major values)` in a fixed order; `None` for a
    /// tensor that is not row-major.
    pub fn tensors(&self) -> Vec<(String, Option<&[f32]>)> {
        let mut out = Vec::new();
        out.extend(
            self.lstm
                .named_tensors()
                .into_iter()
                .map(|(name, view)| (name, view.to_slice())),
        );
        out.push(("fc.weight".into(), self.fc_weight.as_slice()));
        out.push(("fc.bias".into(), self.fc_bias.as_slice()));
        out
    }

    /// Every tensor's values, mutable, in the order of [`ClassifierWeights::tensors`]. Tensors
    /// that are not row-major are skipped ([`ClassifierWeights::validate`] rejects those).
    pub fn tensors_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out = Vec::new();
        out.extend(
            self.lstm
                .tensors_mut()
                .into_iter()
                .filter_map(|v| v.into_slice()),
        );
        out.extend(self.fc_weight.as_slice_mut());
        out.extend(self.fc_bias.as_slice_mut());
        out
    }

    /// Adds the tensors to a file being written, each name prefixed with `prefix`.
    pub(crate) fn add_to(&self, w: &mut TensorWriter, prefix: &str) {
        for (name, view) in self.lstm.named_tensors() {
            w.add(format!("{prefix}{name}"), view);
        }
        w.add(format!("{prefix}fc.weight"), self.fc_weight.view());
        w.add(format!("{prefix}fc.bias"), self.fc_bias.view());
    }

    /// Reads the tensors under `prefix` from a parsed safetensors file.
    pub(crate) fn from_safetensors(
        st: &safetensors::SafeTensors<'_>,
        prefix: &str,
    ) -> Result<Self> {
        let lstm = LstmWeights::<f32>::from_safetensors(st, prefix)?;
        let fc_weight = tensor_file::read_tensor::<f32>(st, &format!("{prefix}fc.weight"), None)?;
        let fc_weight = fc_weight
            .into_dimensionality::<Ix2>()
            .map_err(|_| Error::Shape {
                tensor: format!("{prefix}fc.weight"),
                expected: vec![0, lstm.config().layer_output_size()],
                actual: vec![],
            })?;
        let fc_bias = tensor_file::read_tensor::<f32>(st, &format!("{prefix}fc.bias"), None)?;
        let fc_bias = fc_bias
            .into_dimensionality::<Ix1>()
            .map_err(|_| Error::Shape {
                tensor: format!("{prefix}fc.bias"),
                expected: vec![fc_weight.nrows()],
                actual: vec![],
            })?;
        let w = ClassifierWeights {
            lstm,
            fc_weight,
            fc_bias,
        };
        w.validate()?;
        Ok(w)
    }

    /// Parses safetensors bytes (PyTorch names, see the module documentation).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_safetensors(&tensor_file::parse(bytes)?, "")
    }

    /// Loads a safetensors file (a checkpoint of this crate works too: its extra keys are
    /// ignored).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_safetensors_bytes(&tensor_file::read_file(path.as_ref())?)
    }

    /// Saves to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = TensorWriter::new();
        self.add_to(&mut w, "");
        w.write_atomic(path.as_ref())
    }
}
