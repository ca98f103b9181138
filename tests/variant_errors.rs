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
