//! Keras' `LSTM` layer and PyTorch's layout.
//!
//! A Keras `LSTM` layer's cell holds three weights (`layer.get_weights()` in this order), with
//! `I_l` the layer's input features (`I` for the first layer, `D·H` above):
//!
//! | weight | shape | PyTorch |
//! | --- | --- | --- |
//! | `kernel` | `[I_l, 4H]` | `weight_ih_l{l}ᵀ` |
//! | `recurrent_kernel` | `[H, 4H]` | `weight_hh_l{l}ᵀ` |
//! | `bias` | `[4H]` | `bias_ih_l{l} + bias_hh_l{l}` (absent with `use_bias=False`) |
//!
//! The gate blocks of the `4H` columns are i, f, c, o: PyTorch's i, f, g, o, so nothing is
//! reordered, only transposed. Keras has one bias where PyTorch adds two: [`to_pytorch`] puts it
//! in `bias_ih` and zeros in `bias_hh`, [`from_pytorch`] stores their sum (rounded once, in `F`).
//! Keras → PyTorch → Keras is therefore exact, and PyTorch → Keras → PyTorch keeps every weight
//! but moves the biases' sum into `bias_ih`.
//!
//! `Bidirectional(LSTM(H))` (with the default `merge_mode="concat"`) holds a forward and a
//! backward layer, three weights each (`get_weights()` gives the forward layer's, then the
//! backward one's): the backward layer is PyTorch's reverse direction (`_reverse` tensors), and
//! the output at each step is `[forward | backward]` as in PyTorch. A stack of layers
//! (`return_sequences=True` below the top) is a slice of [`Layer`]s, all plain or all
//! bidirectional, as an `nn.LSTM`'s layers are.
//!
//! The layer's other settings are not converted and must keep Keras' defaults for the two
//! models to compute the same: `activation="tanh"`, `recurrent_activation="sigmoid"`. Keras'
//! LSTM has no projection: [`from_pytorch`] of a projected model (`proj_size > 0`) is an
//! [`Error::Config`].

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::shape::expect_shape;
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// The weights of one direction of a Keras `LSTM` layer (its `LSTMCell`), Keras' layout, gate
/// blocks i, f, c, o.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCell<F = f32> {
    /// `kernel`, `[I_l, 4H]`.
    pub kernel: Array2<F>,
    /// `recurrent_kernel`, `[H, 4H]`.
    pub recurrent_kernel: Array2<F>,
    /// `bias`, `[4H]`; `None` for a layer made with `use_bias=False`, which means zeros.
    pub bias: Option<Array1<F>>,
}

/// One Keras layer of a stack: an `LSTM`, or a `Bidirectional` wrapper of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer<F = f32> {
    /// `LSTM(H)`.
    Lstm(LstmCell<F>),
    /// `Bidirectional(LSTM(H))`: its `forward_layer` and `backward_layer`.
    Bidirectional {
        /// The forward layer's weights (PyTorch direction 0).
        forward: LstmCell<F>,
        /// The backward layer's weights (PyTorch direction 1, `_reverse`).
        backward: LstmCell<F>,
    },
}

impl<F> Layer<F> {
    /// The layer's directions with the words that name their tensors in errors: `("", cell)`
    /// for an `LSTM`, `("forward ", ..)` and `("backward ", ..)` for a `Bidirectional` one.
    fn cells(&self) -> Vec<(&'static str, &LstmCell<F>)> {
        match self {
            Layer::Lstm(cell) => vec![("", cell)],
            Layer::Bidirectional { forward, backward } => {
                vec![("forward ", forward), ("backward ", backward)]
            }
        }
    }
}

/// The PyTorch-layout model that computes what the stack of Keras layers `layers` (bottom
/// first) computes.
///
/// Every layer must be of the same kind (all `LSTM` or all `Bidirectional`) and have the same
/// `H`; layer `l`'s kernels must read `I` inputs for the first layer and `D·H` above. A weight of
/// the wrong shape is an [`Error::Shape`] naming it (`layer 1 backward kernel`, ...); no layers,
/// or plain and bidirectional layers in one stack, are [`Error::Config`].
pub fn to_pytorch<F: Real>(layers: &[Layer<F>]) -> Result<LstmWeights<F>> {
    let Some(first) = layers.first() else {
        return Err(Error::config(
            "Keras LSTM layers",
            "no layers given: a model has at least one",
        ));
    };
    let bidirectional = matches!(first, Layer::Bidirectional { .. });
    if let Some(l) = layers
        .iter()
        .position(|layer| matches!(layer, Layer::Bidirectional { .. }) != bidirectional)
    {
        let kind = |bi: bool| if bi { "Bidirectional" } else { "a plain LSTM" };
        return Err(Error::config(
            "Keras LSTM layers",
            format!(
                "layer {l} is {} but layer 0 is {}: every layer of a PyTorch LSTM runs the same \
                 directions",
                kind(!bidirectional),
                kind(bidirectional)
            ),
        ));
    }
    let first_cell = match first {
        Layer::Lstm(cell) | Layer::Bidirectional { forward: cell, .. } => cell,
    };
    let h = first_cell.recurrent_kernel.len_of(Axis(0));
    // Layers that all have no bias (`use_bias=False`) are a model without biases; one layer
    // with a bias makes every layer's biases parameters (zero where absent).
    let bias = layers
        .iter()
        .flat_map(|layer| layer.cells())
        .any(|(_, cell)| cell.bias.is_some());
    let config = LstmConfig::new(first_cell.kernel.len_of(Axis(0)), h, layers.len())?
        .with_bidirectional(bidirectional)?
        .with_bias(bias);
    let mut out = Vec::with_capacity(layers.len() * config.num_directions());
    for (l, layer) in layers.iter().enumerate() {
        for (direction, cell) in layer.cells() {
            let name = |weight: &str| format!("layer {l} {direction}{weight}");
            let inputs = config.layer_input_size(l);
            expect_shape(
                &name("recurrent_kernel"),
                cell.recurrent_kernel.shape(),
                &[h, 4 * h],
            )?;
            expect_shape(&name("kernel"), cell.kernel.shape(), &[inputs, 4 * h])?;
            if let Some(bias) = &cell.bias {
                expect_shape(&name("bias"), bias.shape(), &[4 * h])?;
            }
            out.push(LayerWeights {
                weight_ih: transposed(cell.kernel.view()),
                weight_hh: transposed(cell.recurrent_kernel.view()),
                bias_ih: cell.bias.clone().unwrap_or_else(|| Array1::zeros(4 * h)),
                bias_hh: Array1::zeros(4 * h),
                weight_hr: None,
            });
        }
    }
    LstmWeights::new(config, out)
}

/// The Keras layers, one per layer (bottom first), that compute what `weights` computes:
/// `LSTM`s, or `Bidirectional` ones for a bidirectional model, each with a bias (the sum of
/// PyTorch's two) unless the model has none. A projected model (`proj_size > 0`) is an [`Error::Config`]: Keras' LSTM has
/// no projection.
pub fn from_pytorch<F: Real>(weights: &LstmWeights<F>) -> Result<Vec<Layer<F>>> {
    weights.validate()?;
    let config = weights.config();
    if config.proj_size > 0 {
        return Err(Error::config(
            "Keras LSTM",
            "projected layers (proj_size) have no Keras equivalent: the LSTM layer has no \
             projection",
        ));
    }
    let cell = |l: usize, d: usize| {
        let layer = weights.layer(l, d);
        LstmCell {
            kernel: transposed(layer.weight_ih.view()),
            recurrent_kernel: transposed(layer.weight_hh.view()),
            bias: config.bias.then(|| &layer.bias_ih + &layer.bias_hh),
        }
    };
    Ok((0..config.num_layers)
        .map(|l| {
            if config.bidirectional {
                Layer::Bidirectional {
                    forward: cell(l, 0),
                    backward: cell(l, 1),
                }
            } else {
                Layer::Lstm(cell(l, 0))
            }
        })
        .collect())
}

/// `aᵀ`, stored row-major.
fn transposed<F: Real>(a: ArrayView2<'_, F>) -> Array2<F> {
    a.t().as_standard_layout().into_owned()
}
