//! Three training steps with gradient clipping, against PyTorch's parameters after them
//! (`d8_*` and `e4_*` golden files): SGD with momentum, Adam and AdamW, each on the CPU and the
//! GPU trainer. The GPU-against-CPU tests share the update formulas; these hold both to
//! `torch.optim`.
mod common;

use common::{Golden, assert_close, gpu};
use lstm_wgpu::ndarray::{ArrayViewD, Axis, Ix3};
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};

/// The classifier's parameters stored under `prefix` (`init.` or `final.`).
fn weights(g: &Golden, prefix: &str) -> ClassifierWeights {
    let mut w = ClassifierWeights::zeros(ClassifierConfig::new(6, 16, 1, 4).unwrap());
    let names: Vec<String> = w.tensors().into_iter().map(|(n, _)| n).collect();
    for (name, values) in names.iter().zip(w.tensors_mut()) {
        let t = g.get::<f32>(&format!("{prefix}{name}"));
        values.copy_from_slice(t.as_slice().expect("golden tensors are row-major"));
    }
    w
}

/// Runs the file's three steps on `trainer`, checking each step's loss, and returns the
/// parameters after them.
fn three_steps(g: &Golden, trainer: &mut dyn Trainer, what: &str) -> ClassifierWeights {
    let xs = g
        .get::<f32>("x")
        .into_dimensionality::<lstm_wgpu::ndarray::Ix4>()
        .unwrap();
    let labels = g.get2::<f64>("labels");
    let losses = g.get1::<f32>("losses");
    for step in 0..3 {
        let x = xs
            .index_axis(Axis(0), step)
            .into_dimensionality::<Ix3>()
            .unwrap();
        let l: Vec<u8> = labels.row(step).iter().map(|&v| v as u8).collect();
        let m = trainer.step(x, &l, true).unwrap().expect("a reported step");
        // The loss before the update: float32 forward and mean, ~1e-6 relative.
        let (got, want) = ([m.loss() as f32], [losses[step]]);
        let (got, want) = (
            ArrayViewD::from_shape(vec![1], &got[..]).unwrap(),
            ArrayViewD::from_shape(vec![1], &want[..]).unwrap(),
        );
        assert_close(
            &format!("{what} step {} loss", step + 1),
            got,
            want,
            0.0,
            1e-5,
        );
    }
    trainer.weights().unwrap()
}

fn check_final(what: &str, g: &Golden, got: &ClassifierWeights, atol: f64, rtol: f64) {
    let want = weights(g, "final.");
    for ((name, a), (_, b)) in got.tensors().into_iter().zip(want.tensors()) {
        let shape = g.get::<f32>(&format!("final.{name}")).shape().to_vec();
        let a = ArrayViewD::from_shape(shape.clone(), a.unwrap()).unwrap();
        let b = ArrayViewD::from_shape(shape, b.unwrap()).unwrap();
        assert_close(&format!("{what} final {name}"), a, b, atol, rtol);
    }
}

fn sgd() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        clip_norm: Some(0.5),
        schedule: LrSchedule::constant(),
    }
}

fn adam() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam(AdamConfig {
            lr: 1e-2,
            ..AdamConfig::default()
        }),
        clip_norm: Some(0.5),
        schedule: LrSchedule::constant(),
    }
}

/// `torch.optim.AdamW(lr=1e-2, weight_decay=0.1)`, the `e4_adamw_clip_f32` case.
fn adamw() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam(AdamConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            ..AdamConfig::default()
        }),
        clip_norm: Some(0.5),
        schedule: LrSchedule::constant(),
    }
}

// SGD moves each parameter by lr times a clipped float32 gradient, so the parameters keep
// float32 agreement with PyTorch: 6e-8 of each tensor's largest magnitude seen on both devices;
// 1e-6 (2e-6 for the GPU's other summation order) leaves room while a wrong momentum or clip
// factor moves them by percent of a step.
#[test]
fn cpu_sgd_with_momentum_and_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("d8_sgd_momentum_clip_f32");
    let mut t = CpuTrainer::new(weights(&g, "init."), sgd(), None).unwrap();
    let w = three_steps(&g, &mut t, "cpu sgd");
    check_final("cpu sgd", &g, &w, 0.0, 1e-6);
}

#[test]
fn gpu_sgd_with_momentum_and_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("d8_sgd_momentum_clip_f32");
    let mut t = GpuTrainer::new(&gpu(), &weights(&g, "init."), sgd(), None).unwrap();
    let w = three_steps(&g, &mut t, "gpu sgd");
    check_final("gpu sgd", &g, &w, 0.0, 2e-6);
}

// Adam moves every parameter by up to ~lr per step whatever the gradient's size, and
// m / (sqrt(v) + eps) amplifies float32 noise where gradients are near eps, so the bound is
// absolute and tied to lr: 1e-4·lr = 1e-6 (4.5e-8 seen), far below one step's 1e-2 movement.
#[test]
fn cpu_adam_with_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("d8_adam_clip_f32");
    let mut t = CpuTrainer::new(weights(&g, "init."), adam(), None).unwrap();
    let w = three_steps(&g, &mut t, "cpu adam");
    check_final("cpu adam", &g, &w, 1e-6, 0.0);
}

#[test]
fn gpu_adam_with_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("d8_adam_clip_f32");
    let mut t = GpuTrainer::new(&gpu(), &weights(&g, "init."), adam(), None).unwrap();
    let w = three_steps(&g, &mut t, "gpu adam");
    check_final("gpu adam", &g, &w, 1e-6, 0.0);
}

// AdamW is Adam after shrinking each parameter by lr·λ = 1e-3 of itself, one f32 multiply by a
// factor both sides round once: the Adam bound of 1e-4·lr = 1e-6 still holds. The decay moves
// parameters (|p| ≤ 0.25) by up to 7.7e-4 in three steps against plain Adam, so a trainer that
// ignored or misapplied it fails by hundreds of times the bound (3e-8 seen).
#[test]
fn cpu_adamw_with_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("e4_adamw_clip_f32");
    let mut t = CpuTrainer::new(weights(&g, "init."), adamw(), None).unwrap();
    let w = three_steps(&g, &mut t, "cpu adamw");
    check_final("cpu adamw", &g, &w, 1e-6, 0.0);
}

#[test]
fn gpu_adamw_with_clipping_matches_pytorch_after_three_steps() {
    let g = Golden::load("e4_adamw_clip_f32");
    let mut t = GpuTrainer::new(&gpu(), &weights(&g, "init."), adamw(), None).unwrap();
    let w = three_steps(&g, &mut t, "gpu adamw");
    check_final("gpu adamw", &g, &w, 1e-6, 0.0);
}
