//! LSTM parameters in PyTorch `nn.LSTM` layout, and their safetensors form.
//!
//! For layer `l` (gate blocks in the order i, f, g, o, each `H` rows):
//!
//! | key | shape | meaning |
//! | --- | --- | --- |
//! | `weight_ih_l{l}` | `[4H, I_l]` | input-to-gates weights, `I_0 = I`, `I_l = H` above |
//! | `weight_hh_l{l}` | `[4H, H]` | hidden-to-gates weights |
//! | `bias_ih_l{l}` | `[4H]` | input bias |
//! | `bias_hh_l{l}` | `[4H]` | hidden bias (both biases are added) |
//!
//! A file written by `torch.save_file(lstm.state_dict())` loads here, and a file saved here loads
//! into `nn.LSTM(I, H, num_layers=L, batch_first=True)` with `load_state_dict`.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayViewD, ArrayViewMutD, Ix1, Ix2};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::rng::Rng;
use crate::shape::{expect_nonzero, expect_shape};
use crate::tensor_file::{self, TensorWriter};

/// Stems of a layer's parameter names, in the order of [`LayerWeights`]'s fields.
const LAYER_TENSOR_STEMS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

/// PyTorch's names of layer `l`'s four tensors, in the order of [`LayerWeights`]'s fields (the
/// order every listing of a layer's tensors uses): `weight_ih_l{l}` `[4H, I_l]`,
/// `weight_hh_l{l}` `[4H, H]`, `bias_ih_l{l}` `[4H]`, `bias_hh_l{l}` `[4H]`.
pub fn layer_tensor_names(l: usize) -> [String; 4] {
    LAYER_TENSOR_STEMS.map(|stem| format!("{stem}_l{l}"))
}

/// The sizes that fix an LSTM's parameter shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmConfig {
    /// Features per timestep of the input, `I`.
    pub input_size: usize,
    /// Hidden units per layer, `H`.
    pub hidden_size: usize,
    /// Stacked layers, `L`; layer `l > 0` reads the hidden sequence of layer `l - 1`.
    pub num_layers: usize,
}

impl LstmConfig {
    /// A checked configuration: every size must be at least one, and the parameter count (in
    /// bytes of `f64`) must be a number the machine can address.
    pub fn new(input_size: usize, hidden_size: usize, num_layers: usize) -> Result<Self> {
        expect_nonzero(
            "LstmConfig",
            &[input_size, hidden_size, num_layers],
            &["input_size", "hidden_size", "num_layers"],
        )?;
        let config = LstmConfig {
            input_size,
            hidden_size,
            num_layers,
        };
        config
            .checked_num_parameters()
            .filter(|&n| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize))
            .ok_or_else(|| {
                Error::config(
                    "LstmConfig",
                    format!(
                        "{num_layers} layers of {hidden_size} units over {input_size} inputs have \
                         more parameters than this machine can address"
                    ),
                )
            })?;
        Ok(config)
    }

    fn checked_num_parameters(&self) -> Option<usize> {
        let h = self.hidden_size;
        (0..self.num_layers).try_fold(0usize, |sum, l| {
            let per_gate = self.layer_input_size(l).checked_add(h)?.checked_add(2)?;
            sum.checked_add(h.checked_mul(4)?.checked_mul(per_gate)?)
        })
    }

    /// Input features of layer `l`: `I` for the first layer, `H` above it.
    pub fn layer_input_size(&self, l: usize) -> usize {
        if l == 0 {
            self.input_size
        } else {
            self.hidden_size
        }
    }

    /// Total number of parameters over all layers.
    pub fn num_parameters(&self) -> usize {
        let h = self.hidden_size;
        (0..self.num_layers)
            .map(|l| 4 * h * (self.layer_input_size(l) + h) + 8 * h)
            .sum()
    }
}

/// One layer's parameters (or their gradients), PyTorch layout, gate order i, f, g, o.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights<F = f32> {
    /// `[4H, I_l]`
    pub weight_ih: Array2<F>,
    /// `[4H, H]`
    pub weight_hh: Array2<F>,
    /// `[4H]`
    pub bias_ih: Array1<F>,
    /// `[4H]`
    pub bias_hh: Array1<F>,
}

impl<F: Real> LayerWeights<F> {
    /// All-zero parameters of layer `l` of `config`.
    pub fn zeros(config: &LstmConfig, l: usize) -> Self {
        let h = config.hidden_size;
        LayerWeights {
            weight_ih: Array2::zeros((4 * h, config.layer_input_size(l))),
            weight_hh: Array2::zeros((4 * h, h)),
            bias_ih: Array1::zeros(4 * h),
            bias_hh: Array1::zeros(4 * h),
        }
    }

    /// The four tensors as dynamic views, in field order (that of [`layer_tensor_names`]).
    pub fn views(&self) -> [ArrayViewD<'_, F>; 4] {
        [
            self.weight_ih.view().into_dyn(),
            self.weight_hh.view().into_dyn(),
            self.bias_ih.view().into_dyn(),
            self.bias_hh.view().into_dyn(),
        ]
    }

    /// The four tensors as mutable dynamic views, in field order (that of
    /// [`layer_tensor_names`]).
    pub fn views_mut(&mut self) -> [ArrayViewMutD<'_, F>; 4] {
        [
            self.weight_ih.view_mut().into_dyn(),
            self.weight_hh.view_mut().into_dyn(),
            self.bias_ih.view_mut().into_dyn(),
            self.bias_hh.view_mut().into_dyn(),
        ]
    }

    /// The four tensors with their PyTorch names for layer `l` ([`layer_tensor_names`]), as
    /// dynamic views.
    pub fn named(&self, l: usize) -> [(String, ArrayViewD<'_, F>); 4] {
        let [w_ih, w_hh, b_ih, b_hh] = self.views();
        let [n_ih, n_hh, nb_ih, nb_hh] = layer_tensor_names(l);
        [(n_ih, w_ih), (n_hh, w_hh), (nb_ih, b_ih), (nb_hh, b_hh)]
    }

    fn check(&self, config: &LstmConfig, l: usize) -> Result<()> {
        let h = config.hidden_size;
        let i = config.layer_input_size(l);
        let [w_ih, w_hh, b_ih, b_hh] = layer_tensor_names(l);
        expect_shape(&w_ih, self.weight_ih.shape(), &[4 * h, i])?;
        expect_shape(&w_hh, self.weight_hh.shape(), &[4 * h, h])?;
        expect_shape(&b_ih, self.bias_ih.shape(), &[4 * h])?;
        expect_shape(&b_hh, self.bias_hh.shape(), &[4 * h])
    }

    /// Converts every tensor to another float type.
    pub fn cast<G: Real>(&self) -> LayerWeights<G> {
        let c = |v: &F| G::from_f64_lossy(v.to_f64_exact());
        LayerWeights {
            weight_ih: self.weight_ih.map(c),
            weight_hh: self.weight_hh.map(c),
            bias_ih: self.bias_ih.map(c),
            bias_hh: self.bias_hh.map(c),
        }
    }
}

/// A whole LSTM's parameters: a configuration and one [`LayerWeights`] per layer, shapes checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmWeights<F = f32> {
    config: LstmConfig,
    layers: Vec<LayerWeights<F>>,
}

impl<F: Real> LstmWeights<F> {
    /// Checks every tensor against `config` and wraps them.
    pub fn new(config: LstmConfig, layers: Vec<LayerWeights<F>>) -> Result<Self> {
        if layers.len() != config.num_layers {
            return Err(Error::Shape {
                tensor: "layers".into(),
                expected: vec![config.num_layers],
                actual: vec![layers.len()],
            });
        }
        for (l, layer) in layers.iter().enumerate() {
            layer.check(&config, l)?;
        }
        Ok(LstmWeights { config, layers })
    }

    /// All-zero parameters.
    pub fn zeros(config: LstmConfig) -> Self {
        let layers = (0..config.num_layers)
            .map(|l| LayerWeights::zeros(&config, l))
            .collect();
        LstmWeights { config, layers }
    }

    /// PyTorch's default initialisation: every parameter uniform in `[-1/√H, 1/√H)`, drawn from
    /// `seed` in the order the keys are listed in the module documentation.
    pub fn init_uniform(config: LstmConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let k = 1.0 / (config.hidden_size as f64).sqrt();
        let mut w = Self::zeros(config);
        for layer in &mut w.layers {
            for mut tensor in layer.views_mut() {
                for v in tensor.iter_mut() {
                    *v = F::from_f64_lossy(rng.uniform(-k, k));
                }
            }
        }
        w
    }

    /// Like [`LstmWeights::init_uniform`], but first checks that the parameters fit in host
    /// memory ([`crate::host_memory::reserve`]): for sizes a caller or a command line chooses,
    /// where an allocation failure must be an [`Error::HostMemory`], not an abort.
    pub fn try_init_uniform(config: LstmConfig, seed: u64) -> Result<Self> {
        let bytes = crate::host_memory::bytes_of(
            "LSTM parameters",
            config.num_parameters(),
            std::mem::size_of::<F>(),
        )?;
        crate::host_memory::reserve("LSTM parameters", bytes)?;
        Ok(Self::init_uniform(config, seed))
    }

    /// Sets the forget-gate slice (rows `H..2H`) of `bias_ih` to `value` and of `bias_hh` to zero
    /// in every layer, so their sum is `value`: TensorFlow's `BasicLSTMCell(forget_bias=1.0)`.
    pub fn set_forget_bias(&mut self, value: F) {
        let h = self.config.hidden_size;
        for layer in &mut self.layers {
            layer.bias_ih.slice_mut(ndarray::s![h..2 * h]).fill(value);
            layer
                .bias_hh
                .slice_mut(ndarray::s![h..2 * h])
                .fill(F::zero());
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// All layers, bottom first.
    pub fn layers(&self) -> &[LayerWeights<F>] {
        &self.layers
    }

    /// Mutable access to the layers; shapes must stay as they are (they are re-checked by every
    /// consumer that uploads or saves them).
    pub fn layers_mut(&mut self) -> &mut [LayerWeights<F>] {
        &mut self.layers
    }

    /// Converts every tensor to another float type.
    pub fn cast<G: Real>(&self) -> LstmWeights<G> {
        LstmWeights {
            config: self.config,
            layers: self.layers.iter().map(|l| l.cast()).collect(),
        }
    }

    /// Re-checks shapes (after [`LstmWeights::layers_mut`]).
    pub fn validate(&self) -> Result<()> {
        for (l, layer) in self.layers.iter().enumerate() {
            layer.check(&self.config, l)?;
        }
        Ok(())
    }

    /// Reads the LSTM tensors from a parsed safetensors file, under `prefix` (e.g. `""` or
    /// `"lstm."`). The number of layers is the number of consecutive `weight_ih_l{l}` keys; sizes
    /// come from the shapes. Stored `f32` or `f64` is converted to `F`.
    pub(crate) fn from_safetensors(
        st: &safetensors::SafeTensors<'_>,
        prefix: &str,
    ) -> Result<Self> {
        let keys = |l: usize| layer_tensor_names(l).map(|name| format!("{prefix}{name}"));
        let mut num_layers = 0;
        while st.tensor(&keys(num_layers)[0]).is_ok() {
            num_layers += 1;
        }
        let [w_ih0_key, w_hh0_key, ..] = keys(0);
        if num_layers == 0 {
            return Err(Error::MissingTensor { tensor: w_ih0_key });
        }
        let w_hh0 = st.tensor(&w_hh0_key).map_err(|_| Error::MissingTensor {
            tensor: w_hh0_key.clone(),
        })?;
        let w_ih0 = st.tensor(&w_ih0_key).map_err(Error::Safetensors)?;
        let (Some(&h), Some(&i)) = (w_hh0.shape().get(1), w_ih0.shape().get(1)) else {
            return Err(Error::Shape {
                tensor: w_hh0_key,
                expected: vec![0, 0],
                actual: w_hh0.shape().to_vec(),
            });
        };
        let config = LstmConfig::new(i, h, num_layers)?;
        let mut layers = Vec::with_capacity(num_layers);
        for l in 0..num_layers {
            let il = config.layer_input_size(l);
            let get2 = |name: String, shape: [usize; 2]| -> Result<Array2<F>> {
                tensor_file::read_tensor::<F>(st, &name, Some(&shape))?
                    .into_dimensionality::<Ix2>()
                    .map_err(|_| Error::Shape {
                        tensor: name,
                        expected: shape.to_vec(),
                        actual: vec![],
                    })
            };
            let get1 = |name: String, len: usize| -> Result<Array1<F>> {
                tensor_file::read_tensor::<F>(st, &name, Some(&[len]))?
                    .into_dimensionality::<Ix1>()
                    .map_err(|_| Error::Shape {
                        tensor: name,
                        expected: vec![len],
                        actual: vec![],
                    })
            };
            let [w_ih, w_hh, b_ih, b_hh] = keys(l);
            layers.push(LayerWeights {
                weight_ih: get2(w_ih, [4 * h, il])?,
                weight_hh: get2(w_hh, [4 * h, h])?,
                bias_ih: get1(b_ih, 4 * h)?,
                bias_hh: get1(b_hh, 4 * h)?,
            });
        }
        LstmWeights::new(config, layers)
    }

    /// Parses safetensors bytes with PyTorch key names (no prefix).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_safetensors(&tensor_file::parse(bytes)?, "")
    }

    /// Loads a safetensors file with PyTorch key names.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let bytes = tensor_file::read_file(path.as_ref())?;
        Self::from_safetensors_bytes(&bytes)
    }

    /// Adds the tensors to a file being written, under `prefix`.
    pub(crate) fn add_to(&self, writer: &mut TensorWriter, prefix: &str) {
        for (l, layer) in self.layers.iter().enumerate() {
            for (name, view) in layer.named(l) {
                writer.add(format!("{prefix}{name}"), view);
            }
        }
    }

    /// Serialises to safetensors bytes (PyTorch key names, dtype of `F`).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let mut w = TensorWriter::new();
        self.add_to(&mut w, "");
        w.to_bytes()
    }

    /// Saves to `path` atomically: a crash leaves the old file or the new one, never a torn one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = TensorWriter::new();
        self.add_to(&mut w, "");
        w.write_atomic(path.as_ref())
    }
}
