//! ONNX's `LSTM` operator and PyTorch's layout.
//!
//! One ONNX `LSTM` node is one layer: a stacked model is one node per layer, node `l` reading
//! node `l - 1`'s output `Y` `[T, D, B, H]` as `[T, B, D·H]` (forward then reverse features at
//! each step, as a PyTorch layer reads the one below). A node's weights, with `D` directions and
//! `I_l` the layer's input features (`I` for the first node, `D·H` above):
//!
//! | input | shape | PyTorch |
//! | --- | --- | --- |
//! | `W` | `[D, 4H, I_l]` | `weight_ih_l{l}` of direction `d` at `W[d]`, gate blocks reordered |
//! | `R` | `[D, 4H, H]` | `weight_hh_l{l}`, likewise |
//! | `B` | `[D, 8H]` | `[bias_ih_l{l} \| bias_hh_l{l}]` (ONNX's `[Wb \| Rb]`), each reordered; absent = zeros |
//! | `P` | `[D, 3H]` | peepholes: PyTorch has none, so absent or all zero |
//!
//! Gate blocks: ONNX orders the `4H` rows i, o, f, c; PyTorch i, f, g, o (`g` is ONNX's `c`).
//! PyTorch block `k` is ONNX block `[0, 2, 3, 1][k]`, and ONNX block `j` PyTorch block
//! `[0, 3, 1, 2][j]`.
//!
//! Directions: the attribute `direction` is `forward` (`D = 1`), `bidirectional` (`D = 2`,
//! index 0 forward and 1 reverse, as PyTorch's `_reverse` tensors) or `reverse` (`D = 1`). A
//! lone reverse direction has no PyTorch equivalent (`nn.LSTM` runs forward, or both ways), so
//! [`to_pytorch`] refuses it with [`Error::Config`], as it refuses nodes of different directions
//! in one stack.
//!
//! The node's other attributes are not converted and must keep their defaults for the two
//! models to compute the same: `activations` sigmoid, tanh, tanh; no `clip`; `input_forget`
//! 0. `hidden_size` is `H` ([`LstmNode::hidden_size`]), and `layout` changes only how `X` and
//! `Y` are laid out, not the weights. ONNX's LSTM has no projection: [`from_pytorch`] of a
//! projected model (`proj_size > 0`) is an [`Error::Config`].

use std::fmt;
use std::str::FromStr;

use ndarray::{Array, Array2, Array3, ArrayView, Axis, Dimension, Slice, s};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::shape::expect_shape;
use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// For each PyTorch gate block (i, f, g, o), the ONNX block (i, o, f, c) it comes from.
const PYTORCH_FROM_ONNX: [usize; 4] = [0, 2, 3, 1];

/// For each ONNX gate block (i, o, f, c), the PyTorch block (i, f, g, o) it comes from.
const ONNX_FROM_PYTORCH: [usize; 4] = [0, 3, 1, 2];

/// The `direction` attribute of an ONNX `LSTM` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `"forward"`: one direction, from the first step.
    Forward,
    /// `"reverse"`: one direction, from the last step (no PyTorch equivalent).
    Reverse,
    /// `"bidirectional"`: both, forward at index 0 and reverse at index 1.
    Bidirectional,
}

impl Direction {
    /// The attribute's value as ONNX spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        }
    }

    /// Directions of the node's tensors, `D`: 2 when bidirectional, else 1.
    pub fn num_directions(self) -> usize {
        match self {
            Direction::Bidirectional => 2,
            Direction::Forward | Direction::Reverse => 1,
        }
    }
}

impl FromStr for Direction {
    type Err = Error;

    /// Parses `forward`, `reverse` or `bidirectional`; anything else is an [`Error::Config`].
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "forward" => Ok(Direction::Forward),
            "reverse" => Ok(Direction::Reverse),
            "bidirectional" => Ok(Direction::Bidirectional),
            other => Err(Error::config(
                "ONNX LSTM direction",
                format!("{other:?} is none of \"forward\", \"reverse\", \"bidirectional\""),
            )),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The weights of one ONNX `LSTM` node (one layer), in ONNX's layout and gate order i, o, f, c
/// (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmNode<F = f32> {
    /// The `direction` attribute.
    pub direction: Direction,
    /// Input weights `W`, `[D, 4H, I_l]`.
    pub w: Array3<F>,
    /// Recurrent weights `R`, `[D, 4H, H]`.
    pub r: Array3<F>,
    /// Biases `B`, `[D, 8H]` (`[Wb | Rb]` per direction); `None` when the node has no `B`
    /// input, which means zeros.
    pub b: Option<Array2<F>>,
    /// Peephole weights `P`, `[D, 3H]`; `None` when absent. PyTorch has none, so
    /// [`to_pytorch`] accepts only zeros.
    pub p: Option<Array2<F>>,
}

impl<F> LstmNode<F> {
    /// The `hidden_size` attribute, `H`: the last axis of `R`.
    pub fn hidden_size(&self) -> usize {
        self.r.len_of(Axis(2))
    }
}

/// The PyTorch-layout model that computes what the stack of ONNX `LSTM` nodes `nodes` (bottom
/// first) computes.
///
/// Every node must have the same direction, forward or bidirectional, and the same `H`; node
/// `l`'s `W` must read `I` inputs for the first node and `D·H` above. A tensor of the wrong shape
/// is an [`Error::Shape`] naming it (`node 1 W`, ...); no nodes, mixed or reverse directions,
/// and nonzero peepholes are [`Error::Config`].
pub fn to_pytorch<F: Real>(nodes: &[LstmNode<F>]) -> Result<LstmWeights<F>> {
    let Some(first) = nodes.first() else {
        return Err(Error::config(
            "ONNX LSTM nodes",
            "no nodes given: a model has at least one layer",
        ));
    };
    let direction = first.direction;
    if let Some((l, odd)) = nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.direction != direction)
    {
        return Err(Error::config(
            "ONNX LSTM direction",
            format!(
                "node {l} runs {} but node 0 runs {direction}: every layer of a PyTorch LSTM \
                 runs the same directions",
                odd.direction
            ),
        ));
    }
    if direction == Direction::Reverse {
        return Err(Error::config(
            "ONNX LSTM direction",
            "a lone reverse direction has no PyTorch equivalent (nn.LSTM runs forward, or both \
             ways when bidirectional)",
        ));
    }
    let dirs = direction.num_directions();
    let h = first.hidden_size();
    // Nodes that all leave B out are a model without biases (what PyTorch exports from
    // bias=False); one node with B makes every node's biases parameters (zero where absent).
    let bias = nodes.iter().any(|n| n.b.is_some());
    let config = LstmConfig::new(first.w.len_of(Axis(2)), h, nodes.len())?
        .with_bidirectional(direction == Direction::Bidirectional)?
        .with_bias(bias);
    let mut layers = Vec::with_capacity(nodes.len() * dirs);
    for (l, node) in nodes.iter().enumerate() {
        let name = |tensor: &str| format!("node {l} {tensor}");
        expect_shape(&name("R"), node.r.shape(), &[dirs, 4 * h, h])?;
        let inputs = config.layer_input_size(l);
        expect_shape(&name("W"), node.w.shape(), &[dirs, 4 * h, inputs])?;
        if let Some(b) = &node.b {
            expect_shape(&name("B"), b.shape(), &[dirs, 8 * h])?;
        }
        if let Some(p) = &node.p {
            expect_shape(&name("P"), p.shape(), &[dirs, 3 * h])?;
            if let Some(index) = p.indexed_iter().find(|(_, v)| !v.is_zero()).map(|(i, _)| i) {
                return Err(Error::config(
                    "ONNX LSTM peepholes",
                    format!(
                        "{} holds a nonzero weight at {index:?}: PyTorch's LSTM has no peepholes",
                        name("P")
                    ),
                ));
            }
        }
        for d in 0..dirs {
            let (bias_ih, bias_hh) = match &node.b {
                Some(b) => (
                    reorder(b.slice(s![d, ..4 * h]), PYTORCH_FROM_ONNX),
                    reorder(b.slice(s![d, 4 * h..]), PYTORCH_FROM_ONNX),
                ),
                None => (Array::zeros(4 * h), Array::zeros(4 * h)),
            };
            layers.push(LayerWeights {
                weight_ih: reorder(node.w.index_axis(Axis(0), d), PYTORCH_FROM_ONNX),
                weight_hh: reorder(node.r.index_axis(Axis(0), d), PYTORCH_FROM_ONNX),
                bias_ih,
                bias_hh,
                weight_hr: None,
            });
        }
    }
    LstmWeights::new(config, layers)
}

/// The ONNX `LSTM` nodes, one per layer (bottom first), that compute what `weights` computes:
/// direction `forward`, or `bidirectional` for a bidirectional model, and `B` given unless the
/// model has no biases (`P` never). A projected model (`proj_size > 0`) is an [`Error::Config`]: ONNX's LSTM has no
/// projection.
pub fn from_pytorch<F: Real>(weights: &LstmWeights<F>) -> Result<Vec<LstmNode<F>>> {
    weights.validate()?;
    let config = weights.config();
    if config.proj_size > 0 {
        return Err(Error::config(
            "ONNX LSTM",
            "projected layers (proj_size) have no ONNX equivalent: the LSTM operator has no \
             projection",
        ));
    }
    let (dirs, h) = (config.num_directions(), config.hidden_size);
    let direction = if config.bidirectional {
        Direction::Bidirectional
    } else {
        Direction::Forward
    };
    let nodes = (0..config.num_layers)
        .map(|l| {
            let inputs = config.layer_input_size(l);
            let mut node = LstmNode {
                direction,
                w: Array3::zeros((dirs, 4 * h, inputs)),
                r: Array3::zeros((dirs, 4 * h, h)),
                b: config.bias.then(|| Array2::zeros((dirs, 8 * h))),
                p: None,
            };
            for d in 0..dirs {
                let layer = weights.layer(l, d);
                let reordered = |a| reorder(a, ONNX_FROM_PYTORCH);
                node.w
                    .index_axis_mut(Axis(0), d)
                    .assign(&reordered(layer.weight_ih.view()));
                node.r
                    .index_axis_mut(Axis(0), d)
                    .assign(&reordered(layer.weight_hh.view()));
                if let Some(b) = &mut node.b {
                    b.slice_mut(s![d, ..4 * h])
                        .assign(&reorder(layer.bias_ih.view(), ONNX_FROM_PYTORCH));
                    b.slice_mut(s![d, 4 * h..])
                        .assign(&reorder(layer.bias_hh.view(), ONNX_FROM_PYTORCH));
                }
            }
            node
        })
        .collect();
    Ok(nodes)
}

/// `a`'s four gate blocks along its first axis (`4H` long, checked by the callers), block `k` of
/// the result being block `source[k]` of `a`.
fn reorder<F: Real, D: Dimension>(a: ArrayView<'_, F, D>, source: [usize; 4]) -> Array<F, D> {
    let h = a.len_of(Axis(0)) / 4;
    let mut out = Array::zeros(a.raw_dim());
    for (k, src) in source.into_iter().enumerate() {
        out.slice_axis_mut(Axis(0), Slice::from(k * h..(k + 1) * h))
            .assign(&a.slice_axis(Axis(0), Slice::from(src * h..(src + 1) * h)));
    }
    out
}
