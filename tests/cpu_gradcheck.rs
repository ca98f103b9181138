//! The CPU backward pass against central finite differences of the forward pass, in float64.
//!
//! Loss: `L = Σ y·R + Σ h_n·Rh + Σ c_n·Rc` with fixed random `R`, `Rh`, `Rc`, so the upstream
//! gradients of backward are exactly `R`, `Rh`, `Rc`.
mod common;

use common::{assert_close, random_array};
use lstm_wgpu::cpu::lstm::{backward, forward, forward_train};
use lstm_wgpu::ndarray::{Array3, ArrayD};
use lstm_wgpu::{LstmConfig, LstmState, LstmWeights, Upstream};

struct Case {
    w: LstmWeights<f64>,
    x: Array3<f64>,
    state: LstmState<f64>,
    up: Upstream<f64>,
}

/// Two layers, sizes that are all different so a transposed index cannot go unnoticed.
fn case() -> Case {
    let (b, t, i, h, l) = (2, 5, 3, 4, 2);
    let config = LstmConfig::new(i, h, l).unwrap();
    let mut w = LstmWeights::<f64>::init_uniform(config, 11);
    // Larger weights than the default init, so the gates leave their linear region.
    for layer in w.layers_mut() {
        layer.weight_ih *= 2.0;
        layer.weight_hh *= 2.0;
    }
    Case {
        w,
        x: random_array((b, t, i), 1, -1.0, 1.0),
        state: LstmState {
            h: random_array((l, b, h), 2, -1.0, 1.0),
            c: random_array((l, b, h), 3, -1.0, 1.0),
        },
        up: Upstream {
            dy: Some(random_array((b, t, h), 4, -1.0, 1.0)),
            dh_n: Some(random_array((l, b, h), 5, -1.0, 1.0)),
            dc_n: Some(random_array((l, b, h), 6, -1.0, 1.0)),
        },
    }
}

fn loss(c: &Case, w: &LstmWeights<f64>, x: &Array3<f64>, state: &LstmState<f64>) -> f64 {
    let out = forward(w, x.view(), Some(state)).unwrap();
    let dot = |a: &Array3<f64>, b: &Option<Array3<f64>>| (a * b.as_ref().unwrap()).sum();
    dot(&out.y, &c.up.dy) + dot(&out.h_n, &c.up.dh_n) + dot(&out.c_n, &c.up.dc_n)
}

/// Central difference of the loss over every element that `get` selects (a mutable element of
/// a copy of the case).
fn numeric<G>(c: &Case, len: usize, shape: &[usize], mut poke: G) -> ArrayD<f64>
where
    G: FnMut(&mut LstmWeights<f64>, &mut Array3<f64>, &mut LstmState<f64>, usize, f64),
{
    // eps = 1e-6: truncation error ~eps² ≈ 1e-12, rounding ~1e-16/eps ≈ 1e-10.
    let eps = 1e-6;
    let mut out = Vec::with_capacity(len);
    for k in 0..len {
        let f = |d: f64, poke: &mut G| {
            let (mut w, mut x, mut s) = (c.w.clone(), c.x.clone(), c.state.clone());
            poke(&mut w, &mut x, &mut s, k, d);
            loss(c, &w, &x, &s)
        };
        out.push((f(eps, &mut poke) - f(-eps, &mut poke)) / (2.0 * eps));
    }
    ArrayD::from_shape_vec(shape.to_vec(), out).unwrap()
}

fn analytic(c: &Case) -> lstm_wgpu::LstmGrads<f64> {
    let (_, tape) = forward_train(&c.w, c.x.view(), Some(&c.state)).unwrap();
    backward(&c.w, &tape, &c.up).unwrap()
}

// The finite differences are good to ~1e-9 absolute (see `numeric`); gradients here are O(1).
const ATOL: f64 = 1e-8;
const RTOL: f64 = 1e-7;

#[test]
fn weight_gradients_match_finite_differences() {
    let c = case();
    let grads = analytic(&c);
    for (l, g) in grads.layers.as_ref().unwrap().iter().enumerate() {
        for (p, (name, view)) in g.named(l, 0).into_iter().enumerate() {
            let shape = view.shape().to_vec();
            let num = numeric(&c, view.len(), &shape, |w, _, _, k, d| {
                let layer = &mut w.layers_mut()[l];
                let slot = match p {
                    0 => layer.weight_ih.iter_mut().nth(k),
                    1 => layer.weight_hh.iter_mut().nth(k),
                    2 => layer.bias_ih.iter_mut().nth(k),
                    _ => layer.bias_hh.iter_mut().nth(k),
                };
                *slot.unwrap() += d;
            });
            assert_close(&format!("d{name}"), view, num.view(), ATOL, RTOL);
        }
    }
}

#[test]
fn input_gradient_matches_finite_differences() {
    let c = case();
    let grads = analytic(&c);
    let dx = grads.x.unwrap();
    let num = numeric(&c, dx.len(), dx.shape(), |_, x, _, k, d| {
        *x.iter_mut().nth(k).unwrap() += d
    });
    assert_close("dx", dx.view().into_dyn(), num.view(), ATOL, RTOL);
}

#[test]
fn initial_state_gradients_match_finite_differences() {
    let c = case();
    let grads = analytic(&c);
    let dh0 = grads.h0.unwrap();
    let num = numeric(&c, dh0.len(), dh0.shape(), |_, _, s, k, d| {
        *s.h.iter_mut().nth(k).unwrap() += d
    });
    assert_close("dh0", dh0.view().into_dyn(), num.view(), ATOL, RTOL);
    let dc0 = grads.c0.unwrap();
    let num = numeric(&c, dc0.len(), dc0.shape(), |_, _, s, k, d| {
        *s.c.iter_mut().nth(k).unwrap() += d
    });
    assert_close("dc0", dc0.view().into_dyn(), num.view(), ATOL, RTOL);
}
