//! `Gpu::profile`: every dispatch the crate submits inside it is timed once, under the kernel and
//! purpose it ran for, with the work it did; nothing else changes.
//!
//! Each test makes its own device: a profile covers every dispatch of its device, and the
//! shared test device runs other tests' work in parallel.
mod common;

use common::{device_with, random_array, random_state, random_weights};
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, GpuLstm, GpuTensor};
use lstm_wgpu::ndarray::Array3;
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

#[test]
fn a_profile_on_a_device_without_timestamp_queries_is_a_missing_feature_error() {
    let (device, queue) = device_with(|l| l);
    assert!(
        !device
            .features()
            .contains(lstm_wgpu::wgpu::Features::TIMESTAMP_QUERY),
        "device_with asks for no features"
    );
    let gpu = Gpu::from_device(device, queue).unwrap();
    match gpu.profile(|| ()) {
        Err(Error::MissingFeature { feature, .. }) => {
            assert!(feature.contains("TIMESTAMP_QUERY"), "{feature}")
        }
        r => panic!("expected MissingFeature, got {:?}", r.map(|_| ())),
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
