//! The CPU trainer's gradients through the whole classifier (LSTM, dense head on the last step,
//! mean cross-entropy) against central finite differences of the same loss in float64.
mod common;

use common::{assert_close, random_array};
use lstm_wgpu::cpu::cross_entropy::cross_entropy;
use lstm_wgpu::ndarray::{Array3, ArrayViewD, Axis};
use lstm_wgpu::rng::Rng;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, LrSchedule, Optimizer, TrainConfig, Trainer,
};
use lstm_wgpu::{LstmWeights, cpu};

/// A model, a batch of 4 sequences of 4 steps, and a CPU trainer (SGD with a tiny step, so the
/// trainer's first step reports the loss and gradients at the initial weights).
fn setup(
    config: ClassifierConfig,
    forget_bias: Option<f32>,
) -> (ClassifierWeights, Array3<f32>, Vec<u8>, CpuTrainer) {
    let w = ClassifierWeights::init(config, 5, forget_bias);
    let x: Array3<f32> = random_array((4, 4, config.lstm.input_size), 6, -1.0, 1.0);
    let mut rng = Rng::new(7);
    let labels: Vec<u8> = (0..4).map(|_| rng.below(config.classes) as u8).collect();
    let train = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 1e-3,
            momentum: 0.0,
        },
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    let trainer = CpuTrainer::new(w.clone(), train, None).unwrap();
    (w, x, labels, trainer)
}

fn check(config: ClassifierConfig) {
    let (w, x, labels, mut trainer) = setup(config, Some(1.0));
    let l32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    trainer.step(x.view(), &labels, true).unwrap();
    let grads = trainer.gradients().unwrap().clone();
    let x64 = x.mapv(f64::from);

    // The weights are float32; perturbing a float64 copy by eps = 1e-4 gives central
    // differences good to ~1e-8 (truncation eps² · f''' and rounding 1e-16 / eps).
    let eps = 1e-4f64;
    let names: Vec<String> = w.tensors().into_iter().map(|t| t.0).collect();
    for (k, name) in names.iter().enumerate() {
        let len = w.tensors()[k].1.unwrap().len();
        let mut numeric = Vec::with_capacity(len);
        for i in 0..len {
            // Perturb in float64 by working on a float64 image of the whole model.
            let f = |d: f64| {
                let mut w64 = ModelF64::from(&w);
                w64.tensors[k][i] += d;
                w64.loss(&x64, &l32)
            };
            numeric.push((f(eps) - f(-eps)) / (2.0 * eps));
        }
        let got = grads.tensors()[k]
            .1
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect::<Vec<_>>();
        // The analytic gradients are float32: 1e-4 of the tensor's largest magnitude plus
        // 1e-6 absolute is float32 accuracy over a 4-step sequence with room to spare; a wrong
        // term is off by tens of percent.
        assert_close(
            &format!("d{name}"),
            ArrayViewD::from_shape(vec![len], &got).unwrap(),
            ArrayViewD::from_shape(vec![len], &numeric).unwrap(),
            1e-6,
            1e-4,
        );
    }
}

/// A float64 image of the model's tensors, in `tensors()` order.
struct ModelF64 {
    shapes: ClassifierWeights,
    tensors: Vec<Vec<f64>>,
}

impl ModelF64 {
    fn from(w: &ClassifierWeights) -> Self {
        ModelF64 {
            shapes: w.clone(),
            tensors: w
                .tensors()
                .into_iter()
                .map(|t| t.1.unwrap().iter().map(|&v| v as f64).collect())
                .collect(),
        }
    }

    /// Builds float64 LSTM weights and head from the image and evaluates the loss.
    fn loss(&self, x: &Array3<f64>, labels: &[u32]) -> f64 {
        let config = self.shapes.config();
        let mut lstm = LstmWeights::<f64>::zeros(config.lstm);
        let mut it = self.tensors.iter();
        for layer in lstm.layers_mut() {
            for dst in [
                layer.weight_ih.as_slice_mut().unwrap(),
                layer.weight_hh.as_slice_mut().unwrap(),
                layer.bias_ih.as_slice_mut().unwrap(),
                layer.bias_hh.as_slice_mut().unwrap(),
            ] {
                dst.copy_from_slice(it.next().unwrap());
            }
        }
        let fc_w = lstm_wgpu::ndarray::Array2::from_shape_vec(
            self.shapes.fc_weight.raw_dim(),
            it.next().unwrap().clone(),
        )
        .unwrap();
        let fc_b = lstm_wgpu::ndarray::Array1::from_vec(it.next().unwrap().clone());
        let out = cpu::lstm::forward(&lstm, x.view(), None).unwrap();
        let h = out.h_n.index_axis(Axis(0), config.lstm.num_layers - 1);
        let logits = h.dot(&fc_w.t()) + &fc_b;
        let ce = cross_entropy(logits.view(), labels).unwrap();
        ce.loss_sum / ce.count as f64
    }
}

#[test]
fn classifier_gradients_match_finite_differences() {
    check(ClassifierConfig::new(3, 5, 1, 3).unwrap());
}

#[test]
fn two_layer_classifier_gradients_match_finite_differences() {
    check(ClassifierConfig::new(3, 4, 2, 3).unwrap());
}

#[test]
fn the_float64_loss_helper_agrees_with_the_trainer() {
    // Guards the reference above: the trainer's reported loss is the same function.
    let (w, x, labels, mut trainer) = setup(ClassifierConfig::new(3, 5, 1, 3).unwrap(), None);
    let l32: Vec<u32> = labels.iter().map(|&l| l as u32).collect();
    let m = trainer.step(x.view(), &labels, true).unwrap().unwrap();
    let want = ModelF64::from(&w).loss(&x.mapv(f64::from), &l32);
    // float32 against float64 of a loss of ~1: 1e-6 is float32 rounding.
    assert!((m.loss() - want).abs() < 1e-6, "{} vs {want}", m.loss());
}
