//! What a call records and transfers: one dispatch per timestep, one submit, one readback.
mod common;

use common::{
    gpu, gpu_tuned_as_hardware, projection_dispatches, random_array, random_state, random_weights,
};
use lstm_wgpu::Lstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{GradRequest, LstmConfig, Upstream};

const B: usize = 3;
const T: usize = 7;
const I: usize = 4;
const H: usize = 6;
const L: usize = 2;

fn setup() -> (GpuLstm, Array3<f32>) {
    setup_batch(B)
}

fn setup_batch(b: usize) -> (GpuLstm, Array3<f32>) {
    let config = LstmConfig::new(I, H, L).unwrap();
    let lstm = GpuLstm::new(&gpu(), &random_weights(config, 1, 1.0)).unwrap();
    (lstm, random_array((b, T, I), 2, -1.0, 1.0))
}

/// Dispatches of a forward pass of `b` rows: per layer, the input projection and one per step.
fn forward_dispatches(b: usize) -> u64 {
    (L * (projection_dispatches(b) + T)) as u64
}

#[test]
fn a_staged_forward_is_one_gemm_plus_one_dispatch_per_step_per_layer_in_one_submit() {
    let (gpu, b) = (gpu_tuned_as_hardware(), 20);
    assert_eq!(
        Kernel::for_forward_step(b, H, &gpu),
        Kernel::LstmForwardStep
    );
    let config = LstmConfig::new(I, H, L).unwrap();
    let mut lstm = GpuLstm::new(&gpu, &random_weights(config, 1, 1.0)).unwrap();
    let x: Array3<f32> = random_array((b, T, I), 2, -1.0, 1.0);
    lstm.forward(x.view(), None).unwrap(); // first call of this shape builds the workspace
    let before = lstm.stats();
    lstm.forward(x.view(), None).unwrap();
    let d = lstm.stats() - before;
    assert_eq!(d.dispatches, (L * (1 + T)) as u64, "{d:?}");
    assert_eq!(d.submits, 1, "{d:?}");
}

#[test]
fn a_forward_of_a_few_rows_is_one_dispatch_per_step_per_layer_with_no_gemm() {
    assert_eq!(
        projection_dispatches(B),
        0,
        "the step of {B} rows projects its input"
    );
    let (mut lstm, x) = setup();
    let state = random_state(lstm.config(), B, 3);
    lstm.forward(x.view(), None).unwrap(); // first call of this shape builds the workspace
    let before = lstm.stats();
    lstm.forward(x.view(), Some(&state)).unwrap();
    let d = lstm.stats() - before;
    assert_eq!(d.dispatches, (L * T) as u64, "{d:?}");
    assert_eq!(d.submits, 1, "{d:?}");
    assert_eq!(d.readbacks, 1, "no readback between steps: {d:?}");
    assert_eq!(
        d.bytes_read_back,
        ((B * T * H + 2 * L * B * H) * 4) as u64,
        "{d:?}"
    );
}

#[test]
fn the_device_counts_every_dispatch_by_kernel_across_handles_and_models() {
    // A device of its own, so that no other test's calls count.
    let (device, queue) = common::device_with(|l| l);
    let gpu = lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap();
    assert_eq!(gpu.dispatches_by_kernel(), vec![]);
    let staged = gpu.with_tuning(lstm_wgpu::gpu::Tuning::for_device_type(
        lstm_wgpu::wgpu::DeviceType::DiscreteGpu,
    ));
    let config = LstmConfig::new(I, H, L).unwrap();
    let w = random_weights(config, 1, 1.0);
    let x = random_array::<f32, _>((20, T, I), 2, -1.0, 1.0);
    let mut lstm = GpuLstm::new(&staged, &w).unwrap();
    lstm.forward(x.view(), None).unwrap();
    lstm.forward(x.view(), None).unwrap();
    let small = Kernel::for_forward_step(B, H, &gpu);
    GpuLstm::new(&gpu, &w)
        .unwrap()
        .forward(x.slice(lstm_wgpu::ndarray::s![..B, .., ..]), None)
        .unwrap();
    // Two staged passes: per layer, an input projection GEMM (20·T rows of I or H terms: the
    // staged GEMM, as the blocked ones need 256 terms and the direct one takes at most 32 rows)
    // and T steps; then the other handle's pass of B rows, T steps per layer of its own step.
    let mut want = vec![
        (Kernel::Matmul, 2 * L as u64),
        (Kernel::LstmForwardStep, (2 * L * T) as u64),
        (small, (L * T) as u64),
    ];
    want.sort_by_key(|&(k, _)| k as usize);
    assert_eq!(gpu.dispatches_by_kernel(), want);
}

#[test]
fn a_device_compiles_only_the_kernels_its_calls_dispatch() {
    let (device, queue) = common::device_with(|l| l);
    let gpu = lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap();
    assert_eq!(gpu.compiled_kernels(), vec![], "a new device");
    let (mut lstm, x) = (
        GpuLstm::new(
            &gpu,
            &random_weights(LstmConfig::new(I, H, L).unwrap(), 1, 1.0),
        )
        .unwrap(),
        random_array::<f32, _>((B, T, I), 2, -1.0, 1.0),
    );
    lstm.forward(x.view(), None).unwrap();
    let dispatched: Vec<Kernel> = gpu
        .dispatches_by_kernel()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(!dispatched.is_empty());
    assert_eq!(gpu.compiled_kernels(), dispatched);
}

#[test]
fn compile_kernels_compiles_every_kernel_the_device_runs() {
    // A device asked for no features has no subgroups: every other kernel compiles.
    let (device, queue) = common::device_with(|l| l);
    let gpu = lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap();
    assert!(!gpu.tuning().subgroups);
    gpu.compile_kernels().unwrap();
    let runs: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|k| !k.desc().subgroups)
        .collect();
    assert_eq!(gpu.compiled_kernels(), runs);
}

#[test]
fn a_repeated_shape_uploads_only_its_inputs() {
    let (mut lstm, x) = setup();
    let state = random_state(lstm.config(), B, 3);
    lstm.forward(x.view(), Some(&state)).unwrap();
    let before = lstm.stats();
    lstm.forward(x.view(), Some(&state)).unwrap();
    let d = lstm.stats() - before;
    // x, h0, c0: no buffers, uniforms or weights are written again.
    assert_eq!(d.uploads, 3, "{d:?}");
    assert_eq!(
        d.bytes_uploaded,
        ((B * T * I + 2 * L * B * H) * 4) as u64,
        "{d:?}"
    );
}

#[test]
fn forward_backward_is_one_submit_with_one_dispatch_per_step_each_way() {
    let (mut lstm, x) = setup();
    let up = Upstream {
        dy: Some(random_array((B, T, H), 4, -1.0, 1.0)),
        ..Default::default()
    };
    lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    let before = lstm.stats();
    lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    let d = lstm.stats() - before;
    // Per layer after the reverse sweep: dh0, dW_ih, dW_hh (over the h_prev the forward
    // kept), the bias column sum, and the input gradient (dy of the layer below, or dx at the
    // bottom).
    let after_sweep = 5;
    assert_eq!(
        d.dispatches,
        forward_dispatches(B) + (L * (T + after_sweep)) as u64,
        "{d:?}"
    );
    assert_eq!(d.submits, 1, "{d:?}");
    assert_eq!(d.readbacks, 1, "{d:?}");
}

#[test]
fn backward_reads_back_only_what_is_asked_for() {
    let (mut lstm, x) = setup();
    let up = Upstream {
        dh_n: Some(random_array((L, B, H), 4, -1.0, 1.0)),
        ..Default::default()
    };
    let (_, tape) = lstm.forward_train(x.view(), None).unwrap();
    let before = lstm.stats();
    let g = lstm.backward(&tape, &up, GradRequest::WEIGHTS).unwrap();
    let d = lstm.stats() - before;
    assert!(g.x.is_none() && g.h0.is_none() && g.layers.is_some());
    assert_eq!(d.submits, 1, "{d:?}");
    assert_eq!(d.readbacks, 1, "{d:?}");
    let params = lstm.config().num_parameters() as u64 * 4;
    // The gradient arena pads each tensor to 256 bytes; nothing but gradients comes back.
    assert!(
        d.bytes_read_back >= params && d.bytes_read_back < params + 8 * 256,
        "{d:?}"
    );

    let before = lstm.stats();
    lstm.backward(&tape, &up, GradRequest::NONE).unwrap();
    let d = lstm.stats() - before;
    assert_eq!(
        (d.submits, d.readbacks, d.bytes_read_back),
        (1, 0, 0),
        "{d:?}"
    );
}

mod training_step {
    use super::*;
    use lstm_wgpu::train::{
        ClassifierConfig, ClassifierWeights, GpuTrainer, LrSchedule, Optimizer, TrainConfig,
        Trainer,
    };

    fn trainer(clip: Option<f32>) -> GpuTrainer {
        let config = ClassifierConfig::new(I, H, L, 3).unwrap();
        let train = TrainConfig {
            optimizer: Optimizer::adam(1e-3),
            clip_norm: clip,
            schedule: LrSchedule::constant(),
        };
        GpuTrainer::new(
            &gpu(),
            &ClassifierWeights::init(config, 1, None),
            train,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_training_step_is_one_submit_that_reads_back_nothing_unless_reporting() {
        let mut t = trainer(Some(1.0));
        let x: Array3<f32> = random_array((B, T, I), 2, -1.0, 1.0);
        let labels = [0u8, 1, 2];
        t.step(x.view(), &labels, false).unwrap(); // builds the workspace
        let before = t.stats();
        t.step(x.view(), &labels, false).unwrap();
        let d = t.stats() - before;
        assert_eq!(
            (d.submits, d.readbacks, d.bytes_read_back),
            (1, 0, 0),
            "{d:?}"
        );
        // LSTM forward (projection and steps); head: logits, loss, dW_fc, db_fc, dh_n; LSTM
        // backward with no dx: L·T steps and per layer dh0, dW_ih, dW_hh, db, plus dy for the
        // layer below; clipping: two; optimizer: one.
        let backward = L * T + L * 4 + (L - 1);
        assert_eq!(
            d.dispatches,
            forward_dispatches(B) + (5 + backward + 2 + 1) as u64,
            "{d:?}"
        );

        let before = t.stats();
        let m = t.step(x.view(), &labels, true).unwrap();
        let d = t.stats() - before;
        assert!(m.is_some_and(|m| m.count == B));
        // Only the three metrics floats come back.
        assert_eq!(
            (d.submits, d.readbacks, d.bytes_read_back),
            (1, 1, 12),
            "{d:?}"
        );
    }
}
