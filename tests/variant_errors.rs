//! Bidirectional, projected and variable-length models: bad input is a typed error, and files
//! keep every variant.
mod common;

use common::Golden;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{Error, Lstm, LstmConfig, LstmWeights};

fn bidirectional_model() -> CpuLstm<f32> {
    let config = LstmConfig::new(3, 6, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(4)
        .unwrap();
    CpuLstm::new(LstmWeights::init_uniform(config, 7)).unwrap()
}

#[test]
fn a_length_of_zero_names_its_sequence() {
    let mut lstm = bidirectional_model();
    let x = Array3::<f32>::zeros((3, 5, 3));
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
        "{err:?}"
    );
}

#[test]
fn a_length_beyond_the_batch_steps_names_its_sequence() {
    let mut lstm = bidirectional_model();
    let x = Array3::<f32>::zeros((3, 5, 3));
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
        "{err:?}"
    );
}

#[test]
fn a_lengths_slice_of_the_wrong_size_is_a_shape_error() {
    let mut lstm = bidirectional_model();
    let x = Array3::<f32>::zeros((3, 5, 3));
    let err = lstm.forward_lengths(x.view(), &[5, 5], None).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { tensor, .. } if tensor == "lengths"),
        "{err:?}"
    );
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
    let mut lstm = bidirectional_model();
    let x = Array3::<f32>::zeros((3, 5, 3));
    // Plain shapes [L, B, H] where [L·D, B, H_out] = [4, 3, 4] is expected.
    let state = lstm_wgpu::LstmState {
        h: Array3::zeros((2, 3, 6)),
        c: Array3::zeros((2, 3, 6)),
    };
    let err = lstm.forward(x.view(), Some(&state)).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { tensor, .. } if tensor == "h0"),
        "{err:?}"
    );
}

#[test]
fn a_bidirectional_projected_model_survives_a_file_round_trip() {
    let weights = bidirectional_model().params().clone();
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
    let mut lstm = bidirectional_model();
    let plain = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 6, 2).unwrap(), 1);
    let err = lstm.set_weights(&plain).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
}

#[test]
fn the_plain_cpu_functions_refuse_a_bidirectional_model() {
    let weights = bidirectional_model().params().clone();
    let x = Array3::<f32>::zeros((3, 5, 3));
    let err = lstm_wgpu::cpu::lstm::forward(&weights, x.view(), None).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
}

#[test]
fn the_gpu_refuses_a_bidirectional_model_with_a_config_error() {
    let weights = bidirectional_model().params().clone();
    let err = lstm_wgpu::gpu::GpuLstm::new(&common::gpu(), &weights)
        .err()
        .expect("a bidirectional model is refused");
    assert!(
        matches!(
            err,
            Error::Config {
                what: "GpuLstm",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn the_gpu_refuses_sequences_shorter_than_the_batch() {
    let plain = LstmWeights::<f32>::init_uniform(LstmConfig::new(3, 6, 1).unwrap(), 1);
    let mut lstm = lstm_wgpu::gpu::GpuLstm::new(&common::gpu(), &plain).unwrap();
    let x = Array3::<f32>::zeros((2, 4, 3));
    let err = lstm.forward_lengths(x.view(), &[4, 2], None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config {
                what: "GpuLstm",
                ..
            }
        ),
        "{err:?}"
    );
    // Full lengths are the plain forward.
    let full = lstm.forward_lengths(x.view(), &[4, 4], None).unwrap();
    assert_eq!(full, lstm.forward(x.view(), None).unwrap());
}
