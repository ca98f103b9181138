//! Models without biases (PyTorch `bias=False`): files without bias keys, zero bias gradients,
//! biases that training leaves at zero, on both devices.
mod common;

use common::{assert_close, gpu, random_array};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};
use lstm_wgpu::{Error, GradRequest, Lstm, LstmConfig, LstmWeights, Upstream};

fn config() -> LstmConfig {
    LstmConfig::new(3, 6, 2).unwrap().with_bias(false)
}

#[test]
fn a_model_without_biases_is_initialised_with_zero_biases() {
    let w = LstmWeights::<f32>::init_uniform(config(), 3);
    for layer in w.layers() {
        assert!(
            layer
                .bias_ih
                .iter()
                .chain(&layer.bias_hh)
                .all(|&b| b == 0.0)
        );
        assert!(layer.weight_ih.iter().any(|&v| v != 0.0));
    }
    assert_eq!(config().num_parameters(), 4 * 6 * (3 + 6) + 4 * 6 * (6 + 6));
}

#[test]
fn a_model_without_biases_saves_no_bias_keys_and_loads_back_without_biases() {
    let w = LstmWeights::<f32>::init_uniform(config(), 3);
    let bytes = w.to_safetensors_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut keys: Vec<&str> = st.names();
    keys.sort();
    assert_eq!(
        keys,
        [
            "weight_hh_l0",
            "weight_hh_l1",
            "weight_ih_l0",
            "weight_ih_l1"
        ]
    );
    let back = LstmWeights::<f32>::from_safetensors_bytes(&bytes).unwrap();
    assert!(!back.config().bias);
    assert_eq!(back, w);
}

#[test]
fn a_nonzero_bias_in_a_model_without_biases_is_a_config_error() {
    let mut w = LstmWeights::<f32>::init_uniform(config(), 3);
    w.layers_mut()[1].bias_hh[5] = 0.5;
    let err = w.validate().unwrap_err();
    assert!(
        matches!(&err, Error::Config { reason, .. } if reason.contains("bias_hh_l1")),
        "{err:?}"
    );
    assert!(matches!(CpuLstm::new(w).err(), Some(Error::Config { .. })));
}

#[test]
fn setting_a_forget_bias_on_a_model_without_biases_is_a_config_error() {
    let mut w = LstmWeights::<f32>::init_uniform(config(), 3);
    assert!(matches!(w.set_forget_bias(1.0), Err(Error::Config { .. })));
}

/// The model of [`config`] with its zero biases counted as parameters (`bias = true`): the same
/// function of its inputs.
fn with_zero_biases(w: &LstmWeights<f32>) -> LstmWeights<f32> {
    LstmWeights::new(w.config().with_bias(true), w.layers().to_vec()).unwrap()
}

// Both models compute the same sums in the same order, so their outputs and weight gradients
// agree to the bit; only the bias gradients differ (zero without biases).
#[test]
fn bias_gradients_are_zero_and_the_rest_match_a_model_with_zero_biases() {
    let w = LstmWeights::<f32>::init_uniform(config(), 5);
    let x: Array3<f32> = random_array((4, 5, 3), 1, -1.0, 1.0);
    let up = Upstream {
        dy: Some(random_array((4, 5, 6), 2, -1.0, 1.0)),
        ..Default::default()
    };
    type Pair = (&'static str, Box<dyn Lstm>, Box<dyn Lstm>);
    let devices: Vec<Pair> = vec![
        (
            "cpu",
            Box::new(CpuLstm::new(w.clone()).unwrap()),
            Box::new(CpuLstm::new(with_zero_biases(&w)).unwrap()),
        ),
        (
            "gpu",
            Box::new(GpuLstm::new(&gpu(), &w).unwrap()),
            Box::new(GpuLstm::new(&gpu(), &with_zero_biases(&w)).unwrap()),
        ),
    ];
    for (device, mut none, mut zero) in devices {
        let (out, g) = none
            .forward_backward(x.view(), None, &up, GradRequest::ALL)
            .unwrap();
        let (want, gz) = zero
            .forward_backward(x.view(), None, &up, GradRequest::ALL)
            .unwrap();
        assert_eq!(out, want, "{device}");
        assert_eq!(g.x, gz.x, "{device}");
        let (layers, zero_layers) = (g.layers.unwrap(), gz.layers.unwrap());
        for (l, (a, b)) in layers.iter().zip(&zero_layers).enumerate() {
            assert!(
                a.bias_ih.iter().chain(&a.bias_hh).all(|&v| v == 0.0),
                "{device} layer {l}: a bias gradient is not zero"
            );
            assert!(
                b.bias_ih.iter().any(|&v| v != 0.0),
                "{device} layer {l}: the model with biases has no bias gradient to compare"
            );
            assert_close(
                &format!("{device} dweight_ih_l{l}"),
                a.weight_ih.view().into_dyn(),
                b.weight_ih.view().into_dyn(),
                0.0,
                0.0,
            );
            assert_close(
                &format!("{device} dweight_hh_l{l}"),
                a.weight_hh.view().into_dyn(),
                b.weight_hh.view().into_dyn(),
                0.0,
                0.0,
            );
        }
    }
}

#[test]
fn training_steps_leave_the_absent_biases_at_zero_on_both_devices() {
    let config = ClassifierConfig {
        lstm: LstmConfig::new(4, 8, 1).unwrap().with_bias(false),
        classes: 3,
    };
    let w = ClassifierWeights::init(config, 1, Some(1.0));
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(1.0),
        schedule: LrSchedule::constant(),
    };
    let trainers: Vec<(&str, Box<dyn Trainer>)> = vec![
        (
            "cpu",
            Box::new(CpuTrainer::new(w.clone(), train, None).unwrap()),
        ),
        (
            "gpu",
            Box::new(GpuTrainer::new(&gpu(), &w, train, None).unwrap()),
        ),
    ];
    let x: Array3<f32> = random_array((6, 5, 4), 9, 0.0, 1.0);
    let labels = [0u8, 1, 2, 0, 1, 2];
    for (device, mut t) in trainers {
        for _ in 0..3 {
            t.step(x.view(), &labels, false).unwrap();
        }
        let after = t.weights().unwrap();
        let layer = &after.lstm.layers()[0];
        assert!(
            layer
                .bias_ih
                .iter()
                .chain(&layer.bias_hh)
                .all(|&v| v == 0.0),
            "{device}: training moved a bias the model does not have"
        );
        assert_ne!(
            layer.weight_hh,
            w.lstm.layers()[0].weight_hh,
            "{device}: training moved nothing"
        );
        assert!(!after.lstm.config().bias, "{device}");
    }
}
