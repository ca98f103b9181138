//! Caller mistakes come back as typed errors naming the tensor, never as panics.
mod common;

use common::{device_with, gpu, gpu_tuned_as_hardware, random_array, random_weights};
use lstm_wgpu::Lstm;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::ndarray::{Array1, Array3};
use lstm_wgpu::{Error, GradRequest, LstmConfig, LstmState, LstmWeights, Upstream, cpu};

fn config() -> LstmConfig {
    LstmConfig::new(4, 5, 1).unwrap()
}

fn assert_shape_error<T: std::fmt::Debug>(
    r: lstm_wgpu::Result<T>,
    tensor: &str,
    expected: &[usize],
    actual: &[usize],
) {
    match r {
        Err(Error::Shape {
            tensor: t,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(
                (t.as_str(), e.as_slice(), a.as_slice()),
                (tensor, expected, actual)
            )
        }
        other => panic!("expected a shape error for {tensor}, got {other:?}"),
    }
}

/// The same model on each device: the CPU reference and the GPU. Every test below that takes
/// a `dyn Lstm` runs on both.
fn each_device(w: &LstmWeights<f32>) -> Vec<(&'static str, Box<dyn Lstm>)> {
    vec![
        ("cpu", Box::new(CpuLstm::new(w.clone()).unwrap())),
        ("gpu", Box::new(GpuLstm::new(&gpu(), w).unwrap())),
    ]
}

#[test]
fn input_with_the_wrong_feature_count_is_a_shape_error_on_cpu_and_gpu() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((2, 3, 7));
    assert_shape_error(
        cpu::lstm::forward(&w, x.view(), None),
        "x",
        &[2, 3, 4],
        &[2, 3, 7],
    );
    for (device, mut lstm) in each_device(&w) {
        println!("{device}");
        assert_shape_error(lstm.forward(x.view(), None), "x", &[2, 3, 4], &[2, 3, 7]);
        let r = lstm.forward_train(x.view(), None).map(|_| ());
        assert_shape_error(r, "x", &[2, 3, 4], &[2, 3, 7]);
    }
}

#[test]
fn initial_state_with_the_wrong_batch_is_a_shape_error() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((2, 3, 4));
    let mut bad_h = LstmState::<f32>::zeros(&config(), 2);
    bad_h.h = Array3::zeros((1, 3, 5));
    assert_shape_error(
        cpu::lstm::forward(&w, x.view(), Some(&bad_h)),
        "h0",
        &[1, 2, 5],
        &[1, 3, 5],
    );
    let mut bad_c = LstmState::<f32>::zeros(&config(), 2);
    bad_c.c = Array3::zeros((1, 2, 6));
    for (device, mut lstm) in each_device(&w) {
        println!("{device}");
        let r = lstm.forward(x.view(), Some(&bad_h));
        assert_shape_error(r, "h0", &[1, 2, 5], &[1, 3, 5]);
        let r = lstm.forward(x.view(), Some(&bad_c));
        assert_shape_error(r, "c0", &[1, 2, 5], &[1, 2, 6]);
    }
}

#[test]
fn zero_sized_dimensions_are_rejected() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((2, 0, 4));
    for (device, mut lstm) in each_device(&w) {
        match lstm.forward(x.view(), None) {
            Err(Error::ZeroSize { tensor, dim, .. }) => {
                assert_eq!((tensor.as_str(), dim), ("x", "seq"), "{device}")
            }
            other => panic!("{device}: expected ZeroSize, got {other:?}"),
        }
    }
    match LstmConfig::new(4, 0, 1) {
        Err(Error::ZeroSize { dim, .. }) => assert_eq!(dim, "hidden_size"),
        other => panic!("expected ZeroSize, got {other:?}"),
    }
}

#[test]
fn upstream_gradient_with_the_wrong_shape_is_a_shape_error() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((2, 3, 4));
    let up = Upstream {
        dy: Some(Array3::zeros((2, 4, 5))),
        ..Default::default()
    };
    for (device, mut lstm) in each_device(&w) {
        println!("{device}");
        let (_, tape) = lstm.forward_train(x.view(), None).unwrap();
        let r = lstm.backward(&tape, &up, GradRequest::ALL);
        assert_shape_error(r, "dy", &[2, 3, 5], &[2, 4, 5]);
        let r = lstm.forward_backward(x.view(), None, &up, GradRequest::ALL);
        assert_shape_error(r, "dy", &[2, 3, 5], &[2, 4, 5]);
    }
    let (_, cpu_tape) = cpu::lstm::forward_train(&w, x.view(), None).unwrap();
    assert_shape_error(
        cpu::lstm::backward(&w, &cpu_tape, &up),
        "dy",
        &[2, 3, 5],
        &[2, 4, 5],
    );
}

#[test]
fn weights_with_a_wrong_shape_are_rejected() {
    let mut w = LstmWeights::<f32>::zeros(config());
    w.layers_mut()[0].bias_hh = Array1::zeros(19);
    assert_shape_error(w.validate(), "bias_hh_l0", &[20], &[19]);
    assert_shape_error(
        GpuLstm::new(&gpu(), &w).map(|_| ()),
        "bias_hh_l0",
        &[20],
        &[19],
    );
    assert_shape_error(
        CpuLstm::new(w.clone()).map(|_| ()),
        "bias_hh_l0",
        &[20],
        &[19],
    );
    let good = LstmWeights::<f32>::zeros(config());
    for (device, mut lstm) in each_device(&good) {
        println!("{device}");
        assert_shape_error(lstm.set_weights(&w), "bias_hh_l0", &[20], &[19]);
    }
}

#[test]
fn a_stale_tape_is_refused() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = random_array((2, 3, 4), 1, -1.0, 1.0);
    for (device, mut lstm) in each_device(&w) {
        let (_, first) = lstm.forward_train(x.view(), None).unwrap();
        let (_, _second) = lstm.forward_train(x.view(), None).unwrap();
        match lstm.backward(&first, &Upstream::default(), GradRequest::ALL) {
            Err(Error::StaleTape {
                tape: 1,
                current: 2,
            }) => {}
            other => panic!("{device}: expected StaleTape, got {other:?}"),
        }
    }
}

#[test]
fn a_batch_beyond_the_device_buffer_limit_is_a_device_limit_error() {
    // The staged step, which takes its input projection from a buffer of its own (the direct
    // steps compute it inside the step).
    let gpu = gpu_tuned_as_hardware();
    let h = 64;
    // The input projection holds 4H floats per (batch, step) row: make it one row too many.
    let b = 5;
    assert_eq!(
        Kernel::for_forward_step(b, h, &gpu),
        Kernel::LstmForwardStep
    );
    let limit = gpu.limits().max_storage_buffer_binding_size as usize;
    let t = limit / (4 * h * 4 * b) + 1;
    let w = random_weights(LstmConfig::new(1, h, 1).unwrap(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((b, t, 1));
    let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
    match lstm.forward(x.view(), None) {
        Err(Error::DeviceLimit {
            tensor, limit_name, ..
        }) => {
            assert_eq!(
                (tensor.as_str(), limit_name),
                ("xproj", "max_storage_buffer_binding_size")
            )
        }
        other => panic!("expected DeviceLimit, got {:?}", other.map(|_| ())),
    }
}

mod weights_file {
    use super::*;
    use std::collections::HashMap;

    fn file(tensors: Vec<(&str, safetensors::Dtype, Vec<usize>)>) -> Vec<u8> {
        let data: Vec<(String, Vec<u8>, safetensors::Dtype, Vec<usize>)> = tensors
            .into_iter()
            .map(|(n, d, s)| {
                let bytes = vec![0u8; s.iter().product::<usize>() * d.bitsize() / 8];
                (n.to_string(), bytes, d, s)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
            .iter()
            .map(|(n, b, d, s)| {
                (
                    n.clone(),
                    safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()
    }

    use safetensors::Dtype::{F16, F32};

    #[test]
    fn a_missing_tensor_is_named() {
        let bytes = file(vec![
            ("weight_ih_l0", F32, vec![20, 4]),
            ("weight_hh_l0", F32, vec![20, 5]),
            ("bias_ih_l0", F32, vec![20]),
        ]);
        match LstmWeights::<f32>::from_safetensors_bytes(&bytes) {
            Err(Error::MissingTensor { tensor }) => assert_eq!(tensor, "bias_hh_l0"),
            other => panic!("expected MissingTensor, got {other:?}"),
        }
    }

    #[test]
    fn an_unsupported_dtype_is_named() {
        let bytes = file(vec![
            ("weight_ih_l0", F32, vec![20, 4]),
            ("weight_hh_l0", F16, vec![20, 5]),
            ("bias_ih_l0", F32, vec![20]),
            ("bias_hh_l0", F32, vec![20]),
        ]);
        match LstmWeights::<f32>::from_safetensors_bytes(&bytes) {
            Err(Error::Dtype { tensor, .. }) => assert_eq!(tensor, "weight_hh_l0"),
            other => panic!("expected Dtype, got {other:?}"),
        }
    }

    #[test]
    fn a_tensor_with_the_wrong_shape_is_named() {
        let bytes = file(vec![
            ("weight_ih_l0", F32, vec![20, 4]),
            ("weight_hh_l0", F32, vec![20, 5]),
            ("bias_ih_l0", F32, vec![21]),
            ("bias_hh_l0", F32, vec![20]),
        ]);
        assert_shape_error(
            LstmWeights::<f32>::from_safetensors_bytes(&bytes),
            "bias_ih_l0",
            &[20],
            &[21],
        );
    }

    #[test]
    fn bytes_that_are_not_safetensors_are_an_error() {
        match LstmWeights::<f32>::from_safetensors_bytes(b"not a tensor file") {
            Err(Error::Safetensors(_)) => {}
            other => panic!("expected a safetensors error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        match LstmWeights::<f32>::load("/nonexistent/weights.safetensors") {
            Err(Error::Io { path, .. }) => assert!(path.ends_with("weights.safetensors")),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn a_non_finite_weight_in_a_file_is_an_error_naming_tensor_and_index() {
        let mut w = random_weights(config(), 9, 1.0);
        let bytes = w.to_safetensors_bytes().unwrap();
        // Poke a NaN into weight_hh_l0 [3, 1] of the serialised file.
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let view = st.tensor("weight_hh_l0").unwrap();
        let data_start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
        let at = data_start + (3 * 5 + 1) * 4;
        let mut poked = bytes.clone();
        poked[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        match LstmWeights::<f32>::from_safetensors_bytes(&poked) {
            Err(Error::NonFinite { tensor, index, .. }) => {
                assert_eq!(
                    (tensor.as_str(), index.as_slice()),
                    ("weight_hh_l0", &[3, 1][..])
                )
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        // Saving such weights is refused as well, and leaves an existing file untouched.
        let dir = std::env::temp_dir().join(format!("lstm-wgpu-nonfinite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        w.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        w.layers_mut()[0].bias_ih[7] = f32::INFINITY;
        match w.save(&path) {
            Err(Error::NonFinite { tensor, index, .. }) => {
                assert_eq!(
                    (tensor.as_str(), index.as_slice()),
                    ("bias_ih_l0", &[7][..])
                )
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), good);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn saved_weights_load_back_identically() {
        let w = random_weights(config(), 9, 1.0);
        let dir = std::env::temp_dir().join(format!("lstm-wgpu-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        w.save(&path).unwrap();
        assert_eq!(LstmWeights::<f32>::load(&path).unwrap(), w);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_host_device_too_limited_for_the_kernels_is_a_gpu_error_on_first_use() {
    // An application may hand over a device made with tight limits; the step kernels bind seven
    // storage buffers, so a device allowing four cannot build them. Kernels are compiled when a
    // call first needs them: the first forward pass and `compile_kernels` say so.
    let (device, queue) = device_with(|_| lstm_wgpu::wgpu::Limits {
        max_storage_buffers_per_shader_stage: 4,
        ..lstm_wgpu::wgpu::Limits::downlevel_defaults()
    });
    let gpu = lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap();
    let expect_compile_error = |what: &str, r: Result<(), Error>| match r {
        Err(Error::Gpu { kind, context, .. }) => assert_eq!(
            (kind, context),
            (lstm_wgpu::GpuErrorKind::Validation, "compiling a kernel"),
            "{what}"
        ),
        other => panic!("{what}: expected a GPU validation error, got {other:?}"),
    };
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = random_array((2, 3, 4), 1, -1.0, 1.0);
    let forward = GpuLstm::new(&gpu, &w).and_then(|mut lstm| lstm.forward(x.view(), None));
    expect_compile_error("forward", forward.map(|_| ()));
    expect_compile_error("compile_kernels", gpu.compile_kernels());
}

#[test]
fn a_tape_of_another_model_is_refused_even_with_the_same_generation() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = random_array((2, 3, 4), 1, -1.0, 1.0);
    let mut devices = each_device(&w);
    // Each model's first tape has generation 1: only the model number tells them apart.
    let tapes: Vec<_> = devices
        .iter_mut()
        .map(|(_, lstm)| lstm.forward_train(x.view(), None).unwrap().1)
        .collect();
    for (i, (device, lstm)) in devices.iter_mut().enumerate() {
        let other = &tapes[1 - i];
        match lstm.backward(other, &Upstream::default(), GradRequest::ALL) {
            Err(Error::ForeignTape { .. }) => {}
            other => panic!("{device}: expected ForeignTape, got {other:?}"),
        }
        assert!(
            lstm.backward(&tapes[i], &Upstream::default(), GradRequest::ALL)
                .is_ok()
        );
    }
    // A clone is another model too.
    let mut cpu = CpuLstm::new(w.clone()).unwrap();
    let (_, tape) = cpu.forward_train(x.view(), None).unwrap();
    let mut twin = cpu.clone();
    match twin.backward(&tape, &Upstream::default(), GradRequest::ALL) {
        Err(Error::ForeignTape { .. }) => {}
        other => panic!("clone: expected ForeignTape, got {other:?}"),
    }
}

#[test]
fn a_failed_reallocation_leaves_earlier_tapes_stale_not_a_panic() {
    let gpu = gpu();
    let h = 64;
    let w = random_weights(LstmConfig::new(1, h, 1).unwrap(), 1, 1.0);
    let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
    let (_, tape) = lstm
        .forward_train(Array3::zeros((1, 3, 1)).view(), None)
        .unwrap();
    // A sequence one row past the device's buffer limit (as in the device-limit test above).
    let limit = gpu.limits().max_storage_buffer_binding_size as usize;
    let too_long: Array3<f32> = Array3::zeros((1, limit / (4 * h * 4) + 1, 1));
    assert!(matches!(
        lstm.forward_train(too_long.view(), None),
        Err(Error::DeviceLimit { .. })
    ));
    match lstm.backward(&tape, &Upstream::default(), GradRequest::ALL) {
        Err(Error::StaleTape { .. }) => {}
        other => panic!("expected StaleTape, got {other:?}"),
    }
}

#[test]
fn a_batch_needing_more_step_workgroups_than_the_device_dispatches_is_a_device_limit_error() {
    // A host device limited to 2 workgroups per grid dimension: the step kernels' 16-row tiles
    // cover 32 batch rows, so a batch of 48 cannot be dispatched.
    let (device, queue) = device_with(|adapter| lstm_wgpu::wgpu::Limits {
        max_compute_workgroups_per_dimension: 2,
        ..adapter
    });
    let gpu = lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap();
    let w = random_weights(config(), 1, 1.0);
    let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
    assert!(lstm.forward(Array3::zeros((32, 1, 4)).view(), None).is_ok());
    // 3 rows would need 3 workgroups of the small-batch step: it gives way to a variant with
    // more rows per workgroup (the 8-row direct step on a software adapter, the staged step on
    // others), which fits.
    assert!(lstm.forward(Array3::zeros((3, 1, 4)).view(), None).is_ok());
    match lstm.forward(Array3::zeros((48, 1, 4)).view(), None) {
        Err(Error::DeviceLimit { limit_name, .. }) => {
            assert_eq!(limit_name, "max_compute_workgroups_per_dimension")
        }
        other => panic!("expected DeviceLimit, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn weights_of_another_configuration_are_refused_by_set_weights() {
    let w = random_weights(config(), 1, 1.0);
    let other = random_weights(LstmConfig::new(4, 6, 1).unwrap(), 2, 1.0);
    for (device, mut lstm) in each_device(&w) {
        let r = lstm.set_weights(&other);
        let what = "weights (input_size, hidden_size, num_layers, directions, proj_size, bias)";
        println!("{device}");
        assert_shape_error(r, what, &[4, 5, 1, 1, 0, 1], &[4, 6, 1, 1, 0, 1]);
        // The model still holds its own weights.
        assert_eq!(lstm.weights().unwrap(), w, "{device}");
    }
}

#[test]
fn final_state_gradients_with_the_wrong_shape_are_shape_errors() {
    let w = random_weights(config(), 1, 1.0);
    let x: Array3<f32> = Array3::zeros((2, 3, 4));
    let bad_h = Upstream {
        dh_n: Some(Array3::zeros((1, 3, 5))),
        ..Default::default()
    };
    let bad_c = Upstream {
        dc_n: Some(Array3::zeros((2, 2, 5))),
        ..Default::default()
    };
    for (device, mut lstm) in each_device(&w) {
        println!("{device}");
        let (_, tape) = lstm.forward_train(x.view(), None).unwrap();
        let r = lstm.backward(&tape, &bad_h, GradRequest::ALL);
        assert_shape_error(r, "dh_n", &[1, 2, 5], &[1, 3, 5]);
        let r = lstm.backward(&tape, &bad_c, GradRequest::ALL);
        assert_shape_error(r, "dc_n", &[1, 2, 5], &[2, 2, 5]);
    }
}

#[test]
fn zero_batch_and_zero_feature_inputs_are_rejected_on_both_devices() {
    let w = random_weights(config(), 1, 1.0);
    for (device, mut lstm) in each_device(&w) {
        for (shape, dim) in [((0, 3, 4), "batch"), ((2, 3, 0), "input")] {
            let x: Array3<f32> = Array3::zeros(shape);
            match lstm.forward_train(x.view(), None) {
                Err(Error::ZeroSize { tensor, dim: d, .. }) => {
                    assert_eq!((tensor.as_str(), d), ("x", dim), "{device}")
                }
                other => panic!(
                    "{device} {shape:?}: expected ZeroSize, got {:?}",
                    other.map(|_| ())
                ),
            }
        }
    }
    match LstmConfig::new(0, 5, 1) {
        Err(Error::ZeroSize { dim, .. }) => assert_eq!(dim, "input_size"),
        other => panic!("expected ZeroSize, got {other:?}"),
    }
    match LstmConfig::new(4, 5, 0) {
        Err(Error::ZeroSize { dim, .. }) => assert_eq!(dim, "num_layers"),
        other => panic!("expected ZeroSize, got {other:?}"),
    }
}
