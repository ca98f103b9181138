//! After the device is lost (here: `wgpu::Device::destroy`), every call returns a typed error,
//! `Error::DeviceLost` on a device the crate made; nothing panics and nothing hangs.
mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{random_array, random_weights};
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, GpuTrainer, LrSchedule, Optimizer, TrainConfig, Trainer,
};
use lstm_wgpu::{Error, GradRequest, Lstm, LstmConfig, Upstream};

/// Runs `f` on its own thread and fails the test if it takes longer than `limit` (a hang).
fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: no answer within {limit:?} (hung or panicked)"))
}

#[test]
fn every_call_on_a_destroyed_device_is_device_lost() {
    within("the calls", Duration::from_secs(120), || {
        let gpu = Gpu::from_env().expect("GPU tests need an adapter");
        let expect_lost: Check = |what, r| match r {
            Err(Error::DeviceLost { reason }) => {
                assert!(reason.contains("Destroyed"), "{what}: {reason}")
            }
            other => panic!("{what} after destroy: expected DeviceLost, got {other:?}"),
        };
        calls_after_destroy(gpu.clone(), expect_lost);
        // wgpu makes pipelines on a lost device without a word: the crate's own check says it.
        expect_lost("compile_kernels", gpu.compile_kernels());
    });
}

#[test]
fn every_call_on_a_destroyed_application_device_is_a_gpu_error() {
    // The application's device keeps its own device-lost callback: wgpu's error scopes report
    // the loss instead.
    within("the calls", Duration::from_secs(120), || {
        let (device, queue) = common::device_with(|l| l);
        calls_after_destroy(
            Gpu::from_device(device, queue).unwrap(),
            |what, r| match r {
                Err(Error::Gpu { .. } | Error::Readback(_)) => {}
                other => panic!("{what} after destroy: expected a GPU error, got {other:?}"),
            },
        )
    });
}

type Check = fn(&str, lstm_wgpu::Result<()>);

fn calls_after_destroy(gpu: Gpu, expect_lost: Check) {
    {
        let config = LstmConfig::new(4, 8, 2).unwrap();
        let w = random_weights(config, 3, 1.0);
        let x: Array3<f32> = random_array((2, 5, 4), 4, -1.0, 1.0);
        let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
        let (_, tape) = lstm.forward_train(x.view(), None).unwrap();
        let model = ClassifierConfig::new(4, 8, 1, 3).unwrap();
        let train = TrainConfig {
            optimizer: Optimizer::adam(1e-3),
            clip_norm: Some(1.0),
            schedule: LrSchedule::constant(),
        };
        let mut trainer =
            GpuTrainer::new(&gpu, &ClassifierWeights::init(model, 1, None), train, None).unwrap();

        gpu.device().destroy();

        expect_lost(
            "backward",
            lstm.backward(&tape, &Upstream::default(), GradRequest::ALL)
                .map(drop),
        );
        expect_lost("forward", lstm.forward(x.view(), None).map(drop));
        expect_lost(
            "forward_train",
            lstm.forward_train(x.view(), None).map(drop),
        );
        expect_lost("weights", lstm.weights().map(drop));
        expect_lost(
            "set_weights",
            lstm.set_weights(&w).and_then(|_| lstm.weights().map(drop)),
        );
        expect_lost(
            "GpuLstm::new",
            GpuLstm::new(&gpu, &w)
                .and_then(|mut l| l.forward(x.view(), None))
                .map(drop),
        );
        let labels = [0u8, 2];
        expect_lost(
            "trainer step",
            trainer
                .step(x.view(), &labels, true)
                .and_then(|_| trainer.weights().map(drop))
                .map(drop),
        );
        expect_lost("trainer weights", trainer.weights().map(drop));
    }
}
