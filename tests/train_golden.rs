//! The classifier (LSTM + dense head on the last step + mean cross-entropy) against PyTorch's
//! golden file `c7_classifier_f32`: logits, loss and every gradient, on the CPU and the GPU.
mod common;

use common::{Golden, assert_close, gpu};
use lstm_wgpu::cpu::cross_entropy::cross_entropy;
use lstm_wgpu::ndarray::{Array3, ArrayViewD, Axis};
use lstm_wgpu::train::{
    ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer, TrainConfig, Trainer,
};
use lstm_wgpu::{Upstream, cpu};

fn golden() -> (Golden, ClassifierWeights, Array3<f32>, Vec<u8>) {
    let g = Golden::load("c7_classifier_f32");
    let w = ClassifierWeights::from_safetensors_bytes(g.bytes()).unwrap();
    let x = g.get3::<f32>("x");
    let labels = g.get1::<f64>("labels").iter().map(|&l| l as u8).collect();
    (g, w, x, labels)
}

fn train_config() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.0,
        },
        clip_norm: None,
        schedule: LrSchedule::constant(),
    }
}

fn check_gradients(what: &str, g: &Golden, grads: &ClassifierWeights, rtol: f64) {
    for (name, values) in grads.tensors() {
        let want = g.get::<f32>(&format!("grad.{name}"));
        let got = ArrayViewD::from_shape(want.shape(), values.unwrap()).unwrap();
        assert_close(&format!("{what} grad.{name}"), got, want.view(), 0.0, rtol);
    }
}

// float32 against PyTorch's float32 (itself within 6.5e-7 of float64); the CPU sums in another
// order, so a few 1e-6 of each tensor's largest magnitude (the golden README's expectation).
const CPU_RTOL: f64 = 5e-6;
// The GPU's reductions (tiles of 16, a tree over the batch) need ~1e-5 (the golden README).
const GPU_RTOL: f64 = 2e-5;

#[test]
fn cpu_cross_entropy_matches_pytorch_on_the_golden_logits() {
    let (g, _, _, labels) = golden();
    let logits = g.get::<f32>("logits").into_dimensionality().unwrap();
    let ce = cross_entropy(
        logits.view(),
        &labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
    )
    .unwrap();
    let loss = ce.loss_sum / ce.count as f32;
    let want = g.get1::<f32>("loss")[0];
    assert!(
        (loss - want).abs() <= 2e-6 * want.abs(),
        "loss {loss} vs {want}"
    );
    // dlogits = (probs - onehot) / B, so probs = dlogits·B + onehot.
    let mut probs = ce.dlogits * labels.len() as f32;
    for (b, &l) in labels.iter().enumerate() {
        probs[[b, l as usize]] += 1.0;
    }
    assert_close(
        "probs",
        probs.view().into_dyn(),
        g.get::<f32>("probs").view(),
        1e-7,
        2e-6,
    );
}

#[test]
fn cpu_trainer_logits_loss_and_gradients_match_pytorch() {
    let (g, w, x, labels) = golden();
    let mut t = CpuTrainer::new(w, train_config(), None).unwrap();
    let logits = t.logits(x.view()).unwrap();
    assert_close(
        "logits",
        logits.view().into_dyn(),
        g.get::<f32>("logits").view(),
        0.0,
        CPU_RTOL,
    );
    let m = t.step(x.view(), &labels, true).unwrap().unwrap();
    let want = g.get1::<f32>("loss")[0] as f64;
    assert!(
        (m.loss() - want).abs() <= 2e-6 * want,
        "loss {} vs {want}",
        m.loss()
    );
    check_gradients("cpu", &g, t.gradients().unwrap(), CPU_RTOL);
}

#[test]
fn cpu_input_gradient_through_the_head_matches_pytorch() {
    let (g, w, x, labels) = golden();
    let (out, tape) = cpu::lstm::forward_train(&w.lstm, x.view(), None).unwrap();
    let h_last = out.h_n.index_axis(Axis(0), 0);
    let logits = h_last.dot(&w.fc_weight.t()) + &w.fc_bias;
    let ce = cross_entropy(
        logits.view(),
        &labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
    )
    .unwrap();
    let dh = ce.dlogits.dot(&w.fc_weight).insert_axis(Axis(0));
    let up = Upstream {
        dh_n: Some(dh),
        ..Default::default()
    };
    let grads = cpu::lstm::backward(&w.lstm, &tape, &up).unwrap();
    assert_close(
        "grad.x",
        grads.x.unwrap().view().into_dyn(),
        g.get::<f32>("grad.x").view(),
        0.0,
        CPU_RTOL,
    );
}

#[test]
fn gpu_trainer_loss_and_gradients_match_pytorch() {
    let (g, w, x, labels) = golden();
    let mut t = GpuTrainer::new(&gpu(), &w, train_config(), None).unwrap();
    let m = t.step(x.view(), &labels, true).unwrap().unwrap();
    let want = g.get1::<f32>("loss")[0] as f64;
    assert!(
        (m.loss() - want).abs() <= 1e-5 * want,
        "loss {} vs {want}",
        m.loss()
    );
    check_gradients("gpu", &g, &t.gradients().unwrap(), GPU_RTOL);
}
