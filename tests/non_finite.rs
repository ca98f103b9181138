//! NaN and ±∞ follow IEEE-754 arithmetic, as in PyTorch, and identically on the CPU and the GPU:
//! a NaN reaches exactly the outputs and gradients that depend on it, an infinity saturates the
//! gates it enters, and both devices classify every element the same way.
mod common;

use common::{gpu, random_array, random_state, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, ops};
use lstm_wgpu::ndarray::{Array2, Array3, ArrayD, ArrayViewD, Dimension};
use lstm_wgpu::{
    GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, LstmState, LstmWeights, Upstream,
};

/// The IEEE class of a value: what must agree exactly between the devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Finite,
    PosInf,
    NegInf,
    Nan,
}

fn class(v: f32) -> Class {
    match v {
        v if v.is_nan() => Class::Nan,
        v if v.is_finite() => Class::Finite,
        v if v > 0.0 => Class::PosInf,
        _ => Class::NegInf,
    }
}

// Finite elements are compared like the GPU forward and backward tests (different summation
// orders and exp, ~1e-6 of the largest finite magnitude on lavapipe); 2e-5 still catches a
// missing term.
const RTOL: f64 = 2e-5;

/// Asserts that `gpu` and `cpu` have the same IEEE class at every index and that their finite
/// elements agree; returns the classes. On failure, names the first index that differs.
fn same_classes(what: &str, gpu: ArrayViewD<'_, f32>, cpu: ArrayViewD<'_, f32>) -> ArrayD<Class> {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shape");
    let scale = cpu
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    for ((index, &g), &c) in gpu.indexed_iter().zip(cpu.iter()) {
        assert_eq!(
            class(g),
            class(c),
            "{what}{:?}: GPU {g}, CPU {c}",
            index.slice()
        );
        if class(c) == Class::Finite {
            let err = (g as f64 - c as f64).abs();
            assert!(
                err <= RTOL * scale.max(1e-30),
                "{what}{:?}: GPU {g}, CPU {c}, |diff| {err:e} > {RTOL:e} * {scale:e}",
                index.slice()
            );
        }
    }
    cpu.mapv(class)
}

/// Asserts that the class of `a[index]` is `want(index)` everywhere.
fn classes_are(what: &str, classes: &ArrayD<Class>, want: impl Fn(&[usize]) -> Class) {
    for (index, &c) in classes.indexed_iter() {
        let w = want(index.slice());
        assert_eq!(c, w, "{what}{:?}", index.slice());
    }
}

fn nan_if(poisoned: bool) -> Class {
    if poisoned { Class::Nan } else { Class::Finite }
}

const B: usize = 3;
const T: usize = 6;
const I: usize = 5;
const H: usize = 8;
const L: usize = 2;

fn weights() -> LstmWeights<f32> {
    random_weights(LstmConfig::new(I, H, L).unwrap(), 41, 1.0)
}

fn x() -> Array3<f32> {
    random_array((B, T, I), 42, -1.0, 1.0)
}

/// The forward on both devices, compared class by class: the CPU's classes of `y`, `h_n`, `c_n`.
fn forward_both(
    w: &LstmWeights<f32>,
    x: &Array3<f32>,
    state: Option<&LstmState<f32>>,
) -> [ArrayD<Class>; 3] {
    let cpu: LstmOutput<f32> = CpuLstm::new(w.clone())
        .unwrap()
        .forward(x.view(), state)
        .unwrap();
    let gpu = GpuLstm::new(&gpu(), w)
        .unwrap()
        .forward(x.view(), state)
        .unwrap();
    [
        same_classes("y", gpu.y.view().into_dyn(), cpu.y.view().into_dyn()),
        same_classes("h_n", gpu.h_n.view().into_dyn(), cpu.h_n.view().into_dyn()),
        same_classes("c_n", gpu.c_n.view().into_dyn(), cpu.c_n.view().into_dyn()),
    ]
}

#[test]
fn a_nan_in_x_reaches_exactly_its_sequence_from_its_step_on() {
    let mut x = x();
    x[[1, 2, 3]] = f32::NAN;
    let [y, h_n, c_n] = forward_both(&weights(), &x, None);
    classes_are("y", &y, |i| nan_if(i[0] == 1 && i[1] >= 2));
    classes_are("h_n", &h_n, |i| nan_if(i[1] == 1));
    classes_are("c_n", &c_n, |i| nan_if(i[1] == 1));
}

#[test]
fn a_nan_in_the_initial_state_reaches_its_sequence_in_its_layer_and_above() {
    let config = *weights().config();
    let mut state = random_state(&config, B, 43);
    state.h[[0, 2, 4]] = f32::NAN; // layer 0, sequence 2
    state.c[[1, 0, 0]] = f32::NAN; // layer 1, sequence 0
    let [y, h_n, c_n] = forward_both(&weights(), &x(), Some(&state));
    // h0 enters through W_hh (every unit at once), c0 through its own unit only, and only from
    // step 1 on does W_hh spread that unit's NaN to the others.
    classes_are("y", &y, |i| {
        nan_if(i[0] == 2 || (i[0] == 0 && (i[1] >= 1 || i[2] == 0)))
    });
    // Layer 0 of sequence 0 never sees the NaN of layer 1.
    let poisoned = |i: &[usize]| nan_if(i[1] == 2 || (i[1] == 0 && i[0] == 1));
    classes_are("h_n", &h_n, poisoned);
    classes_are("c_n", &c_n, poisoned);
}

#[test]
fn a_nan_weight_reaches_every_output_even_through_a_zero_initial_state() {
    // PyTorch multiplies the zero h0 by W_hh like any state: 0 · NaN is NaN at step 0 too.
    let mut w = weights();
    w.layers_mut()[0].weight_hh[[3, 1]] = f32::NAN;
    let [y, h_n, c_n] = forward_both(&w, &x(), None);
    classes_are("y", &y, |_| Class::Nan);
    classes_are("h_n", &h_n, |_| Class::Nan);
    classes_are("c_n", &c_n, |_| Class::Nan);
}

#[test]
fn an_infinite_input_saturates_the_gates_it_enters_and_leaves_the_outputs_finite() {
    // One infinite feature makes every gate preactivation of that step ±∞ (no weight is 0):
    // sigmoid and tanh saturate to 0, 1 or ±1, and the cell stays finite.
    let mut x = x();
    x[[0, 1, 2]] = f32::INFINITY;
    x[[2, 3, 0]] = f32::NEG_INFINITY;
    let [y, h_n, c_n] = forward_both(&weights(), &x, None);
    classes_are("y", &y, |_| Class::Finite);
    classes_are("h_n", &h_n, |_| Class::Finite);
    classes_are("c_n", &c_n, |_| Class::Finite);
}

#[test]
fn opposite_infinities_in_one_step_give_nan_where_ieee_arithmetic_does() {
    // +∞·w_a + -∞·w_b is NaN when w_a and w_b have the same sign, ±∞ otherwise: gate by gate,
    // so some units of that step become NaN and the rest saturate. Both devices must agree on
    // which, element by element (same_classes), and some of each must occur.
    let mut x = x();
    x[[1, 2, 0]] = f32::INFINITY;
    x[[1, 2, 1]] = f32::NEG_INFINITY;
    let [y, _, _] = forward_both(&weights(), &x, None);
    assert!(y.iter().any(|&c| c == Class::Nan), "no NaN at all");
    assert!(
        y.indexed_iter()
            .all(|(i, &c)| c == Class::Finite || (i[0] == 1 && i[1] >= 2)),
        "a NaN outside sequence 1 from step 2 on"
    );
}

#[test]
fn an_infinite_initial_cell_stays_infinite_while_the_hidden_state_saturates() {
    // c = f·(+∞) + i·g stays +∞ (f > 0), and h = o·tanh(+∞) = o is finite.
    let config = *weights().config();
    let mut state = random_state(&config, B, 44);
    state.c[[1, 1, 5]] = f32::INFINITY;
    let [y, h_n, c_n] = forward_both(&weights(), &x(), Some(&state));
    classes_are("y", &y, |_| Class::Finite);
    classes_are("h_n", &h_n, |_| Class::Finite);
    classes_are("c_n", &c_n, |i| {
        if i == [1, 1, 5] {
            Class::PosInf
        } else {
            Class::Finite
        }
    });
}

fn backward_both(upstream: &Upstream<f32>) -> [ArrayD<Class>; 4] {
    let (w, x) = (weights(), x());
    let grads = |lstm: &mut dyn Lstm| -> LstmGrads<f32> {
        lstm.forward_backward(x.view(), None, upstream, GradRequest::ALL)
            .unwrap()
            .1
    };
    let cpu = grads(&mut CpuLstm::new(w.clone()).unwrap());
    let gpu = grads(&mut GpuLstm::new(&gpu(), &w).unwrap());
    let v = |g: &Option<Array3<f32>>| g.as_ref().unwrap().view().into_dyn().to_owned();
    let dw = |g: &LstmGrads<f32>| {
        let l = &g.layers.as_ref().unwrap()[0];
        l.weight_ih.view().into_dyn().to_owned()
    };
    let db = |g: &LstmGrads<f32>| {
        let l = &g.layers.as_ref().unwrap()[1];
        l.bias_hh.view().into_dyn().to_owned()
    };
    [
        same_classes("dx", v(&gpu.x).view(), v(&cpu.x).view()),
        same_classes("dh0", v(&gpu.h0).view(), v(&cpu.h0).view()),
        same_classes("dweight_ih_l0", dw(&gpu).view(), dw(&cpu).view()),
        same_classes("dbias_hh_l1", db(&gpu).view(), db(&cpu).view()),
    ]
}

#[test]
fn a_nan_upstream_gradient_reaches_exactly_the_gradients_that_depend_on_it() {
    let mut dy: Array3<f32> = random_array((B, T, H), 45, -1.0, 1.0);
    dy[[1, 3, 2]] = f32::NAN;
    let upstream = Upstream {
        dy: Some(dy),
        ..Upstream::default()
    };
    let [dx, dh0, dw_ih, db_hh] = backward_both(&upstream);
    // y[1, 3] depends on x[1, ..=3] and on sequence 1's initial state only.
    classes_are("dx", &dx, |i| nan_if(i[0] == 1 && i[1] <= 3));
    classes_are("dh0", &dh0, |i| nan_if(i[1] == 1));
    // Every parameter gradient sums over all sequences and steps.
    classes_are("dweight_ih_l0", &dw_ih, |_| Class::Nan);
    classes_are("dbias_hh_l1", &db_hh, |_| Class::Nan);
}

#[test]
fn an_infinite_final_cell_gradient_gives_the_same_classes_on_both_devices() {
    let mut dc_n: Array3<f32> = random_array((L, B, H), 46, -1.0, 1.0);
    dc_n[[0, 2, 7]] = f32::INFINITY;
    let upstream = Upstream {
        dc_n: Some(dc_n),
        ..Upstream::default()
    };
    let [dx, _, _, db_hh] = backward_both(&upstream);
    // Sequence 0 and 1 never see it; layer 1's parameters only through layer 0's output, which
    // the cell gradient of layer 0 does not reach.
    assert!(
        dx.indexed_iter()
            .all(|(i, &c)| c == Class::Finite || i[0] == 2),
        "a non-finite dx outside sequence 2"
    );
    assert!(dx.iter().any(|&c| c != Class::Finite), "∞ vanished from dx");
    classes_are("dbias_hh_l1", &db_hh, |_| Class::Finite);
}

#[test]
fn a_row_of_logits_with_a_nan_or_an_infinity_has_a_nan_loss_and_gradient_on_both_devices() {
    let mut logits: Array2<f32> = random_array((5, 4), 47, -3.0, 3.0);
    logits[[1, 2]] = f32::NAN;
    logits[[3, 0]] = f32::INFINITY;
    logits[[4, 1]] = f32::NAN; // a padding row: ignored, as its label says
    let labels = [0, 1, 2, 3, 4];
    let want = lstm_wgpu::cpu::cross_entropy::cross_entropy(logits.view(), &labels).unwrap();
    let (dlogits, metrics) = ops::cross_entropy(&gpu(), logits.view(), &labels).unwrap();
    let d = same_classes(
        "dlogits",
        dlogits.view().into_dyn(),
        want.dlogits.view().into_dyn(),
    );
    classes_are("dlogits", &d, |i| nan_if(i[0] == 1 || i[0] == 3));
    assert!(want.loss_sum.is_nan() && metrics[0].is_nan(), "loss");
    // Rows 1 and 3 are not counted correct whatever their largest logit; count is 4 valid rows.
    assert_eq!(metrics[1] as usize, want.correct, "correct");
    assert_eq!((metrics[2] as usize, want.count), (4, 4), "count");
    let finite_rows = [0usize, 2];
    let correct: usize = finite_rows
        .iter()
        .filter(|&&r| {
            let row = logits.row(r);
            let best = (0..4).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            best == labels[r] as usize
        })
        .count();
    assert_eq!(want.correct, correct, "CPU correct");
}

#[test]
fn a_nan_gradient_gives_a_nan_clip_scale_and_an_infinite_one_scale_zero() {
    use lstm_wgpu::cpu::grad_norm::{clip_scale, grad_norm};
    for (g, scale_class) in [(f32::NAN, Class::Nan), (f32::INFINITY, Class::Finite)] {
        let grads = vec![0.5, g, -1.0];
        let (norm, scale) = ops::grad_norm(&gpu(), &grads, 1.0).unwrap();
        let cpu_norm = grad_norm([grads.as_slice()]);
        assert_eq!(class(norm), class(cpu_norm), "norm of {g}");
        let cpu_scale = clip_scale(cpu_norm, 1.0);
        assert_eq!((class(scale), class(cpu_scale)), (scale_class, scale_class));
        if scale_class == Class::Finite {
            assert_eq!((scale, cpu_scale), (0.0, 0.0), "scale for an infinite norm");
        }
    }
}

#[test]
fn the_nonlinearities_pass_a_nan_through_and_saturate_at_infinity() {
    use lstm_wgpu::activations::{sigmoid, tanh_stable};
    assert!(sigmoid(f32::NAN).is_nan() && tanh_stable(f32::NAN).is_nan());
    assert_eq!(sigmoid(f32::INFINITY), 1.0);
    assert!((0.0..1e-37).contains(&sigmoid(f32::NEG_INFINITY)));
    assert_eq!(tanh_stable(f32::INFINITY), 1.0);
    assert_eq!(tanh_stable(f32::NEG_INFINITY), -1.0);
}
