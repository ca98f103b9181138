//! Training classifiers on every `nn.LSTM` variant: a bidirectional projected two-layer model of
//! packed sequences against PyTorch, and the GPU trainer against the CPU trainer with dropout.
mod common;

use common::{Golden, assert_close, gpu, random_array};
use lstm_wgpu::ndarray::{ArrayViewD, Axis, Ix3, Ix4};
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};
use lstm_wgpu::{Dropout, LstmConfig, LstmWeights};

/// The classifier's parameters stored under `prefix` (`init.` or `final.`).
fn weights(g: &Golden, prefix: &str) -> ClassifierWeights {
    let lstm = LstmWeights::<f32>::from_safetensors_bytes_prefixed(g.bytes(), prefix).unwrap();
    ClassifierWeights {
        lstm,
        fc_weight: g.get2::<f32>(&format!("{prefix}fc.weight")),
        fc_bias: g.get1::<f32>(&format!("{prefix}fc.bias")),
    }
}

// Adam moves each parameter by up to ~lr per step whatever the gradient's size, so the bound is
// absolute and tied to lr (as for the d8 files). This model has gradients near Adam's eps: one
// element of weight_ih_l0 has dL/dw = 7e-8 against a largest 1.3e-3 (PyTorch's float64 and
// float32 agree on it). There float32 noise of ~1e-10 in g moves g/(|g| + eps) by ~2e-4, ~2e-6
// of a parameter per step at lr 1e-2; 1.1e-6 is seen on the CPU, 3.7e-7 on the GPU. 5e-4·lr
// stays far below the 1e-2 of one step, which any wrong gradient direction shows.
const ADAM_ATOL: f64 = 5e-6;

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

/// Runs the file's three steps of packed sequences on `trainer`, checking each step's loss.
fn three_steps(g: &Golden, trainer: &mut dyn Trainer, what: &str) -> ClassifierWeights {
    let xs = g.get::<f32>("x").into_dimensionality::<Ix4>().unwrap();
    let labels = g.get2::<f64>("labels");
    let lengths = g.get2::<f64>("lengths");
    let losses = g.get1::<f32>("losses");
    for step in 0..3 {
        let x = xs
            .index_axis(Axis(0), step)
            .into_dimensionality::<Ix3>()
            .unwrap();
        let l: Vec<u8> = labels.row(step).iter().map(|&v| v as u8).collect();
        let n: Vec<usize> = lengths.row(step).iter().map(|&v| v as usize).collect();
        let m = trainer
            .step_lengths(x, Some(&n), &l, true)
            .unwrap()
            .expect("a reported step");
        // The loss before the update: float32 forward and mean, ~1e-6 relative.
        let (got, want) = ([m.loss() as f32], [losses[step]]);
        assert_close(
            &format!("{what} step {} loss", step + 1),
            ArrayViewD::from_shape(vec![1], &got[..]).unwrap(),
            ArrayViewD::from_shape(vec![1], &want[..]).unwrap(),
            0.0,
            1e-5,
        );
    }
    trainer.weights().unwrap()
}

fn check_final(what: &str, g: &Golden, got: &ClassifierWeights) {
    let want = weights(g, "final.");
    let (got_t, want_t) = (got.tensors(), want.tensors());
    assert_eq!(got_t.len(), want_t.len());
    for ((name, a), (_, b)) in got_t.into_iter().zip(want_t) {
        let shape = g.get::<f32>(&format!("final.{name}")).shape().to_vec();
        let a = ArrayViewD::from_shape(shape.clone(), a.unwrap()).unwrap();
        let b = ArrayViewD::from_shape(shape, b.unwrap()).unwrap();
        assert_close(&format!("{what} final {name}"), a, b, ADAM_ATOL, 0.0);
    }
}

#[test]
fn the_cpu_trainer_matches_pytorch_on_a_bidirectional_projected_classifier_of_packed_sequences() {
    let g = Golden::load("e5_bidir_proj_varlen_classifier_f32");
    let mut t = CpuTrainer::new(weights(&g, "init."), adam(), None).unwrap();
    let w = three_steps(&g, &mut t, "cpu");
    check_final("cpu", &g, &w);
}

#[test]
fn the_gpu_trainer_matches_pytorch_on_a_bidirectional_projected_classifier_of_packed_sequences() {
    let g = Golden::load("e5_bidir_proj_varlen_classifier_f32");
    let mut t = GpuTrainer::new(&gpu(), &weights(&g, "init."), adam(), None).unwrap();
    let w = three_steps(&g, &mut t, "gpu");
    check_final("gpu", &g, &w);
}

/// Dropout draws the masks of the step's number on both trainers: at every step of a
/// three-layer bidirectional model with dropout, of sequences of different lengths, the two
/// trainers' gradients agree (float32 in other summation orders: 2e-5 of each tensor's largest
/// magnitude, as the GPU backward tests allow; a mask differing in one element moves a gradient
/// by its own size), and differ from the gradients without dropout.
#[test]
fn the_gpu_trainer_matches_the_cpu_trainer_with_dropout_between_layers() {
    let lstm = LstmConfig::new(4, 10, 3)
        .unwrap()
        .with_bidirectional(true)
        .unwrap();
    let config = ClassifierConfig::with_lstm(lstm, 3).unwrap();
    let w = ClassifierWeights::init(config, 5, None);
    let dropout = Some(Dropout::new(0.4, 77).unwrap());
    let x = random_array((5, 6, 4), 3, 0.0, 1.0);
    let labels = [0u8, 1, 2, 1, 0];
    let lengths = [6, 1, 4, 6, 2];
    let mut cpu = CpuTrainer::new(w.clone(), adam(), None)
        .unwrap()
        .with_dropout(dropout);
    let mut gpu = GpuTrainer::new(&gpu(), &w, adam(), None)
        .unwrap()
        .with_dropout(dropout);
    let mut plain = CpuTrainer::new(w.clone(), adam(), None).unwrap();
    for step in 1..=3 {
        cpu.step_lengths(x.view(), Some(&lengths), &labels, false)
            .unwrap();
        gpu.step_lengths(x.view(), Some(&lengths), &labels, false)
            .unwrap();
        plain
            .step_lengths(x.view(), Some(&lengths), &labels, false)
            .unwrap();
        let (want, got) = (cpu.gradients().unwrap().clone(), gpu.gradients().unwrap());
        let without = plain.gradients().unwrap().clone();
        let mut moved = 0.0f64;
        let tensors = got
            .tensors()
            .into_iter()
            .zip(want.tensors())
            .zip(without.tensors());
        for (((name, a), (_, b)), (_, c)) in tensors {
            let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
            let view = |v: &[f32]| ArrayViewD::from_shape(vec![v.len()], v).unwrap().to_owned();
            let what = format!("step {step} d{name} with dropout");
            assert_close(&what, view(a).view(), view(b).view(), 0.0, 2e-5);
            moved = b
                .iter()
                .zip(c)
                .fold(moved, |m, (x, y)| m.max(f64::from((x - y).abs())));
        }
        assert!(
            moved > 1e-4,
            "step {step}: dropout changed nothing ({moved})"
        );
    }
}

#[test]
fn evaluation_reads_each_sequence_at_its_own_last_step() {
    // A sequence whose padding is garbage classifies as the same sequence padded with zeros:
    // the model never reads past its length.
    let config = ClassifierConfig::with_lstm(LstmConfig::new(3, 8, 2).unwrap(), 4).unwrap();
    let w = ClassifierWeights::init(config, 9, None);
    let mut clean = random_array::<f32, _>((4, 5, 3), 1, -1.0, 1.0);
    let lengths = vec![5, 2, 1, 3];
    for (b, &n) in lengths.iter().enumerate() {
        clean
            .slice_mut(lstm_wgpu::ndarray::s![b, n.., ..])
            .fill(0.0);
    }
    let mut noisy = clean.clone();
    let noise = random_array::<f32, _>((4, 5, 3), 2, 5.0, 9.0);
    for (b, &n) in lengths.iter().enumerate() {
        noisy
            .slice_mut(lstm_wgpu::ndarray::s![b, n.., ..])
            .assign(&noise.slice(lstm_wgpu::ndarray::s![b, n.., ..]));
    }
    let data = |x| {
        lstm_wgpu::data::SequenceDataset::new("s", x, vec![0, 1, 2, 3], 4)
            .unwrap()
            .with_lengths(lengths.clone())
            .unwrap()
    };
    let trainers: Vec<(&str, Box<dyn Trainer>)> = vec![
        (
            "cpu",
            Box::new(CpuTrainer::new(w.clone(), adam(), None).unwrap()),
        ),
        (
            "gpu",
            Box::new(GpuTrainer::new(&gpu(), &w, adam(), None).unwrap()),
        ),
    ];
    for (device, mut t) in trainers {
        let a = t.evaluate(&data(clean.clone()), 3).unwrap();
        let b = t.evaluate(&data(noisy.clone()), 3).unwrap();
        assert_eq!(a, b, "{device}");
    }
}
