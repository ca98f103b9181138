//! LSTM parameters in PyTorch `nn.LSTM` layout, and their safetensors form.
//!
//! For layer `l` (gate blocks in the order i, f, g, o, each `H` rows), with `D` directions (2
//! when bidirectional) and `H_out` the size of `h` (`proj_size` when projected, else `H`):
//!
//! | key | shape | meaning |
//! | --- | --- | --- |
//! | `weight_ih_l{l}` | `[4H, I_l]` | input-to-gates weights, `I_0 = I`, `I_l = D·H_out` above |
//! | `weight_hh_l{l}` | `[4H, H_out]` | hidden-to-gates weights |
//! | `bias_ih_l{l}` | `[4H]` | input bias |
//! | `bias_hh_l{l}` | `[4H]` | hidden bias (both biases are added) |
//! | `weight_hr_l{l}` | `[H_out, H]` | projection `h = (o ⊙ tanh c) · W_hrᵀ`, only when projected |
//!
//! The reverse direction of a bidirectional layer has the same tensors with the suffix
//! `_reverse` (`weight_ih_l0_reverse`, ...).
//!
//! A file written by `safetensors.torch.save_file(lstm.state_dict())` loads here, and a file
//! saved here loads into `nn.LSTM(I, H, num_layers=L, bidirectional=.., proj_size=..,
//! batch_first=True)` with `load_state_dict`.

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
/// `weight_hh_l{l}` `[4H, H_out]`, `bias_ih_l{l}` `[4H]`, `bias_hh_l{l}` `[4H]`.
pub fn layer_tensor_names(l: usize) -> [String; 4] {
    direction_tensor_names(l, 0)
}

/// As [`layer_tensor_names`], for direction `d` of layer `l`: the reverse direction (`d = 1`)
/// has the suffix `_reverse`.
pub fn direction_tensor_names(l: usize, d: usize) -> [String; 4] {
    LAYER_TENSOR_STEMS.map(|stem| tensor_name(stem, l, d))
}

/// `{stem}_l{l}`, with `_reverse` for direction 1.
fn tensor_name(stem: &str, l: usize, d: usize) -> String {
    let suffix = if d == 1 { "_reverse" } else { "" };
    format!("{stem}_l{l}{suffix}")
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
    /// Each layer runs in both directions (PyTorch `bidirectional=True`): `D = 2` directions,
    /// the reverse one reading the sequence from its end; the layer's output at step `t` is
    /// `[forward h_t | reverse h_t]`.
    pub bidirectional: bool,
    /// The size of `h` when it is a projection of `o ⊙ tanh c` (PyTorch `proj_size`), `H_out`;
    /// 0 for none (`H_out = H`). Below `H` when set.
    pub proj_size: usize,
    /// Whether the layers have the biases `b_ih`, `b_hh` (PyTorch `bias`, true by default). A
    /// model without them holds them as zeros that nothing changes: files omit them, their
    /// gradients are zero and optimizers leave them alone.
    pub bias: bool,
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
        LstmConfig {
            input_size,
            hidden_size,
            num_layers,
            bidirectional: false,
            proj_size: 0,
            bias: true,
        }
        .checked()
    }

    /// The same sizes, with the biases `b_ih`, `b_hh` when `on` (PyTorch `bias`), without them
    /// when not.
    pub fn with_bias(self, on: bool) -> Self {
        LstmConfig { bias: on, ..self }
    }

    /// The same sizes, in both directions when `on` (PyTorch `bidirectional`).
    pub fn with_bidirectional(self, on: bool) -> Result<Self> {
        LstmConfig {
            bidirectional: on,
            ..self
        }
        .checked()
    }

    /// The same sizes with `h` projected to `proj_size` features (PyTorch `proj_size`; 0 for
    /// none). PyTorch requires `proj_size < hidden_size`, and so does this.
    pub fn with_proj_size(self, proj_size: usize) -> Result<Self> {
        if proj_size >= self.hidden_size {
            return Err(Error::config(
                "LstmConfig",
                format!(
                    "proj_size {proj_size} must be below hidden_size {}",
                    self.hidden_size
                ),
            ));
        }
        LstmConfig { proj_size, ..self }.checked()
    }

    /// `self`, unless its parameters are more than this machine can address.
    fn checked(self) -> Result<Self> {
        let LstmConfig {
            input_size,
            hidden_size,
            num_layers,
            ..
        } = self;
        let config = self;
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
        let (h, h_out) = (self.hidden_size, self.output_size());
        let projection = if self.proj_size > 0 {
            h_out.checked_mul(h)?
        } else {
            0
        };
        let lower = self.num_directions().checked_mul(h_out)?;
        (0..self.num_layers).try_fold(0usize, |sum, l| {
            let inputs = if l == 0 { self.input_size } else { lower };
            let biases = if self.bias { 2 } else { 0 };
            let per_gate = inputs.checked_add(h_out)?.checked_add(biases)?;
            let direction = h
                .checked_mul(4)?
                .checked_mul(per_gate)?
                .checked_add(projection)?;
            sum.checked_add(direction.checked_mul(self.num_directions())?)
        })
    }

    /// Directions per layer, `D`: 2 when bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Features of `h`, `H_out`: `proj_size` when projected, else `H`.
    pub fn output_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Features of a layer's output at each step (and of `y`), `D·H_out`.
    pub fn layer_output_size(&self) -> usize {
        self.num_directions() * self.output_size()
    }

    /// Input features of layer `l`: `I` for the first layer, `D·H_out` above it.
    pub fn layer_input_size(&self, l: usize) -> usize {
        if l == 0 {
            self.input_size
        } else {
            self.layer_output_size()
        }
    }

    /// Whether this is the plain LSTM (one direction, no projection), which every part of the
    /// crate runs; [`CpuLstm`](crate::cpu::lstm::CpuLstm) runs the others too.
    pub fn is_plain(&self) -> bool {
        !self.bidirectional && self.proj_size == 0
    }

    /// [`Error::Config`] naming `what` unless [`LstmConfig::is_plain`]: for the parts of the
    /// crate that do not run bidirectional or projected layers yet.
    pub fn require_plain(&self, what: &'static str) -> Result<()> {
        let feature = match (self.bidirectional, self.proj_size > 0) {
            (false, false) => return Ok(()),
            (true, false) => "bidirectional layers",
            (false, true) => "projected layers (proj_size)",
            (true, true) => "bidirectional and projected layers",
        };
        Err(Error::config(
            what,
            format!("{feature} are not supported here yet; CpuLstm and GpuLstm run them"),
        ))
    }

    /// Total number of parameters over all layers and directions.
    pub fn num_parameters(&self) -> usize {
        let (h, h_out) = (self.hidden_size, self.output_size());
        let projection = if self.proj_size > 0 { h_out * h } else { 0 };
        let biases = if self.bias { 8 * h } else { 0 };
        let per_direction: usize = (0..self.num_layers)
            .map(|l| 4 * h * (self.layer_input_size(l) + h_out) + biases + projection)
            .sum();
        per_direction * self.num_directions()
    }
}

/// One direction of one layer's parameters (or their gradients), PyTorch layout, gate order i,
/// f, g, o.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights<F = f32> {
    /// `[4H, I_l]`
    pub weight_ih: Array2<F>,
    /// `[4H, H_out]`
    pub weight_hh: Array2<F>,
    /// `[4H]`
    pub bias_ih: Array1<F>,
    /// `[4H]`
    pub bias_hh: Array1<F>,
    /// `[H_out, H]` when the layer is projected (`proj_size > 0`), else `None`.
    pub weight_hr: Option<Array2<F>>,
}

impl<F: Real> LayerWeights<F> {
    /// All-zero parameters of layer `l` of `config` (either direction: both have these shapes).
    pub fn zeros(config: &LstmConfig, l: usize) -> Self {
        let (h, h_out) = (config.hidden_size, config.output_size());
        LayerWeights {
            weight_ih: Array2::zeros((4 * h, config.layer_input_size(l))),
            weight_hh: Array2::zeros((4 * h, h_out)),
            bias_ih: Array1::zeros(4 * h),
            bias_hh: Array1::zeros(4 * h),
            weight_hr: (config.proj_size > 0).then(|| Array2::zeros((h_out, h))),
        }
    }

    /// The tensors as dynamic views, in field order (that of [`layer_tensor_names`], then
    /// `weight_hr` when present).
    pub fn views(&self) -> Vec<ArrayViewD<'_, F>> {
        let mut v = vec![
            self.weight_ih.view().into_dyn(),
            self.weight_hh.view().into_dyn(),
            self.bias_ih.view().into_dyn(),
            self.bias_hh.view().into_dyn(),
        ];
        v.extend(self.weight_hr.as_ref().map(|w| w.view().into_dyn()));
        v
    }

    /// The tensors as mutable dynamic views, in the order of [`LayerWeights::views`].
    pub fn views_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        let mut v = vec![
            self.weight_ih.view_mut().into_dyn(),
            self.weight_hh.view_mut().into_dyn(),
            self.bias_ih.view_mut().into_dyn(),
            self.bias_hh.view_mut().into_dyn(),
        ];
        v.extend(self.weight_hr.as_mut().map(|w| w.view_mut().into_dyn()));
        v
    }

    /// The tensors with their PyTorch names as direction `d` of layer `l`
    /// ([`direction_tensor_names`], then `weight_hr_l{l}`), as dynamic views.
    pub fn named(&self, l: usize, d: usize) -> Vec<(String, ArrayViewD<'_, F>)> {
        let mut names: Vec<String> = direction_tensor_names(l, d).into();
        names.push(tensor_name("weight_hr", l, d));
        names.into_iter().zip(self.views()).collect()
    }

    fn check(&self, config: &LstmConfig, l: usize, d: usize) -> Result<()> {
        let (h, h_out) = (config.hidden_size, config.output_size());
        let i = config.layer_input_size(l);
        // Every forward checks its weights: the tensors' names are formatted only for an error.
        let actual = [
            self.weight_ih.shape(),
            self.weight_hh.shape(),
            self.bias_ih.shape(),
            self.bias_hh.shape(),
        ];
        let expected: [&[usize]; 4] = [&[4 * h, i], &[4 * h, h_out], &[4 * h], &[4 * h]];
        for ((stem, actual), expected) in LAYER_TENSOR_STEMS.iter().zip(actual).zip(expected) {
            if actual != expected {
                return expect_shape(&tensor_name(stem, l, d), actual, expected);
            }
        }
        if !config.bias {
            for (stem, b) in [("bias_ih", &self.bias_ih), ("bias_hh", &self.bias_hh)] {
                if b.iter().any(|v| *v != F::zero()) {
                    let name = tensor_name(stem, l, d);
                    return Err(Error::config(
                        "LstmWeights",
                        format!("{name} is not zero in a model without biases (bias = false)"),
                    ));
                }
            }
        }
        let w_hr = || tensor_name("weight_hr", l, d);
        match (&self.weight_hr, config.proj_size > 0) {
            (Some(w), true) if w.shape() == [h_out, h] => Ok(()),
            (Some(w), true) => expect_shape(&w_hr(), w.shape(), &[h_out, h]),
            (None, false) => Ok(()),
            (Some(w), false) => Err(Error::Shape {
                tensor: w_hr(),
                expected: vec![],
                actual: w.shape().to_vec(),
            }),
            (None, true) => Err(Error::MissingTensor { tensor: w_hr() }),
        }
    }

    /// Converts every tensor to another float type.
    pub fn cast<G: Real>(&self) -> LayerWeights<G> {
        let c = |v: &F| G::from_f64_lossy(v.to_f64_exact());
        LayerWeights {
            weight_ih: self.weight_ih.map(c),
            weight_hh: self.weight_hh.map(c),
            bias_ih: self.bias_ih.map(c),
            bias_hh: self.bias_hh.map(c),
            weight_hr: self.weight_hr.as_ref().map(|w| w.map(c)),
        }
    }
}

/// A whole LSTM's parameters: a configuration and one [`LayerWeights`] per layer and direction
/// (index `l·D + d`, direction 1 the reverse one), shapes checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmWeights<F = f32> {
    config: LstmConfig,
    layers: Vec<LayerWeights<F>>,
}

impl<F: Real> LstmWeights<F> {
    /// Checks every tensor against `config` and wraps them.
    pub fn new(config: LstmConfig, layers: Vec<LayerWeights<F>>) -> Result<Self> {
        let w = LstmWeights { config, layers };
        w.validate()?;
        Ok(w)
    }

    /// All-zero parameters.
    pub fn zeros(config: LstmConfig) -> Self {
        let layers = (0..config.num_layers * config.num_directions())
            .map(|ld| LayerWeights::zeros(&config, ld / config.num_directions()))
            .collect();
        LstmWeights { config, layers }
    }

    /// PyTorch's default initialisation: every parameter uniform in `[-1/√H, 1/√H)`, drawn from
    /// `seed` in the order the keys are listed in the module documentation.
    pub fn init_uniform(config: LstmConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let k = 1.0 / (config.hidden_size as f64).sqrt();
        let mut w = Self::zeros(config);
        for mut tensor in w.tensors_mut() {
            for v in tensor.iter_mut() {
                *v = F::from_f64_lossy(rng.uniform(-k, k));
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
    /// A model without biases has nothing to set: [`Error::Config`].
    pub fn set_forget_bias(&mut self, value: F) -> Result<()> {
        if !self.config.bias {
            return Err(Error::config(
                "forget bias",
                "the model has no biases (bias = false)",
            ));
        }
        let h = self.config.hidden_size;
        for layer in &mut self.layers {
            layer.bias_ih.slice_mut(ndarray::s![h..2 * h]).fill(value);
            layer
                .bias_hh
                .slice_mut(ndarray::s![h..2 * h])
                .fill(F::zero());
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// Every layer's directions, bottom first: index `l·D + d` (see [`LstmWeights::layer`]).
    pub fn layers(&self) -> &[LayerWeights<F>] {
        &self.layers
    }

    /// Direction `d` (0 forward, 1 reverse) of layer `l`.
    pub fn layer(&self, l: usize, d: usize) -> &LayerWeights<F> {
        &self.layers[l * self.config.num_directions() + d]
    }

    /// Every tensor the model has with its PyTorch name, layer by layer, forward direction
    /// first: the keys and order of `nn.LSTM.state_dict()` (no biases when the model has none).
    pub fn named_tensors(&self) -> Vec<(String, ArrayViewD<'_, F>)> {
        let dirs = self.config.num_directions();
        let bias = self.config.bias;
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(ld, layer)| layer.named(ld / dirs, ld % dirs))
            .filter(|(name, _)| bias || !name.starts_with("bias_"))
            .collect()
    }

    /// The tensors of [`LstmWeights::named_tensors`], mutable, in its order: what an optimizer
    /// updates.
    pub fn tensors_mut(&mut self) -> Vec<ArrayViewMutD<'_, F>> {
        let bias = self.config.bias;
        self.layers
            .iter_mut()
            .flat_map(|layer| {
                let [w_ih, w_hh, b_ih, b_hh] = [
                    layer.weight_ih.view_mut().into_dyn(),
                    layer.weight_hh.view_mut().into_dyn(),
                    layer.bias_ih.view_mut().into_dyn(),
                    layer.bias_hh.view_mut().into_dyn(),
                ];
                let biases = if bias { vec![b_ih, b_hh] } else { vec![] };
                [w_ih, w_hh]
                    .into_iter()
                    .chain(biases)
                    .chain(layer.weight_hr.as_mut().map(|w| w.view_mut().into_dyn()))
            })
            .collect()
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
        let dirs = self.config.num_directions();
        if self.layers.len() != self.config.num_layers * dirs {
            return Err(Error::Shape {
                tensor: "layers (num_layers × directions)".into(),
                expected: vec![self.config.num_layers * dirs],
                actual: vec![self.layers.len()],
            });
        }
        for (ld, layer) in self.layers.iter().enumerate() {
            layer.check(&self.config, ld / dirs, ld % dirs)?;
        }
        Ok(())
    }

    /// Reads the LSTM tensors from a parsed safetensors file, under `prefix` (e.g. `""` or
    /// `"lstm."`). The number of layers is the number of consecutive `weight_ih_l{l}` keys; the
    /// layers are bidirectional when `weight_ih_l0_reverse` is present, projected when
    /// `weight_hr_l0` is, and without biases when `bias_ih_l0` is absent; sizes come from the
    /// shapes. Stored `f32` or `f64` is converted to `F`.
    pub(crate) fn from_safetensors(
        st: &safetensors::SafeTensors<'_>,
        prefix: &str,
    ) -> Result<Self> {
        let key = |stem: &str, l: usize, d: usize| format!("{prefix}{}", tensor_name(stem, l, d));
        let has = |name: &str| st.tensor(name).is_ok();
        let num_layers = (0..).take_while(|&l| has(&key("weight_ih", l, 0))).count();
        let w_ih0_key = key("weight_ih", 0, 0);
        if num_layers == 0 {
            return Err(Error::MissingTensor { tensor: w_ih0_key });
        }
        let w_ih0 = st.tensor(&w_ih0_key).map_err(Error::Safetensors)?;
        let (&[four_h, i], true) = (
            w_ih0.shape(),
            w_ih0.shape().first().is_some_and(|r| r % 4 == 0),
        ) else {
            return Err(Error::Shape {
                tensor: w_ih0_key,
                expected: vec![0, 0],
                actual: w_ih0.shape().to_vec(),
            });
        };
        let proj_size = match st.tensor(&key("weight_hr", 0, 0)) {
            Ok(w_hr) => w_hr.shape().first().copied().unwrap_or(0),
            Err(_) => 0,
        };
        let bidirectional = has(&key("weight_ih", 0, 1));
        let config = LstmConfig::new(i, four_h / 4, num_layers)?
            .with_bidirectional(bidirectional)?
            .with_bias(has(&key("bias_ih", 0, 0)));
        let config = if proj_size > 0 {
            config.with_proj_size(proj_size)?
        } else {
            config
        };
        let mut layers = Vec::with_capacity(num_layers * config.num_directions());
        for l in 0..num_layers {
            for d in 0..config.num_directions() {
                let shapes = LayerWeights::<F>::zeros(&config, l);
                let get2 = |stem: &str, like: &Array2<F>| -> Result<Array2<F>> {
                    let name = key(stem, l, d);
                    let shape = like.shape();
                    tensor_file::read_tensor::<F>(st, &name, Some(shape))?
                        .into_dimensionality::<Ix2>()
                        .map_err(|_| Error::Shape {
                            tensor: name,
                            expected: shape.to_vec(),
                            actual: vec![],
                        })
                };
                let get1 = |stem: &str, len: usize| -> Result<Array1<F>> {
                    let name = key(stem, l, d);
                    tensor_file::read_tensor::<F>(st, &name, Some(&[len]))?
                        .into_dimensionality::<Ix1>()
                        .map_err(|_| Error::Shape {
                            tensor: name,
                            expected: vec![len],
                            actual: vec![],
                        })
                };
                // A model without biases (no `bias_ih_l0`) keeps them as zeros.
                let (bias_ih, bias_hh) = if config.bias {
                    let len = shapes.bias_ih.len();
                    (get1("bias_ih", len)?, get1("bias_hh", len)?)
                } else {
                    (shapes.bias_ih.clone(), shapes.bias_hh.clone())
                };
                layers.push(LayerWeights {
                    weight_ih: get2("weight_ih", &shapes.weight_ih)?,
                    weight_hh: get2("weight_hh", &shapes.weight_hh)?,
                    bias_ih,
                    bias_hh,
                    weight_hr: match &shapes.weight_hr {
                        Some(like) => Some(get2("weight_hr", like)?),
                        None => None,
                    },
                });
            }
        }
        LstmWeights::new(config, layers)
    }

    /// Parses safetensors bytes with PyTorch key names, finding the LSTM as
    /// [`LstmWeights::load`] does.
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        let st = tensor_file::parse(bytes)?;
        let prefix = sole_lstm_prefix(&st)?;
        Self::from_safetensors(&st, &prefix)
    }

    /// Parses safetensors bytes holding the LSTM's tensors under `prefix`, as
    /// [`LstmWeights::load_prefixed`] does.
    pub fn from_safetensors_bytes_prefixed(bytes: &[u8], prefix: &str) -> Result<Self> {
        Self::from_safetensors(&tensor_file::parse(bytes)?, &key_prefix(prefix))
    }

    /// Loads a safetensors file with PyTorch key names: a file of `nn.LSTM.state_dict()`, or of a
    /// whole model's `state_dict()` that holds one LSTM.
    ///
    /// The tensors without a prefix (`weight_ih_l0`, ...) are the LSTM when the file has them
    /// (extra keys, such as a classifier's `fc.weight` or a checkpoint's optimizer state, are
    /// ignored). Otherwise the LSTM is the one prefix under which the file holds a
    /// `weight_ih_l0` ([`lstm_prefixes`]: `encoder.lstm.` for `encoder.lstm.weight_ih_l0`);
    /// with several such prefixes the choice is the caller's ([`Error::AmbiguousPrefix`] lists
    /// them; [`LstmWeights::load_prefixed`] loads one), and with none the result is
    /// [`Error::MissingTensor`] for `weight_ih_l0`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = tensor_file::read_file(path)?;
        Self::from_safetensors_bytes(&bytes).map_err(|e| match e {
            Error::AmbiguousPrefix {
                path: None,
                prefixes,
            } => Error::AmbiguousPrefix {
                path: Some(path.to_path_buf()),
                prefixes,
            },
            other => other,
        })
    }

    /// Loads the LSTM whose tensors sit under `prefix` in a safetensors file, such as a whole
    /// model's state dict: `prefix` is the module path, with or without its trailing dot
    /// (`"encoder.lstm"` and `"encoder.lstm."` both read `encoder.lstm.weight_ih_l0`, ...); `""`
    /// reads the keys without a prefix. A missing tensor is [`Error::MissingTensor`] naming the
    /// full key.
    pub fn load_prefixed(path: impl AsRef<Path>, prefix: &str) -> Result<Self> {
        let bytes = tensor_file::read_file(path.as_ref())?;
        Self::from_safetensors_bytes_prefixed(&bytes, prefix)
    }

    /// Adds the tensors to a file being written, under `prefix`.
    pub(crate) fn add_to(&self, writer: &mut TensorWriter, prefix: &str) {
        for (name, view) in self.named_tensors() {
            writer.add(format!("{prefix}{name}"), view);
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

/// The prefixes under which the safetensors file at `path` holds an LSTM, sorted: every key
/// ending in `weight_ih_l0` whose prefix is empty or ends in a dot (a module path) contributes
/// that prefix, `""` for the keys without one. Each can be passed to
/// [`LstmWeights::load_prefixed`].
pub fn lstm_prefixes(path: impl AsRef<Path>) -> Result<Vec<String>> {
    lstm_prefixes_in_bytes(&tensor_file::read_file(path.as_ref())?)
}

/// [`lstm_prefixes`] of safetensors bytes in memory.
pub fn lstm_prefixes_in_bytes(bytes: &[u8]) -> Result<Vec<String>> {
    Ok(prefixes_of_lstms(&tensor_file::parse(bytes)?))
}

/// See [`lstm_prefixes`].
fn prefixes_of_lstms(st: &safetensors::SafeTensors<'_>) -> Vec<String> {
    let first = tensor_name("weight_ih", 0, 0);
    let mut prefixes: Vec<String> = st
        .names()
        .into_iter()
        .filter_map(|key| key.strip_suffix(first.as_str()))
        .filter(|prefix| prefix.is_empty() || prefix.ends_with('.'))
        .map(str::to_string)
        .collect();
    prefixes.sort();
    prefixes
}

/// The prefix [`LstmWeights::load`] reads: `""` when the file has unprefixed LSTM keys or none
/// at all (reading then names the missing `weight_ih_l0`), else the only prefix holding one.
fn sole_lstm_prefix(st: &safetensors::SafeTensors<'_>) -> Result<String> {
    let mut prefixes = prefixes_of_lstms(st);
    if prefixes.len() > 1 && !prefixes.iter().any(String::is_empty) {
        return Err(Error::AmbiguousPrefix {
            path: None,
            prefixes,
        });
    }
    Ok(match prefixes.as_slice() {
        [only] if !only.is_empty() => prefixes.swap_remove(0),
        _ => String::new(),
    })
}

/// The key prefix of a module path given with or without its trailing dot: `"encoder.lstm"` and
/// `"encoder.lstm."` give `"encoder.lstm."`, `""` stays `""`.
fn key_prefix(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('.') {
        prefix.to_string()
    } else {
        format!("{prefix}.")
    }
}
