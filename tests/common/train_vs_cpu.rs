//! Classifier training steps on the GPU against the CPU trainer from the same initial weights
//! (head, loss, backward, clipping, optimizer): what `train_gpu_matches_cpu.rs` runs per
//! optimizer and schedule and `gpu_kernel_coverage.rs` sweeps.

use super::{assert_close, gpu, random_array};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::rng::Rng;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, Metrics, Optimizer,
    OptimizerState, TrainConfig, Trainer,
};

pub fn data(b: usize, t: usize, i: usize, classes: usize, seed: u64) -> (Array3<f32>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    let x = random_array((b, t, i), seed, -1.0, 1.0);
    let labels = (0..b).map(|_| rng.below(classes) as u8).collect();
    (x, labels)
}

// Each step compounds float32 rounding differences of the forward, backward and the update; an
// element's update is lr-sized, so differences are held to 1e-5 of each tensor's largest
// magnitude — far below any step's effect (lr = 1e-2 of weights of ~0.3).
pub const RTOL: f64 = 1e-5;

pub fn assert_weights_close(what: &str, a: &ClassifierWeights, b: &ClassifierWeights) {
    assert_weights_close_atol(what, a, b, 0.0)
}

pub fn assert_weights_close_atol(
    what: &str,
    a: &ClassifierWeights,
    b: &ClassifierWeights,
    atol: f64,
) {
    for ((name, x), (_, y)) in a.tensors().into_iter().zip(b.tensors()) {
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_close(
            &format!("{what} {name}"),
            lstm_wgpu::ndarray::ArrayView1::from(x).into_dyn(),
            lstm_wgpu::ndarray::ArrayView1::from(y).into_dyn(),
            atol,
            RTOL,
        );
    }
}

pub fn assert_metrics_close(what: &str, a: Metrics, b: Metrics) {
    assert_eq!(
        (a.count, a.correct),
        (b.count, b.correct),
        "{what}: {a:?} vs {b:?}"
    );
    let rel = (a.loss() - b.loss()).abs() / b.loss().abs().max(1e-12);
    assert!(
        rel < 1e-5,
        "{what}: loss {} vs {} (rel {rel:e})",
        a.loss(),
        b.loss()
    );
}

/// The weights one optimizer step takes `w` (with optimizer state `state`) to from gradients
/// `g`, by the CPU twins of the clip and update kernels.
pub fn cpu_update(
    w: &ClassifierWeights,
    state: &OptimizerState,
    g: &ClassifierWeights,
    train: &TrainConfig,
) -> ClassifierWeights {
    use lstm_wgpu::cpu::grad_norm::{clip_scale, grad_norm};
    let grads: Vec<&[f32]> = g.tensors().into_iter().filter_map(|t| t.1).collect();
    let scale = train
        .clip_norm
        .map_or(1.0, |max| clip_scale(grad_norm(grads.iter().copied()), max));
    let (mut w, mut state) = (w.clone(), state.clone());
    // The step's scheduled learning rate, then Adam's 1-based step count.
    let optimizer = train.optimizer_at(state.step);
    let step = state.step + 1;
    let mut moments: Vec<_> = state.moments.iter_mut().map(|m| m.tensors_mut()).collect();
    for (i, (p, g)) in w.tensors_mut().into_iter().zip(&grads).enumerate() {
        match (&optimizer, moments.as_mut_slice()) {
            (Optimizer::Adam(a), [m, v]) => {
                lstm_wgpu::cpu::adam::adam(p, g, m[i], v[i], a, step, scale)
            }
            (Optimizer::Sgd { lr, momentum }, [buf]) => {
                lstm_wgpu::cpu::sgd::sgd(p, g, buf[i], *lr, *momentum, scale)
            }
            _ => panic!("optimizer state does not match the optimizer"),
        }
    }
    w
}

pub fn compare(config: ClassifierConfig, train: TrainConfig, steps: usize) {
    let w = ClassifierWeights::init(config, 3, Some(1.0));
    let mut cpu = CpuTrainer::new(w.clone(), train, None).unwrap();
    let mut gpu = GpuTrainer::new(&gpu(), &w, train, None).unwrap();
    for s in 0..steps {
        let (w_before, s_before) = (gpu.weights().unwrap(), gpu.optimizer_state().unwrap());
        let (x, labels) = data(6, 5, config.lstm.input_size, config.classes, 10 + s as u64);
        let mc = cpu.step(x.view(), &labels, true).unwrap().unwrap();
        let mg = gpu.step(x.view(), &labels, true).unwrap().unwrap();
        assert_metrics_close(&format!("step {s}"), mg, mc);
        if let Some(max) = train.clip_norm {
            let g = cpu.gradients().unwrap();
            let norm =
                lstm_wgpu::cpu::grad_norm::grad_norm(g.tensors().into_iter().filter_map(|t| t.1));
            assert!(
                norm > max,
                "step {s}: gradient norm {norm} does not reach the clip {max}"
            );
        }
        assert_weights_close(
            &format!("gradients after step {s}"),
            &gpu.gradients().unwrap(),
            cpu.gradients().unwrap(),
        );
        // The update itself: the GPU's optimizer step from its own gradients, against the CPU
        // twins applied to the same gradients and state. (Comparing the two trainers' weights
        // instead would mix in the gradients' rounding, which Adam's first steps amplify without
        // bound where a gradient is near zero: the update is lr · g / (|g| + eps).)
        let want = cpu_update(&w_before, &s_before, &gpu.gradients().unwrap(), &train);
        assert_weights_close(
            &format!("weights after step {s}"),
            &gpu.weights().unwrap(),
            &want,
        );
    }
    let (sc, sg) = (
        cpu.optimizer_state().unwrap(),
        gpu.optimizer_state().unwrap(),
    );
    assert_eq!(sc.step, sg.step);
    for (i, (a, b)) in sg.moments.iter().zip(&sc.moments).enumerate() {
        assert_weights_close(&format!("optimizer moment {i}"), a, b);
    }
}
