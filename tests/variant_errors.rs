//! Bidirectional, projected and variable-length models: bad input is a typed error on both
//! devices, and files keep every variant.
mod common;

use common::Golden;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{Error, Lstm, LstmConfig, LstmWeights};

fn bidirectional_weights() -> LstmWeights<f32> {
    let config = LstmConfig::new(3, 6, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(4)
        .unwrap();
    LstmWeights::init_uniform(config, 7)
}

/// The bidirectional projected model on each device.
fn each_device() -> Vec<(&'static str, Box<dyn Lstm>)> {
    let w = bidirectional_weights();
    vec![
        ("cpu", Box::new(CpuLstm::new(w.clone()).unwrap())),
        ("gpu", Box::new(GpuLstm::new(&common::gpu(), &w).unwrap())),
    ]
}

#[test]
fn a_length_of_zero_names_its_sequence() {
    let x = Array3::<f32>::zeros((3, 5, 3));
    for (device, mut lstm) in each_device() {
        let err = lstm
            .forward_lengths(x.view(), &[5, 0, 2], None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SequenceLength {
                    sequence: 1,
                    length: 0,
                    seq: 5
                }
            ),
            "{device}: {err:?}"
        );
    }
}

#[test]
fn a_length_beyond_the_batch_steps_names_its_sequence() {
    let x = Array3::<f32>::zeros((3, 5, 3));
    for (device, mut lstm) in each_device() {
        let err = lstm
            .forward_train_lengths(x.view(), &[5, 1, 6], None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::SequenceLength {
                    sequence: 2,
                    length: 6,
                    seq: 5
                }
            ),
            "{device}: {err:?}"
        );
    }
}

#[test]
fn a_lengths_slice_of_the_wrong_size_is_a_shape_error() {
    let x = Array3::<f32>::zeros((3, 5, 3));
    for (device, mut lstm) in each_device() {
        let err = lstm.forward_lengths(x.view(), &[5, 5], None).unwrap_err();
        assert!(
            matches!(&err, Error::Shape { tensor, .. } if tensor == "lengths"),
            "{device}: {err:?}"
        );
    }
}

#[test]
fn a_projection_as_wide_as_the_cell_is_rejected() {
    let err = LstmConfig::new(3, 6, 1)
        .unwrap()
        .with_proj_size(6)
        .unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[test]
fn a_unidirectional_state_given_to_a_bidirectional_model_is_a_shape_error() {
    let x = Array3::<f32>::zeros((3, 5, 3));
    // Plain shapes [L, B, H] where [L·D, B, H_out] = [4, 3, 4] is expected.
    let state = lstm_wgpu::LstmState {
        h: Array3::zeros((2, 3, 6)),
        c: Array3::zeros((2, 3, 6)),
    };
    for (device, mut lstm) in each_device() {
        let err = lstm.forward(x.view(), Some(&state)).unwrap_err();
        assert!(
            matches!(&err, Error::Shape { tensor, .. } if tensor == "h0"),
            "{device}: {err:?}"
        );
    }
}

#[test]
fn a_bidirectional_projected_model_survives_a_file_round_trip() {
    let weights = bidirectional_weights();
    let back = LstmWeights::<f32>::from_safetensors_bytes(&weights.to_safetensors_bytes().unwrap())
        .unwrap();
    assert_eq!(back, weights);
}

#[test]
fn a_pytorch_bidirectional_projected_file_loads_with_its_sizes() {
    let config = Golden::load("d10_bidir_two_layer_proj_f32").config();
    let want = LstmConfig::new(3, 6, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(4)
        .unwrap();
    assert_eq!(config, want);
}

#[test]
fn weights_of_another_variant_are_refused_by_set_weights() {
    let plain = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 6, 2).unwrap(), 1);
    for (device, mut lstm) in each_device() {
        let err = lstm.set_weights(&plain).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{device}: {err:?}");
    }
}

#[test]
fn the_plain_cpu_functions_refuse_a_bidirectional_model() {
    let weights = bidirectional_weights();
    let x = Array3::<f32>::zeros((3, 5, 3));
    let err = lstm_wgpu::cpu::lstm::forward(&weights, x.view(), None).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

/// A whole model's `state_dict()` as PyTorch saves it, its LSTM under `encoder.lstm.` beside
/// other modules' tensors: `load` finds the LSTM by its prefix, and the model computes what
/// PyTorch computed from it on both devices (f32 in other summation orders: 5e-6 of each
/// tensor's largest magnitude, the GPU golden tests' forward bound).
#[test]
fn a_pytorch_model_state_dict_loads_its_lstm_by_prefix_and_computes_pytorchs_outputs() {
    let g = Golden::load("e6_module_state_dict_f32");
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/e6_module_state_dict_f32.safetensors");
    assert_eq!(
        lstm_wgpu::weights::lstm_prefixes(&path).unwrap(),
        ["encoder.lstm."]
    );
    let weights = LstmWeights::<f32>::load(&path).unwrap();
    let config = *weights.config();
    assert!(config.bidirectional && config.proj_size == 4 && config.num_layers == 2);
    let x = g.get3::<f32>("x");
    for (device, mut lstm) in [
        (
            "cpu",
            Box::new(CpuLstm::new(weights.clone()).unwrap()) as Box<dyn Lstm>,
        ),
        (
            "gpu",
            Box::new(GpuLstm::new(&common::gpu(), &weights).unwrap()),
        ),
    ] {
        let out = lstm.forward(x.view(), None).unwrap();
        for (name, got) in [("y", &out.y), ("h_n", &out.h_n), ("c_n", &out.c_n)] {
            let want = g.get::<f32>(name);
            common::assert_close(
                &format!("{device} {name}"),
                got.view().into_dyn(),
                want.view(),
                0.0,
                5e-6,
            );
        }
    }
}

#[test]
fn a_bidirectional_file_missing_a_reverse_tensor_names_it() {
    let weights = bidirectional_weights();
    let bytes = weights.to_safetensors_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "weight_hh_l1_reverse")
        .collect();
    let cut = safetensors::serialize(kept, None).unwrap();
    let err = LstmWeights::<f32>::from_safetensors_bytes(&cut).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTensor { tensor } if tensor == "weight_hh_l1_reverse"),
        "{err:?}"
    );
}
