//! `Gpu::profile`: every dispatch the crate submits inside it is timed once, under the kernel and
//! purpose it ran for, with the work it did; nothing else changes.
//!
//! Each test makes its own device: a profile covers every dispatch of its device, and the
//! shared test device runs other tests' work in parallel.
mod common;

use common::{assert_same_bits, device_with, random_array, random_state, random_weights};
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, GpuLstm, GpuTensor, ProfileTiming};
use lstm_wgpu::ndarray::{Array2, Array3, ArrayView1, s};
use lstm_wgpu::stream::{LstmStream, StreamRequest};
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, GpuTrainer, LrSchedule, Optimizer, TrainConfig, Trainer,
};
use lstm_wgpu::wgpu::Features;
use lstm_wgpu::{Error, GradRequest, Lstm, LstmConfig, Upstream};

const B: usize = 3;
const T: usize = 7;
const I: usize = 4;
const H: usize = 6;
const L: usize = 2;

fn own_gpu() -> Gpu {
    Gpu::from_env().expect("an adapter")
}

fn setup(gpu: &Gpu, layers: usize) -> (GpuLstm, Array3<f32>) {
    let config = LstmConfig::new(I, H, layers).unwrap();
    let mut lstm = GpuLstm::new(gpu, &random_weights(config, 1, 1.0)).unwrap();
    let x: Array3<f32> = random_array((B, T, I), 2, -1.0, 1.0);
    lstm.forward(x.view(), None).unwrap(); // builds the workspace of this shape
    (lstm, x)
}

#[test]
fn a_profile_times_each_dispatch_of_a_forward_exactly_once() {
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, L);
    let before = lstm.stats();
    let (r, profile) = gpu.profile(|| lstm.forward(x.view(), None)).unwrap();
    r.unwrap();
    let d = lstm.stats() - before;
    assert_eq!(profile.dispatches(), d.dispatches, "{profile:?}\n{d:?}");
    let steps: u64 = profile
        .rows
        .iter()
        .filter(|r| r.label == "forward step")
        .map(|r| r.calls)
        .sum();
    assert_eq!(steps, (L * T) as u64, "{profile:?}");
    assert!(profile.total() > std::time::Duration::ZERO, "{profile:?}");
}

#[test]
fn a_profile_of_forward_backward_has_a_backward_step_row_of_t_calls_per_layer() {
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, L);
    let up = Upstream {
        dy: Some(random_array((B, T, H), 3, -1.0, 1.0)),
        ..Default::default()
    };
    lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    let before = lstm.stats();
    let (r, profile) = gpu
        .profile(|| lstm.forward_backward(x.view(), None, &up, GradRequest::ALL))
        .unwrap();
    r.unwrap();
    let d = lstm.stats() - before;
    assert_eq!(profile.dispatches(), d.dispatches, "{profile:?}\n{d:?}");
    let row = profile
        .rows
        .iter()
        .find(|r| r.label == "backward step")
        .unwrap_or_else(|| panic!("no backward step row: {profile:?}"));
    assert_eq!(row.kernel, Kernel::for_backward_step(B, &gpu), "{row:?}");
    assert_eq!(row.calls, (L * T) as u64, "{row:?}");
}

#[test]
fn the_forward_step_row_counts_two_flops_per_multiply_add_of_its_gate_matmul() {
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, 1);
    let (r, profile) = gpu.profile(|| lstm.forward(x.view(), None)).unwrap();
    r.unwrap();
    let row = profile
        .rows
        .iter()
        .find(|r| r.label == "forward step")
        .unwrap_or_else(|| panic!("no forward step row: {profile:?}"));
    // A step that projects its own input multiplies [x_t | h_{t-1}] by [W_ih | W_hh]ᵀ; one that
    // reads a precomputed projection only h_{t-1} by W_hhᵀ. Plus ~20 operations per unit for
    // the nonlinearities and the cell.
    let projected = profile.rows.iter().any(|r| r.label == "input projection");
    let k = if projected { H } else { I + H };
    let want = (T * (2 * B * 4 * H * k + 20 * B * H)) as u64;
    assert_eq!(row.work.flop, want, "{row:?}");
    assert!(row.work.bytes >= (T * 4 * 4 * H * k) as u64, "{row:?}");
}

#[test]
fn a_profiled_forward_gives_the_bits_of_an_unprofiled_one() {
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, L);
    let state = random_state(lstm.config(), B, 4);
    let want = lstm.forward(x.view(), Some(&state)).unwrap();
    let (got, _) = gpu
        .profile(|| lstm.forward(x.view(), Some(&state)))
        .unwrap();
    let got = got.unwrap();
    assert_eq!(got.y, want.y);
    assert_eq!(got.h_n, want.h_n);
    assert_eq!(got.c_n, want.c_n);
}

#[test]
fn a_profile_inside_a_profile_of_the_same_device_is_a_config_error() {
    let gpu = own_gpu();
    let (inner, _) = gpu.profile(|| gpu.profile(|| ())).unwrap();
    match inner {
        Err(Error::Config { .. }) => {}
        r => panic!("expected a Config error, got {r:?}"),
    }
    // The outer one ended normally: a new profile starts.
    gpu.profile(|| ()).unwrap();
}

/// A device of the tests' adapter asking for no features: no timestamp queries.
fn gpu_without_timestamps() -> Gpu {
    let (device, queue) = device_with(|l| l);
    assert!(
        !device.features().contains(Features::TIMESTAMP_QUERY),
        "device_with asks for no features"
    );
    Gpu::from_device(device, queue).unwrap()
}

/// The timings the device of `gpu` offers (submits on every device).
fn timings_of(gpu: &Gpu) -> Vec<ProfileTiming> {
    ProfileTiming::ALL
        .into_iter()
        .filter(|t| gpu.device().features().contains(t.features()))
        .collect()
}

#[test]
fn a_device_without_timestamp_queries_times_each_dispatch_by_its_submit() {
    let gpu = gpu_without_timestamps();
    let (mut lstm, x) = setup(&gpu, L);
    let before = lstm.stats();
    let (r, profile) = gpu.profile(|| lstm.forward(x.view(), None)).unwrap();
    r.unwrap();
    let d = lstm.stats() - before;
    assert_eq!(profile.timing, ProfileTiming::Submits);
    assert_eq!(profile.dispatches(), d.dispatches, "{profile:?}\n{d:?}");
    for row in &profile.rows {
        assert!(row.time > std::time::Duration::ZERO, "{row:?}");
    }
}

#[test]
fn a_timing_the_device_cannot_give_is_a_missing_feature_error() {
    let gpu = gpu_without_timestamps();
    for timing in [ProfileTiming::InsidePasses, ProfileTiming::PassBoundaries] {
        match gpu.profile_with(timing, || ()) {
            Err(Error::MissingFeature { feature, .. }) => {
                assert!(feature.contains("TIMESTAMP_QUERY"), "{timing:?}: {feature}")
            }
            r => panic!(
                "{timing:?}: expected MissingFeature, got {:?}",
                r.map(|_| ())
            ),
        }
    }
}

#[test]
fn every_timing_times_each_dispatch_once_and_leaves_forward_backward_bit_for_bit() {
    // Timed by pass boundaries or by submits, the profile splits the call's one pass (and its
    // one submit) around each dispatch: what the call computes must not change.
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, L);
    let up = Upstream {
        dy: Some(random_array((B, T, H), 3, -1.0, 1.0)),
        ..Default::default()
    };
    let state = random_state(lstm.config(), B, 4);
    let run = |lstm: &mut GpuLstm| {
        lstm.forward_backward(x.view(), Some(&state), &up, GradRequest::ALL)
            .unwrap()
    };
    let (want, want_g) = run(&mut lstm);
    let timings = timings_of(&gpu);
    assert!(timings.contains(&ProfileTiming::Submits), "{timings:?}");
    for timing in timings {
        let before = lstm.stats();
        let ((got, got_g), profile) = gpu.profile_with(timing, || run(&mut lstm)).unwrap();
        let d = lstm.stats() - before;
        assert_eq!(profile.timing, timing);
        assert_eq!(
            profile.dispatches(),
            d.dispatches,
            "{timing:?}: {profile:?}\n{d:?}"
        );
        assert!(profile.total() > std::time::Duration::ZERO, "{timing:?}");
        let what = |name: &str| format!("{timing:?}: {name}");
        assert_same_bits(
            &what("y"),
            &got.y.view().into_dyn(),
            &want.y.view().into_dyn(),
        );
        assert_same_bits(
            &what("h_n"),
            &got.h_n.view().into_dyn(),
            &want.h_n.view().into_dyn(),
        );
        let (g, w) = (got_g.x.unwrap(), want_g.x.as_ref().unwrap());
        assert_same_bits(&what("dx"), &g.view().into_dyn(), &w.view().into_dyn());
        for (l, (g, w)) in got_g
            .layers
            .unwrap()
            .iter()
            .zip(want_g.layers.as_ref().unwrap())
            .enumerate()
        {
            for ((name, a), (_, b)) in g.named(l, 0).into_iter().zip(w.named(l, 0)) {
                assert_same_bits(&what(&format!("d{name}")), &a, &b);
            }
        }
    }
}

#[test]
fn every_timing_leaves_a_training_step_bit_for_bit() {
    // A training step records buffer clears before its pass and copies after it: under every
    // timing the trainer's weights after a step are those of an unprofiled step.
    let gpu = own_gpu();
    let config = ClassifierConfig::new(I, H, L, 3).unwrap();
    let w = ClassifierWeights::init(config, 5, None);
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(0.05),
        schedule: LrSchedule::constant(),
    };
    let x: Array3<f32> = random_array((B, T, I), 6, -1.0, 1.0);
    let labels = [0u8, 2, 1];
    let step = |trainer: &mut GpuTrainer| trainer.step(x.view(), &labels, true).unwrap();
    let mut plain = GpuTrainer::new(&gpu, &w, train, None).unwrap();
    let want_metrics = step(&mut plain);
    let want = plain.weights().unwrap();
    for timing in timings_of(&gpu) {
        let mut trainer = GpuTrainer::new(&gpu, &w, train, None).unwrap();
        let (metrics, _) = gpu.profile_with(timing, || step(&mut trainer)).unwrap();
        assert_eq!(metrics, want_metrics, "{timing:?}");
        let got = trainer.weights().unwrap();
        for ((name, a), (_, b)) in got.tensors().into_iter().zip(want.tensors()) {
            let (a, b) = (a.unwrap(), b.unwrap());
            let (a, b) = (
                ArrayView1::from(a).into_dyn(),
                ArrayView1::from(b).into_dyn(),
            );
            assert_same_bits(&format!("{timing:?}: {name}"), &a, &b);
        }
    }
}

#[test]
fn every_timing_leaves_a_stream_bit_for_bit() {
    // A push copies the state of the push before into its buffers ahead of its pass: where a
    // profile submits the dispatches one by one, that copy must still run before the first.
    let gpu = own_gpu();
    let (lstm, x) = setup(&gpu, L);
    let pushes = |stream: &mut dyn LstmStream| -> Vec<Array2<f32>> {
        (0..T)
            .map(|t| {
                let out = stream
                    .push(x.slice(s![.., t..t + 1, ..]), StreamRequest::LAST)
                    .unwrap();
                out.last.unwrap()
            })
            .collect()
    };
    let want = pushes(&mut lstm.stream(B).unwrap());
    for timing in timings_of(&gpu) {
        let mut stream = lstm.stream(B).unwrap();
        let (got, _) = gpu.profile_with(timing, || pushes(&mut stream)).unwrap();
        for (t, (g, w)) in got.iter().zip(&want).enumerate() {
            let what = format!("{timing:?}: h at step {t}");
            assert_same_bits(&what, &g.view().into_dyn(), &w.view().into_dyn());
        }
    }
}

#[test]
fn work_recorded_into_an_applications_encoder_is_not_profiled() {
    let gpu = own_gpu();
    let (mut lstm, x) = setup(&gpu, L);
    let want = lstm.forward(x.view(), None).unwrap();
    let flat: Vec<f32> = x.iter().copied().collect();
    let x_buf = lstm_wgpu::wgpu::util::DeviceExt::create_buffer_init(
        gpu.device(),
        &lstm_wgpu::wgpu::util::BufferInitDescriptor {
            label: Some("x"),
            contents: bytemuck::cast_slice(&flat),
            usage: lstm_wgpu::wgpu::BufferUsages::STORAGE | lstm_wgpu::wgpu::BufferUsages::COPY_SRC,
        },
    );
    let ((encoded, after), profile) = gpu
        .profile(|| {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            let encoded = lstm.encode_forward(
                &mut encoder,
                (B, T),
                GpuTensor::whole(&x_buf),
                None,
                Default::default(),
            );
            gpu.queue().submit([encoder.finish()]);
            let before = lstm.stats();
            let after = lstm
                .forward(x.view(), None)
                .map(|y| (y, lstm.stats() - before));
            (encoded, after)
        })
        .unwrap();
    encoded.unwrap();
    let (y, d) = after.unwrap();
    assert_eq!(profile.dispatches(), d.dispatches, "{profile:?}\n{d:?}");
    assert_eq!(y.y, want.y, "the profiled call after the encoded one");
}

#[test]
fn a_profile_whose_code_panics_ends_so_the_next_one_starts() {
    let gpu = own_gpu();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gpu.profile(|| panic!("the profiled code fails"))
            .map(|_: ((), _)| ())
    }));
    assert!(panicked.is_err(), "the panic reaches the caller");
    gpu.profile(|| ()).unwrap();
}
