//! Weights converted between PyTorch's layout and ONNX's and Keras': round trips keep every bit,
//! and a model converted from either layout computes what that framework computes. The
//! framework's side is a plain-loop forward pass written here from its own definition, in its
//! own layout and gate order, so that the converters are checked against the frameworks'
//! semantics and not against themselves.
mod common;

use common::{assert_close, assert_same_bits, random_array};
use lstm_wgpu::convert::keras::{self, LstmCell};
use lstm_wgpu::convert::onnx::{self, Direction, LstmNode};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::{Array1, Array2, Array3, Array4, s};
use lstm_wgpu::{Error, Lstm, LstmConfig, LstmOutput, LstmState, LstmWeights};

const I: usize = 3;
const H: usize = 4;
const BATCH: usize = 2;
const STEPS: usize = 5;

/// Both sides compute in f64 from the same values and differ only in the order of their sums and
/// in how sigmoid is evaluated: a few ulps of outputs below 1. A gate read from the wrong block
/// or a transposed weight changes them by more than 1e-2.
const RTOL: f64 = 1e-12;

/// The models each conversion is checked on, named for the failure messages.
fn cases() -> Vec<(&'static str, LstmConfig)> {
    let one = LstmConfig::new(I, H, 1).unwrap();
    let two = LstmConfig::new(I, H, 2).unwrap();
    vec![
        ("one layer", one),
        (
            "one bidirectional layer",
            one.with_bidirectional(true).unwrap(),
        ),
        ("two layers", two),
        (
            "two bidirectional layers",
            two.with_bidirectional(true).unwrap(),
        ),
    ]
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The input `[B, T, I]` and a nonzero initial state for `config`.
fn input_and_state(config: &LstmConfig, seed: u64) -> (Array3<f64>, LstmState<f64>) {
    let ld = config.num_layers * config.num_directions();
    let x = random_array((BATCH, STEPS, I), seed, -1.0, 1.0);
    let state = LstmState {
        h: random_array((ld, BATCH, H), seed + 1, -1.0, 1.0),
        c: random_array((ld, BATCH, H), seed + 2, -1.0, 1.0),
    };
    (x, state)
}

/// What `weights` computes, by the crate's reference CPU path.
fn pytorch_forward(
    weights: &LstmWeights<f64>,
    x: &Array3<f64>,
    state: &LstmState<f64>,
) -> LstmOutput<f64> {
    let mut lstm = CpuLstm::new(weights.clone()).unwrap();
    lstm.forward(x.view(), Some(state)).unwrap()
}

fn assert_outputs_close(case: &str, actual: &LstmOutput<f64>, expected: &LstmOutput<f64>) {
    for (what, a, e) in [
        ("y", &actual.y, &expected.y),
        ("h_n", &actual.h_n, &expected.h_n),
        ("c_n", &actual.c_n, &expected.c_n),
    ] {
        let what = format!("{case}: {what}");
        assert_close(&what, a.view().into_dyn(), e.view().into_dyn(), 0.0, RTOL);
    }
}

fn assert_same_weights(case: &str, actual: &LstmWeights<f64>, expected: &LstmWeights<f64>) {
    assert_eq!(actual.config(), expected.config(), "{case}: config");
    for ((name, a), (_, e)) in actual
        .named_tensors()
        .into_iter()
        .zip(expected.named_tensors())
    {
        assert_same_bits(&format!("{case}: {name}"), &a, &e);
    }
}

fn assert_shape_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    tensor: &str,
    expected: &[usize],
    actual: &[usize],
) {
    match result {
        Err(Error::Shape {
            tensor: t,
            expected: e,
            actual: a,
        }) => assert_eq!(
            (t.as_str(), e.as_slice(), a.as_slice()),
            (tensor, expected, actual)
        ),
        other => panic!("expected a shape error for {tensor}, got {other:?}"),
    }
}

/// `result` is an [`Error::Config`] about `what` whose reason mentions `mentions`.
fn assert_config_error<T: std::fmt::Debug>(result: Result<T, Error>, what: &str, mentions: &str) {
    match result {
        Err(Error::Config { what: w, reason }) => {
            assert_eq!(w, what, "{reason}");
            assert!(reason.contains(mentions), "{reason:?} lacks {mentions:?}");
        }
        other => panic!("expected a config error about {what}, got {other:?}"),
    }
}

mod onnx_semantics {
    //! An ONNX `LSTM` node as the operator's definition states it.
    use super::*;

    /// The outputs of a stack of ONNX LSTM nodes: the top node's `Y` `[T, D, B, H]` and every
    /// node's `Y_h`, `Y_c` `[D, B, H]`.
    pub struct Outputs {
        pub y: Array4<f64>,
        pub y_h: Vec<Array3<f64>>,
        pub y_c: Vec<Array3<f64>>,
    }

    /// Runs `nodes` bottom first on `x` `[T, B, I]` (attribute `layout = 0`), node `l` starting
    /// from `initial_h[l]`, `initial_c[l]` `[D, B, H]`, and reading node `l - 1`'s `Y` as
    /// `[T, B, D·H]`. Per direction and step, gates in ONNX's order i, o, f, c:
    ///
    /// ```text
    /// i = σ(X W_iᵀ + H R_iᵀ + Wb_i + Rb_i)    o, f likewise    c̃ = tanh(… c blocks …)
    /// C = f ⊙ C + i ⊙ c̃,   H = o ⊙ tanh(C)
    /// ```
    pub fn forward(
        nodes: &[LstmNode<f64>],
        x: &Array3<f64>,
        initial_h: &[Array3<f64>],
        initial_c: &[Array3<f64>],
    ) -> Outputs {
        let mut input = x.clone();
        let mut out = Outputs {
            y: Array4::zeros((0, 0, 0, 0)),
            y_h: Vec::new(),
            y_c: Vec::new(),
        };
        for (l, node) in nodes.iter().enumerate() {
            let (steps, batch, inputs) = input.dim();
            let (dirs, h) = (node.w.shape()[0], node.hidden_size());
            let mut y = Array4::zeros((steps, dirs, batch, h));
            let mut y_h = Array3::zeros((dirs, batch, h));
            let mut y_c = Array3::zeros((dirs, batch, h));
            for d in 0..dirs {
                let reverse = node.direction == Direction::Reverse || d == 1;
                for b in 0..batch {
                    let mut ht: Vec<f64> = initial_h[l].slice(s![d, b, ..]).to_vec();
                    let mut ct: Vec<f64> = initial_c[l].slice(s![d, b, ..]).to_vec();
                    for step in 0..steps {
                        let t = if reverse { steps - 1 - step } else { step };
                        // Pre-activation of unit j of gate block g (0 i, 1 o, 2 f, 3 c).
                        let gate = |g: usize, j: usize| {
                            let row = g * h + j;
                            let mut z = 0.0;
                            for k in 0..inputs {
                                z += input[[t, b, k]] * node.w[[d, row, k]];
                            }
                            for (m, hm) in ht.iter().enumerate() {
                                z += hm * node.r[[d, row, m]];
                            }
                            if let Some(bias) = &node.b {
                                z += bias[[d, row]] + bias[[d, 4 * h + row]];
                            }
                            z
                        };
                        let mut h_next = vec![0.0; h];
                        for j in 0..h {
                            let i = sigmoid(gate(0, j));
                            let o = sigmoid(gate(1, j));
                            let f = sigmoid(gate(2, j));
                            let c_tilde = gate(3, j).tanh();
                            ct[j] = f * ct[j] + i * c_tilde;
                            h_next[j] = o * ct[j].tanh();
                        }
                        ht = h_next;
                        for j in 0..h {
                            y[[t, d, b, j]] = ht[j];
                        }
                    }
                    for j in 0..h {
                        y_h[[d, b, j]] = ht[j];
                        y_c[[d, b, j]] = ct[j];
                    }
                }
            }
            input = Array3::from_shape_fn((steps, batch, dirs * h), |(t, b, f)| {
                y[[t, f / h, b, f % h]]
            });
            out.y = y;
            out.y_h.push(y_h);
            out.y_c.push(y_c);
        }
        out
    }

    /// Runs `nodes` on PyTorch's input `x` `[B, T, I]` and state `[L·D, B, H]`, and returns the
    /// ONNX outputs in PyTorch's layout: `y[b, t, d·H + j] = Y[t, d, b, j]`,
    /// `h_n[l·D + d] = Y_h of node l [d]`.
    pub fn forward_as_pytorch(
        nodes: &[LstmNode<f64>],
        x: &Array3<f64>,
        state: &LstmState<f64>,
    ) -> LstmOutput<f64> {
        let dirs = nodes[0].direction.num_directions();
        let per_node = |a: &Array3<f64>| -> Vec<Array3<f64>> {
            (0..nodes.len())
                .map(|l| a.slice(s![l * dirs..(l + 1) * dirs, .., ..]).to_owned())
                .collect()
        };
        let x_tbi = x.view().permuted_axes([1, 0, 2]).to_owned();
        let out = forward(nodes, &x_tbi, &per_node(&state.h), &per_node(&state.c));
        let (steps, _, batch, h) = out.y.dim();
        let stacked = |per: &[Array3<f64>]| {
            Array3::from_shape_fn((per.len() * dirs, batch, h), |(ld, b, j)| {
                per[ld / dirs][[ld % dirs, b, j]]
            })
        };
        LstmOutput {
            y: Array3::from_shape_fn((batch, steps, dirs * h), |(b, t, f)| {
                out.y[[t, f / h, b, f % h]]
            }),
            h_n: stacked(&out.y_h),
            c_n: stacked(&out.y_c),
        }
    }
}

mod keras_semantics {
    //! A Keras `LSTM` layer, and `Bidirectional` of one, as Keras computes them.
    use super::*;

    /// Runs one `LSTMCell`'s weights over `x` `[B, T, I_l]` from `(h0, c0)` `[B, H]`, the
    /// sequence read backwards when `go_backwards` (outputs then in the order read). Per step,
    /// gates in Keras' order i, f, c, o:
    ///
    /// ```text
    /// z = x kernel + h recurrent_kernel + bias                       [4H]
    /// i = σ(z_i)   f = σ(z_f)   c̃ = tanh(z_c)   o = σ(z_o)
    /// c = f ⊙ c + i ⊙ c̃,   h = o ⊙ tanh(c)
    /// ```
    fn run(
        cell: &LstmCell<f64>,
        x: &Array3<f64>,
        go_backwards: bool,
        h0: Array2<f64>,
        c0: Array2<f64>,
    ) -> (Array3<f64>, Array2<f64>, Array2<f64>) {
        let (batch, steps, inputs) = x.dim();
        let h = cell.recurrent_kernel.shape()[0];
        let (mut ht, mut ct) = (h0, c0);
        let mut seq = Array3::zeros((batch, steps, h));
        for step in 0..steps {
            let t = if go_backwards { steps - 1 - step } else { step };
            let mut z = Array2::<f64>::zeros((batch, 4 * h));
            for b in 0..batch {
                for col in 0..4 * h {
                    let mut sum = cell.bias.as_ref().map_or(0.0, |bias| bias[col]);
                    for k in 0..inputs {
                        sum += x[[b, t, k]] * cell.kernel[[k, col]];
                    }
                    for m in 0..h {
                        sum += ht[[b, m]] * cell.recurrent_kernel[[m, col]];
                    }
                    z[[b, col]] = sum;
                }
            }
            for b in 0..batch {
                for j in 0..h {
                    let i = sigmoid(z[[b, j]]);
                    let f = sigmoid(z[[b, h + j]]);
                    let c_tilde = z[[b, 2 * h + j]].tanh();
                    let o = sigmoid(z[[b, 3 * h + j]]);
                    ct[[b, j]] = f * ct[[b, j]] + i * c_tilde;
                    ht[[b, j]] = o * ct[[b, j]].tanh();
                    seq[[b, step, j]] = ht[[b, j]];
                }
            }
        }
        (seq, ht, ct)
    }

    /// Runs `layers` bottom first on `x` `[B, T, I]` (every layer `return_sequences=True`),
    /// layer `l`'s direction `d` starting from PyTorch's `state[l·D + d]`, and returns the top
    /// layer's sequence and every layer's final states in PyTorch's layout. A `Bidirectional`
    /// layer runs its backward layer with `go_backwards=True`, reverses that layer's outputs back
    /// into time order and concatenates `[forward | backward]` (`merge_mode="concat"`).
    pub fn forward_as_pytorch(
        layers: &[keras::Layer<f64>],
        x: &Array3<f64>,
        state: &LstmState<f64>,
    ) -> LstmOutput<f64> {
        let mut input = x.clone();
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        let mut ld = 0;
        for layer in layers {
            let cells = match layer {
                keras::Layer::Lstm(cell) => vec![(cell, false)],
                keras::Layer::Bidirectional { forward, backward } => {
                    vec![(forward, false), (backward, true)]
                }
            };
            let mut outputs = Vec::new();
            for (cell, go_backwards) in cells {
                let h0 = state.h.slice(s![ld, .., ..]).to_owned();
                let c0 = state.c.slice(s![ld, .., ..]).to_owned();
                let (seq, ht, ct) = run(cell, &input, go_backwards, h0, c0);
                let seq = if go_backwards {
                    seq.slice(s![.., ..;-1, ..]).to_owned()
                } else {
                    seq
                };
                outputs.push(seq);
                h_n.push(ht);
                c_n.push(ct);
                ld += 1;
            }
            let h = outputs[0].shape()[2];
            let (batch, steps, _) = input.dim();
            input = Array3::from_shape_fn((batch, steps, outputs.len() * h), |(b, t, f)| {
                outputs[f / h][[b, t, f % h]]
            });
        }
        let stacked = |per: &[Array2<f64>]| {
            let (batch, h) = per[0].dim();
            Array3::from_shape_fn((per.len(), batch, h), |(ld, b, j)| per[ld][[b, j]])
        };
        LstmOutput {
            y: input,
            h_n: stacked(&h_n),
            c_n: stacked(&c_n),
        }
    }
}

/// Random ONNX nodes for `config`, drawn in ONNX's own layout.
fn random_onnx_nodes(config: &LstmConfig, seed: u64) -> Vec<LstmNode<f64>> {
    let (dirs, h) = (config.num_directions(), config.hidden_size);
    let direction = if config.bidirectional {
        Direction::Bidirectional
    } else {
        Direction::Forward
    };
    (0..config.num_layers)
        .map(|l| {
            let seed = seed + 10 * l as u64;
            LstmNode {
                direction,
                w: random_array((dirs, 4 * h, config.layer_input_size(l)), seed, -0.6, 0.6),
                r: random_array((dirs, 4 * h, h), seed + 1, -0.6, 0.6),
                b: Some(random_array((dirs, 8 * h), seed + 2, -0.6, 0.6)),
                p: None,
            }
        })
        .collect()
}

/// Random Keras layers for `config`, drawn in Keras' own layout.
fn random_keras_layers(config: &LstmConfig, seed: u64) -> Vec<keras::Layer<f64>> {
    let h = config.hidden_size;
    let cell = |l: usize, seed: u64| LstmCell {
        kernel: random_array((config.layer_input_size(l), 4 * h), seed, -0.6, 0.6),
        recurrent_kernel: random_array((h, 4 * h), seed + 1, -0.6, 0.6),
        bias: Some(random_array(4 * h, seed + 2, -0.6, 0.6)),
    };
    (0..config.num_layers)
        .map(|l| {
            let seed = seed + 10 * l as u64;
            if config.bidirectional {
                keras::Layer::Bidirectional {
                    forward: cell(l, seed),
                    backward: cell(l, seed + 5),
                }
            } else {
                keras::Layer::Lstm(cell(l, seed))
            }
        })
        .collect()
}

fn pytorch_weights(config: LstmConfig, seed: u64) -> LstmWeights<f64> {
    LstmWeights::init_uniform(config, seed)
}

fn one_layer() -> LstmConfig {
    LstmConfig::new(I, H, 1).unwrap()
}

fn two_layers() -> LstmConfig {
    LstmConfig::new(I, H, 2).unwrap()
}

fn projected() -> LstmWeights<f64> {
    pytorch_weights(one_layer().with_proj_size(2).unwrap(), 1)
}

// ---------------------------------------------------------------------------------------------
// ONNX

#[test]
fn pytorch_to_onnx_and_back_is_bit_exact() {
    for (case, config) in cases() {
        let weights = pytorch_weights(config, 3);
        let nodes = onnx::from_pytorch(&weights).unwrap();
        assert_same_weights(case, &onnx::to_pytorch(&nodes).unwrap(), &weights);
    }
}

#[test]
fn onnx_to_pytorch_and_back_is_bit_exact() {
    for (case, config) in cases() {
        let nodes = random_onnx_nodes(&config, 4);
        let back = onnx::from_pytorch(&onnx::to_pytorch(&nodes).unwrap()).unwrap();
        assert_eq!(back.len(), nodes.len(), "{case}: nodes");
        for (l, (a, e)) in back.iter().zip(&nodes).enumerate() {
            assert_eq!(a.direction, e.direction, "{case}: node {l} direction");
            let (a_b, e_b) = (a.b.as_ref().unwrap(), e.b.as_ref().unwrap());
            for (name, a, e) in [
                ("W", a.w.view().into_dyn(), e.w.view().into_dyn()),
                ("R", a.r.view().into_dyn(), e.r.view().into_dyn()),
                ("B", a_b.view().into_dyn(), e_b.view().into_dyn()),
            ] {
                assert_same_bits(&format!("{case}: node {l} {name}"), &a, &e);
            }
        }
    }
}

#[test]
fn onnx_models_converted_to_pytorch_compute_what_onnx_computes() {
    for (case, config) in cases() {
        let nodes = random_onnx_nodes(&config, 5);
        let (x, state) = input_and_state(&config, 6);
        let converted = onnx::to_pytorch(&nodes).unwrap();
        assert_outputs_close(
            case,
            &pytorch_forward(&converted, &x, &state),
            &onnx_semantics::forward_as_pytorch(&nodes, &x, &state),
        );
    }
}

#[test]
fn pytorch_models_converted_to_onnx_compute_under_onnx_semantics_what_they_computed() {
    for (case, config) in cases() {
        let weights = pytorch_weights(config, 7);
        let (x, state) = input_and_state(&config, 8);
        let nodes = onnx::from_pytorch(&weights).unwrap();
        assert_outputs_close(
            case,
            &onnx_semantics::forward_as_pytorch(&nodes, &x, &state),
            &pytorch_forward(&weights, &x, &state),
        );
    }
}

#[test]
fn onnx_gate_blocks_i_o_f_c_become_pytorch_blocks_i_f_g_o() {
    // Every row of ONNX block j (i, o, f, c) holds j + 1; in B, Rb's blocks hold j + 5.
    let h = 2;
    let node = LstmNode {
        direction: Direction::Forward,
        w: Array3::from_shape_fn((1, 4 * h, 1), |(_, row, _)| (row / h + 1) as f64),
        r: Array3::from_shape_fn((1, 4 * h, h), |(_, row, _)| (row / h + 1) as f64),
        b: Some(Array2::from_shape_fn((1, 8 * h), |(_, k)| {
            (k / h + 1) as f64
        })),
        p: None,
    };
    let weights = onnx::to_pytorch(&[node]).unwrap();
    let layer = weights.layer(0, 0);
    let blocks = |v: Vec<f64>| -> Vec<f64> { v.chunks(h).map(|c| c[0]).collect() };
    assert_eq!(
        blocks(layer.weight_ih.column(0).to_vec()),
        [1.0, 3.0, 4.0, 2.0]
    );
    assert_eq!(
        blocks(layer.weight_hh.column(1).to_vec()),
        [1.0, 3.0, 4.0, 2.0]
    );
    assert_eq!(blocks(layer.bias_ih.to_vec()), [1.0, 3.0, 4.0, 2.0]);
    assert_eq!(blocks(layer.bias_hh.to_vec()), [5.0, 7.0, 8.0, 6.0]);
}

#[test]
fn onnx_nodes_without_b_convert_to_a_model_without_biases() {
    let mut nodes = random_onnx_nodes(&one_layer(), 9);
    nodes[0].b = None;
    let weights = onnx::to_pytorch(&nodes).unwrap();
    assert!(!weights.config().bias);
    assert_eq!(weights.layer(0, 0).bias_ih, Array1::<f64>::zeros(4 * H));
    assert_eq!(weights.layer(0, 0).bias_hh, Array1::<f64>::zeros(4 * H));
    // And back: a model without biases leaves B out.
    assert!(onnx::from_pytorch(&weights).unwrap()[0].b.is_none());
}

#[test]
fn one_onnx_node_with_b_gives_every_layer_biases() {
    let mut nodes = random_onnx_nodes(&two_layers(), 9);
    nodes[0].b = None;
    let weights = onnx::to_pytorch(&nodes).unwrap();
    assert!(weights.config().bias);
    assert_eq!(weights.layer(0, 0).bias_ih, Array1::<f64>::zeros(4 * H));
    assert_ne!(weights.layer(1, 0).bias_ih, Array1::<f64>::zeros(4 * H));
}

#[test]
fn zero_onnx_peepholes_convert_as_absent_ones() {
    let mut nodes = random_onnx_nodes(&one_layer(), 10);
    let without = onnx::to_pytorch(&nodes).unwrap();
    nodes[0].p = Some(Array2::zeros((1, 3 * H)));
    assert_eq!(onnx::to_pytorch(&nodes).unwrap(), without);
}

#[test]
fn nonzero_onnx_peepholes_are_a_config_error() {
    let mut nodes = random_onnx_nodes(&one_layer(), 10);
    let mut p = Array2::zeros((1, 3 * H));
    p[[0, 5]] = 0.5;
    nodes[0].p = Some(p);
    assert_config_error(onnx::to_pytorch(&nodes), "ONNX LSTM peepholes", "node 0 P");
}

#[test]
fn an_onnx_w_of_the_wrong_input_size_is_a_shape_error_naming_it() {
    // Node 1 reads node 0's H outputs, not the model's I inputs.
    let mut nodes = random_onnx_nodes(&two_layers(), 11);
    nodes[1].w = Array3::zeros((1, 4 * H, I));
    assert_shape_error(
        onnx::to_pytorch(&nodes),
        "node 1 W",
        &[1, 4 * H, H],
        &[1, 4 * H, I],
    );
}

#[test]
fn an_onnx_w_with_one_direction_in_a_bidirectional_node_is_a_shape_error_naming_it() {
    let config = one_layer().with_bidirectional(true).unwrap();
    let mut nodes = random_onnx_nodes(&config, 12);
    nodes[0].w = Array3::zeros((1, 4 * H, I));
    assert_shape_error(
        onnx::to_pytorch(&nodes),
        "node 0 W",
        &[2, 4 * H, I],
        &[1, 4 * H, I],
    );
}

#[test]
fn an_onnx_r_that_is_not_4h_by_h_is_a_shape_error_naming_it() {
    let mut nodes = random_onnx_nodes(&one_layer(), 13);
    nodes[0].r = Array3::zeros((1, 3 * H, H));
    assert_shape_error(
        onnx::to_pytorch(&nodes),
        "node 0 R",
        &[1, 4 * H, H],
        &[1, 3 * H, H],
    );
}

#[test]
fn onnx_nodes_of_different_hidden_sizes_name_the_odd_r() {
    let mut nodes = random_onnx_nodes(&two_layers(), 14);
    nodes[1].r = Array3::zeros((1, 4 * (H + 1), H + 1));
    assert_shape_error(
        onnx::to_pytorch(&nodes),
        "node 1 R",
        &[1, 4 * H, H],
        &[1, 4 * (H + 1), H + 1],
    );
}

#[test]
fn an_onnx_b_of_the_wrong_length_is_a_shape_error_naming_it() {
    // Only Wb, without Rb.
    let mut nodes = random_onnx_nodes(&one_layer(), 15);
    nodes[0].b = Some(Array2::zeros((1, 4 * H)));
    assert_shape_error(
        onnx::to_pytorch(&nodes),
        "node 0 B",
        &[1, 8 * H],
        &[1, 4 * H],
    );
}

#[test]
fn onnx_direction_strings_are_spelled_as_onnx_spells_them() {
    for direction in [
        Direction::Forward,
        Direction::Reverse,
        Direction::Bidirectional,
    ] {
        assert_eq!(
            direction.to_string().parse::<Direction>().unwrap(),
            direction
        );
    }
    assert_eq!(Direction::Bidirectional.as_str(), "bidirectional");
}

#[test]
fn an_unknown_onnx_direction_string_is_a_config_error() {
    assert_config_error(
        "backward".parse::<Direction>(),
        "ONNX LSTM direction",
        "\"backward\"",
    );
}

#[test]
fn a_lone_reverse_onnx_node_is_a_config_error() {
    let mut nodes = random_onnx_nodes(&one_layer(), 16);
    nodes[0].direction = Direction::Reverse;
    assert_config_error(onnx::to_pytorch(&nodes), "ONNX LSTM direction", "reverse");
}

#[test]
fn onnx_nodes_of_mixed_directions_are_a_config_error() {
    let mut nodes = random_onnx_nodes(&two_layers(), 17);
    nodes[1].direction = Direction::Reverse;
    assert_config_error(onnx::to_pytorch(&nodes), "ONNX LSTM direction", "node 1");
}

#[test]
fn no_onnx_nodes_is_a_config_error() {
    assert_config_error(onnx::to_pytorch::<f64>(&[]), "ONNX LSTM nodes", "no nodes");
}

#[test]
fn a_projected_model_has_no_onnx_form() {
    assert_config_error(onnx::from_pytorch(&projected()), "ONNX LSTM", "proj_size");
}

// ---------------------------------------------------------------------------------------------
// Keras

#[test]
fn keras_to_pytorch_and_back_is_bit_exact() {
    for (case, config) in cases() {
        let layers = random_keras_layers(&config, 20);
        let back = keras::from_pytorch(&keras::to_pytorch(&layers).unwrap()).unwrap();
        assert_eq!(back.len(), layers.len(), "{case}: layers");
        for (l, (a, e)) in back.iter().zip(&layers).enumerate() {
            let cells = |layer: &keras::Layer<f64>| -> Vec<LstmCell<f64>> {
                match layer {
                    keras::Layer::Lstm(cell) => vec![cell.clone()],
                    keras::Layer::Bidirectional { forward, backward } => {
                        vec![forward.clone(), backward.clone()]
                    }
                }
            };
            let (a, e) = (cells(a), cells(e));
            assert_eq!(a.len(), e.len(), "{case}: layer {l} directions");
            for (d, (a, e)) in a.iter().zip(&e).enumerate() {
                let (a_b, e_b) = (a.bias.as_ref().unwrap(), e.bias.as_ref().unwrap());
                for (name, a, e) in [
                    (
                        "kernel",
                        a.kernel.view().into_dyn(),
                        e.kernel.view().into_dyn(),
                    ),
                    (
                        "recurrent_kernel",
                        a.recurrent_kernel.view().into_dyn(),
                        e.recurrent_kernel.view().into_dyn(),
                    ),
                    ("bias", a_b.view().into_dyn(), e_b.view().into_dyn()),
                ] {
                    assert_same_bits(&format!("{case}: layer {l} direction {d} {name}"), &a, &e);
                }
            }
        }
    }
}

#[test]
fn pytorch_to_keras_and_back_keeps_every_weight_and_moves_the_bias_sum_into_bias_ih() {
    for (case, config) in cases() {
        let weights = pytorch_weights(config, 21);
        let back = keras::to_pytorch(&keras::from_pytorch(&weights).unwrap()).unwrap();
        let mut expected = weights.clone();
        for layer in expected.layers_mut() {
            layer.bias_ih = &layer.bias_ih + &layer.bias_hh;
            layer.bias_hh.fill(0.0);
        }
        assert_same_weights(case, &back, &expected);
    }
}

#[test]
fn keras_models_converted_to_pytorch_compute_what_keras_computes() {
    for (case, config) in cases() {
        let layers = random_keras_layers(&config, 22);
        let (x, state) = input_and_state(&config, 23);
        let converted = keras::to_pytorch(&layers).unwrap();
        assert_outputs_close(
            case,
            &pytorch_forward(&converted, &x, &state),
            &keras_semantics::forward_as_pytorch(&layers, &x, &state),
        );
    }
}

#[test]
fn pytorch_models_converted_to_keras_compute_under_keras_semantics_what_they_computed() {
    for (case, config) in cases() {
        let weights = pytorch_weights(config, 24);
        let (x, state) = input_and_state(&config, 25);
        let layers = keras::from_pytorch(&weights).unwrap();
        assert_outputs_close(
            case,
            &keras_semantics::forward_as_pytorch(&layers, &x, &state),
            &pytorch_forward(&weights, &x, &state),
        );
    }
}

#[test]
fn keras_kernels_are_pytorchs_weights_transposed_and_the_bias_goes_to_bias_ih() {
    let layers = random_keras_layers(&one_layer(), 26);
    let keras::Layer::Lstm(cell) = &layers[0] else {
        unreachable!("one_layer is not bidirectional")
    };
    let weights = keras::to_pytorch(&layers).unwrap();
    let layer = weights.layer(0, 0);
    assert_eq!(layer.weight_ih, cell.kernel.t());
    assert_eq!(layer.weight_hh, cell.recurrent_kernel.t());
    assert_eq!(Some(&layer.bias_ih), cell.bias.as_ref());
    assert_eq!(layer.bias_hh, Array1::<f64>::zeros(4 * H));
}

#[test]
fn keras_layers_without_bias_convert_to_a_model_without_biases() {
    let mut layers = random_keras_layers(&one_layer(), 27);
    if let keras::Layer::Lstm(cell) = &mut layers[0] {
        cell.bias = None;
    }
    let weights = keras::to_pytorch(&layers).unwrap();
    assert!(!weights.config().bias);
    assert_eq!(weights.layer(0, 0).bias_ih, Array1::<f64>::zeros(4 * H));
    assert_eq!(weights.layer(0, 0).bias_hh, Array1::<f64>::zeros(4 * H));
    // And back: a model without biases has no Keras bias.
    match &keras::from_pytorch(&weights).unwrap()[0] {
        keras::Layer::Lstm(cell) => assert!(cell.bias.is_none()),
        other => panic!("expected a plain LSTM layer, got {other:?}"),
    }
}

#[test]
fn a_keras_kernel_of_the_wrong_input_size_is_a_shape_error_naming_it() {
    // Layer 1 reads layer 0's H outputs, not the model's I inputs.
    let mut layers = random_keras_layers(&two_layers(), 28);
    if let keras::Layer::Lstm(cell) = &mut layers[1] {
        cell.kernel = Array2::zeros((I, 4 * H));
    }
    assert_shape_error(
        keras::to_pytorch(&layers),
        "layer 1 kernel",
        &[H, 4 * H],
        &[I, 4 * H],
    );
}

#[test]
fn a_keras_recurrent_kernel_that_is_not_h_by_4h_is_a_shape_error_naming_it() {
    // PyTorch's [4H, H] orientation, not Keras' [H, 4H].
    let mut layers = random_keras_layers(&one_layer(), 29);
    if let keras::Layer::Lstm(cell) = &mut layers[0] {
        cell.recurrent_kernel = Array2::zeros((4 * H, H));
    }
    assert_shape_error(
        keras::to_pytorch(&layers),
        "layer 0 recurrent_kernel",
        &[4 * H, 16 * H],
        &[4 * H, H],
    );
}

#[test]
fn a_keras_bias_of_the_wrong_length_is_a_shape_error_naming_it() {
    let mut layers = random_keras_layers(&one_layer(), 30);
    if let keras::Layer::Lstm(cell) = &mut layers[0] {
        cell.bias = Some(Array1::zeros(8 * H));
    }
    assert_shape_error(
        keras::to_pytorch(&layers),
        "layer 0 bias",
        &[4 * H],
        &[8 * H],
    );
}

#[test]
fn a_backward_keras_layer_of_another_size_is_named_as_the_backward_one() {
    let config = one_layer().with_bidirectional(true).unwrap();
    let mut layers = random_keras_layers(&config, 31);
    if let keras::Layer::Bidirectional { backward, .. } = &mut layers[0] {
        backward.recurrent_kernel = Array2::zeros((H + 1, 4 * (H + 1)));
    }
    assert_shape_error(
        keras::to_pytorch(&layers),
        "layer 0 backward recurrent_kernel",
        &[H, 4 * H],
        &[H + 1, 4 * (H + 1)],
    );
}

#[test]
fn plain_and_bidirectional_keras_layers_in_one_stack_are_a_config_error() {
    let mut layers = random_keras_layers(&two_layers(), 32);
    let bidirectional = one_layer().with_bidirectional(true).unwrap();
    layers[1] = random_keras_layers(&bidirectional, 33).remove(0);
    assert_config_error(keras::to_pytorch(&layers), "Keras LSTM layers", "layer 1");
}

#[test]
fn no_keras_layers_is_a_config_error() {
    assert_config_error(
        keras::to_pytorch::<f64>(&[]),
        "Keras LSTM layers",
        "no layers",
    );
}

#[test]
fn a_projected_model_has_no_keras_form() {
    assert_config_error(keras::from_pytorch(&projected()), "Keras LSTM", "proj_size");
}

#[test]
fn f32_weights_convert_as_f64_ones_do() {
    let config = two_layers().with_bidirectional(true).unwrap();
    let weights = LstmWeights::<f32>::init_uniform(config, 34);
    let back = onnx::to_pytorch(&onnx::from_pytorch(&weights).unwrap()).unwrap();
    assert_same_weights("f32", &back.cast(), &weights.cast());
    let nodes32 = onnx::from_pytorch(&weights).unwrap();
    let nodes64 = onnx::from_pytorch(&weights.cast::<f64>()).unwrap();
    for (l, (a, e)) in nodes32.iter().zip(&nodes64).enumerate() {
        let a = a.w.mapv(f64::from);
        assert_same_bits(
            &format!("f32 node {l} W"),
            &a.view().into_dyn(),
            &e.w.view().into_dyn(),
        );
    }
}
