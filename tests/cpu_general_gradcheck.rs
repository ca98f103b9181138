//! Backward of every `nn.LSTM` variant on the CPU against central finite differences of its
//! forward pass, in float64: both directions, projection, variable lengths, dropout with a fixed
//! mask, and a three-layer stack (whose middle layer both receives and sends gradients).
//!
//! Loss: `L = Σ y·R + Σ h_n·Rh + Σ c_n·Rc` with fixed random `R`, `Rh`, `Rc`, so the upstream
//! gradients are exactly `R`, `Rh`, `Rc`.
mod common;

use common::{assert_close, random_array};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::{Array3, ArrayD};
use lstm_wgpu::{Dropout, GradRequest, Lstm, LstmConfig, LstmState, LstmWeights, Upstream};

struct Case {
    w: LstmWeights<f64>,
    x: Array3<f64>,
    lengths: Vec<usize>,
    state: LstmState<f64>,
    up: Upstream<f64>,
    dropout: Option<Dropout>,
}

/// A case of `config` over `lengths.len()` sequences of `seq` steps; `R` is zero past each
/// length (those outputs are constant zeros).
fn case(config: LstmConfig, seq: usize, lengths: &[usize], dropout: Option<Dropout>) -> Case {
    let b = lengths.len();
    let mut w = LstmWeights::<f64>::init_uniform(config, 11);
    // Larger weights than the default init, so the gates leave their linear region.
    for layer in w.layers_mut() {
        layer.weight_ih *= 2.0;
        layer.weight_hh *= 2.0;
    }
    let ld = config.num_layers * config.num_directions();
    let (h_out, h) = (config.output_size(), config.hidden_size);
    let mut dy: Array3<f64> = random_array((b, seq, config.layer_output_size()), 4, -1.0, 1.0);
    for (row, &n) in lengths.iter().enumerate() {
        dy.slice_mut(lstm_wgpu::ndarray::s![row, n.., ..]).fill(0.0);
    }
    Case {
        w,
        x: random_array((b, seq, config.input_size), 1, -1.0, 1.0),
        lengths: lengths.to_vec(),
        state: LstmState {
            h: random_array((ld, b, h_out), 2, -1.0, 1.0),
            c: random_array((ld, b, h), 3, -1.0, 1.0),
        },
        up: Upstream {
            dy: Some(dy),
            dh_n: Some(random_array((ld, b, h_out), 5, -1.0, 1.0)),
            dc_n: Some(random_array((ld, b, h), 6, -1.0, 1.0)),
        },
        dropout,
    }
}

/// A model of `w` in training mode with the case's dropout at its fixed pass.
fn model(c: &Case, w: &LstmWeights<f64>) -> CpuLstm<f64> {
    let mut lstm = CpuLstm::new(w.clone()).unwrap();
    lstm.set_dropout(c.dropout).unwrap();
    lstm
}

fn loss(c: &Case, w: &LstmWeights<f64>, x: &Array3<f64>, state: &LstmState<f64>) -> f64 {
    let (out, _) = model(c, w)
        .forward_train_lengths(x.view(), &c.lengths, Some(state))
        .unwrap();
    let dot = |a: &Array3<f64>, b: &Option<Array3<f64>>| (a * b.as_ref().unwrap()).sum();
    dot(&out.y, &c.up.dy) + dot(&out.h_n, &c.up.dh_n) + dot(&out.c_n, &c.up.dc_n)
}

type Poke<'a> =
    dyn FnMut(&mut LstmWeights<f64>, &mut Array3<f64>, &mut LstmState<f64>, usize, f64) + 'a;

/// Central differences of the loss over `len` elements that `poke` moves by `d`.
fn numeric(c: &Case, len: usize, shape: &[usize], poke: &mut Poke<'_>) -> ArrayD<f64> {
    // eps = 1e-6: truncation error ~eps² ≈ 1e-12, rounding ~1e-16/eps ≈ 1e-10.
    let eps = 1e-6;
    let mut out = Vec::with_capacity(len);
    for k in 0..len {
        let mut f = |d: f64| {
            let (mut w, mut x, mut s) = (c.w.clone(), c.x.clone(), c.state.clone());
            poke(&mut w, &mut x, &mut s, k, d);
            loss(c, &w, &x, &s)
        };
        out.push((f(eps) - f(-eps)) / (2.0 * eps));
    }
    ArrayD::from_shape_vec(shape.to_vec(), out).unwrap()
}

// The finite differences are good to ~1e-9 absolute (see `numeric`); gradients here are O(1).
const ATOL: f64 = 1e-8;
const RTOL: f64 = 1e-7;

/// Every gradient of the case (x, h0, c0, every parameter of every layer and direction)
/// against finite differences.
fn check(what: &str, c: &Case) {
    let mut lstm = model(c, &c.w);
    let (_, tape) = lstm
        .forward_train_lengths(c.x.view(), &c.lengths, Some(&c.state))
        .unwrap();
    let g = lstm.backward(&tape, &c.up, GradRequest::ALL).unwrap();

    let dx = g.x.unwrap();
    let num = numeric(c, c.x.len(), c.x.shape(), &mut |_, x, _, k, d| {
        x.as_slice_mut().unwrap()[k] += d
    });
    assert_close(
        &format!("{what} dx"),
        dx.view().into_dyn(),
        num.view(),
        ATOL,
        RTOL,
    );
    let (dh0, dc0) = (g.h0.unwrap(), g.c0.unwrap());
    let num = numeric(c, dh0.len(), dh0.shape(), &mut |_, _, s, k, d| {
        s.h.as_slice_mut().unwrap()[k] += d
    });
    assert_close(
        &format!("{what} dh0"),
        dh0.view().into_dyn(),
        num.view(),
        ATOL,
        RTOL,
    );
    let num = numeric(c, dc0.len(), dc0.shape(), &mut |_, _, s, k, d| {
        s.c.as_slice_mut().unwrap()[k] += d
    });
    assert_close(
        &format!("{what} dc0"),
        dc0.view().into_dyn(),
        num.view(),
        ATOL,
        RTOL,
    );

    let dirs = c.w.config().num_directions();
    for (ld, layer) in g.layers.unwrap().iter().enumerate() {
        for (p, (name, view)) in layer.named(ld / dirs, ld % dirs).into_iter().enumerate() {
            let num = numeric(c, view.len(), view.shape(), &mut |w, _, _, k, d| {
                let mut t = w.layers_mut()[ld].views_mut().swap_remove(p);
                t.as_slice_mut().unwrap()[k] += d;
            });
            assert_close(&format!("{what} d{name}"), view, num.view(), ATOL, RTOL);
        }
    }
}

fn config(i: usize, h: usize, l: usize) -> LstmConfig {
    LstmConfig::new(i, h, l).unwrap()
}

#[test]
fn a_bidirectional_layer_matches_finite_differences() {
    let c = case(
        config(3, 4, 1).with_bidirectional(true).unwrap(),
        5,
        &[5, 5],
        None,
    );
    check("bidirectional", &c);
}

#[test]
fn a_projected_layer_matches_finite_differences() {
    let c = case(config(3, 5, 1).with_proj_size(2).unwrap(), 4, &[4, 4], None);
    check("projected", &c);
}

#[test]
fn variable_lengths_match_finite_differences() {
    let c = case(config(3, 4, 1), 5, &[5, 2, 1], None);
    check("variable lengths", &c);
}

#[test]
fn variable_lengths_in_a_bidirectional_projected_layer_match_finite_differences() {
    let conf = config(2, 4, 1)
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(3)
        .unwrap();
    let c = case(conf, 4, &[2, 4, 1], None);
    check("bidirectional projected variable lengths", &c);
}

#[test]
fn dropout_with_a_fixed_mask_matches_finite_differences() {
    let dropout = Dropout::new(0.4, 3).unwrap().at_pass(5);
    let c = case(config(3, 4, 2), 4, &[4, 4], Some(dropout));
    check("dropout", &c);
}

#[test]
fn a_three_layer_stack_matches_finite_differences() {
    let conf = config(2, 3, 3).with_bidirectional(true).unwrap();
    let c = case(conf, 4, &[4, 3], Some(Dropout::new(0.3, 8).unwrap()));
    check("three layers", &c);
}
