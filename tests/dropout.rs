//! Dropout between stacked layers (PyTorch `nn.LSTM(dropout=p)`): where it applies, its masks,
//! and what it leaves alone.
mod common;

use common::{assert_close, random_array};
use lstm_wgpu::cpu::dropout::{dropout, mask_bits};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::{Array3, Axis};
use lstm_wgpu::{Dropout, Error, Lstm, LstmConfig, LstmWeights};

fn two_layers() -> LstmWeights<f64> {
    LstmWeights::init_uniform(LstmConfig::new(3, 5, 2).unwrap(), 11)
}

#[test]
fn a_probability_outside_zero_to_one_is_a_config_error() {
    for p in [-0.1, 1.0, 1.5, f32::NAN] {
        assert!(
            matches!(Dropout::new(p, 0), Err(Error::Config { .. })),
            "p = {p}"
        );
    }
    assert!(Dropout::new(0.0, 0).is_ok());
}

/// Over n = 10⁶ draws the kept count is binomial(n, 1 - p): within 6 standard deviations of
/// its mean unless the generator is biased (a fair generator leaves it by chance with
/// probability ~2e-9). Kept elements are scaled by exactly `1 / (1 - p)`.
#[test]
fn the_kept_fraction_lies_within_binomial_bounds_and_kept_values_are_scaled() {
    for (p, seed) in [(0.1f32, 1u64), (0.5, 2), (0.8, 3)] {
        let d = Dropout::new(p, seed).unwrap().at_pass(7);
        let n = 1_000_000usize;
        let ones = vec![1.0f32; n];
        let mut out = vec![0.0f32; n];
        dropout(&ones, &mut out, d.key(1), d.threshold(), d.scale());
        let kept = out.iter().filter(|&&v| v != 0.0).count() as f64;
        let q = 1.0 - f64::from(p);
        let (mean, sd) = (n as f64 * q, (n as f64 * q * (1.0 - q)).sqrt());
        assert!(
            (kept - mean).abs() < 6.0 * sd,
            "p = {p}: kept {kept}, expected {mean} ± {sd}"
        );
        assert!(out.iter().all(|&v| v == 0.0 || v == d.scale()), "p = {p}");
    }
}

#[test]
fn the_same_seed_pass_and_layer_give_the_same_mask_and_any_other_gives_another() {
    let d = Dropout::new(0.5, 42).unwrap().at_pass(3);
    let mask = |d: &Dropout, layer| -> Vec<bool> {
        (0..4096u32)
            .map(|i| mask_bits(d.key(layer), i) >= d.threshold())
            .collect()
    };
    let base = mask(&d, 0);
    assert_eq!(base, mask(&Dropout::new(0.5, 42).unwrap().at_pass(3), 0));
    for (what, other) in [
        ("another pass", mask(&d.at_pass(4), 0)),
        ("another layer", mask(&d, 1)),
        (
            "another seed",
            mask(&Dropout::new(0.5, 43).unwrap().at_pass(3), 0),
        ),
    ] {
        let differ = base.iter().zip(&other).filter(|(a, b)| a != b).count();
        // Independent fair masks differ in half the places: 2048 ± 32.
        assert!(
            (1800..2300).contains(&differ),
            "{what}: {differ} of 4096 differ"
        );
    }
}

#[test]
fn inference_ignores_dropout() {
    let x: Array3<f64> = random_array((2, 4, 3), 1, -1.0, 1.0);
    let mut plain = CpuLstm::new(two_layers()).unwrap();
    let want = plain.forward(x.view(), None).unwrap();
    let mut dropped = CpuLstm::new(two_layers()).unwrap();
    dropped
        .set_dropout(Some(Dropout::new(0.5, 9).unwrap()))
        .unwrap();
    assert_eq!(dropped.forward(x.view(), None).unwrap(), want);
    // Nor does an inference call advance the pass.
    assert_eq!(dropped.dropout().unwrap().pass, 0);
}

#[test]
fn a_single_layer_drops_nothing_in_training() {
    let w = LstmWeights::<f64>::init_uniform(LstmConfig::new(3, 5, 1).unwrap(), 2);
    let x: Array3<f64> = random_array((2, 4, 3), 1, -1.0, 1.0);
    let want = CpuLstm::new(w.clone())
        .unwrap()
        .forward(x.view(), None)
        .unwrap();
    let mut lstm = CpuLstm::new(w).unwrap();
    lstm.set_dropout(Some(Dropout::new(0.9, 9).unwrap()))
        .unwrap();
    let (got, _) = lstm.forward_train(x.view(), None).unwrap();
    assert_close(
        "y",
        got.y.view().into_dyn(),
        want.y.view().into_dyn(),
        0.0,
        1e-14,
    );
}

/// Layer 1 of a two-layer model in training reads layer 0's output through the mask of layer 0
/// in the current pass: the same as running the layers as two models with the mask applied
/// between them by hand.
#[test]
fn training_drops_the_lower_layers_output_with_the_masks_of_its_pass() {
    let w = two_layers();
    let x: Array3<f64> = random_array((3, 4, 3), 5, -1.0, 1.0);
    let d = Dropout::new(0.4, 77).unwrap().at_pass(12);
    let mut lstm = CpuLstm::new(w.clone()).unwrap();
    lstm.set_dropout(Some(d)).unwrap();
    let (got, _) = lstm.forward_train(x.view(), None).unwrap();
    assert_eq!(lstm.dropout().unwrap().pass, 13, "the pass advances");

    let single = |l: usize| {
        let layer = w.layers()[l].clone();
        let c = LstmConfig::new(w.config().layer_input_size(l), 5, 1).unwrap();
        CpuLstm::new(LstmWeights::new(c, vec![layer]).unwrap()).unwrap()
    };
    let y0 = single(0).forward(x.view(), None).unwrap().y;
    let mut dropped = y0.clone();
    let values = dropped.as_slice_mut().unwrap();
    let scale = d.scale_f64();
    for (i, v) in values.iter_mut().enumerate() {
        let keep = mask_bits(d.key(0), i as u32) >= d.threshold();
        *v = if keep { *v * scale } else { 0.0 };
    }
    assert!(dropped.iter().any(|&v| v == 0.0) && dropped.iter().any(|&v| v != 0.0));
    let want = single(1).forward(dropped.view(), None).unwrap();
    assert_close(
        "y",
        got.y.view().into_dyn(),
        want.y.view().into_dyn(),
        0.0,
        1e-14,
    );
    // The top layer's final state is the top model's; the bottom layer's is undropped.
    let h_top = got.h_n.index_axis(Axis(0), 1);
    assert_close(
        "h_n[1]",
        h_top.into_dyn(),
        want.h_n.index_axis(Axis(0), 0).into_dyn(),
        0.0,
        1e-14,
    );
}

#[test]
fn each_training_pass_draws_new_masks() {
    let x: Array3<f64> = random_array((3, 4, 3), 5, -1.0, 1.0);
    let mut lstm = CpuLstm::new(two_layers()).unwrap();
    lstm.set_dropout(Some(Dropout::new(0.5, 1).unwrap()))
        .unwrap();
    let (first, _) = lstm.forward_train(x.view(), None).unwrap();
    let (second, _) = lstm.forward_train(x.view(), None).unwrap();
    assert_ne!(first.y, second.y);
    // Back at pass 0, the first pass again.
    lstm.set_dropout(Some(Dropout::new(0.5, 1).unwrap()))
        .unwrap();
    let (again, _) = lstm.forward_train(x.view(), None).unwrap();
    assert_eq!(again.y, first.y);
}
