//! Sizes that cannot fit in host memory are refused with a typed error before anything is
//! allocated for them, instead of aborting the process.
mod common;

use common::gpu;
use lstm_wgpu::train::{
    AdamConfig, ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer,
    TrainConfig,
};
use lstm_wgpu::{Error, LstmConfig, LstmWeights, host_memory};

/// 300 000 hidden units: 1.4 TB of parameters, beyond the memory of any machine the tests run
/// on, yet a size a command line can ask for.
const HUGE: usize = 300_000;

fn adam() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam(AdamConfig::default()),
        clip_norm: None,
        schedule: LrSchedule::constant(),
    }
}

fn expect_host_memory<T: std::fmt::Debug>(r: lstm_wgpu::Result<T>, what: &str) -> u64 {
    match r {
        Err(Error::HostMemory { what: w, bytes }) => {
            assert_eq!(w, what);
            bytes
        }
        other => panic!("expected HostMemory for {what}, got {other:?}"),
    }
}

#[test]
fn a_configuration_whose_parameter_count_overflows_is_a_config_error() {
    for (i, h, l) in [
        (1, usize::MAX / 4, 1),
        (usize::MAX / 2, 4, 1),
        (8, 1 << 20, 1 << 40),
    ] {
        match LstmConfig::new(i, h, l) {
            Err(Error::Config { what, reason }) => {
                assert_eq!(what, "LstmConfig");
                assert!(reason.contains("address"), "{reason}");
            }
            other => panic!("I {i} H {h} L {l}: expected a config error, got {other:?}"),
        }
    }
    assert!(matches!(
        ClassifierConfig::new(28, 128, 1, usize::MAX / 64),
        Err(Error::HostMemory { .. })
    ));
}

#[test]
fn weights_beyond_host_memory_are_a_host_memory_error_not_an_abort() {
    let config = ClassifierConfig::new(28, HUGE, 1, 10).unwrap();
    let bytes = expect_host_memory(
        ClassifierWeights::try_init(config, 0, None),
        "classifier parameters",
    );
    assert_eq!(bytes, config.parameter_bytes().unwrap());
    assert_eq!(bytes, 4 * config.num_parameters() as u64);
    expect_host_memory(
        LstmWeights::<f64>::try_init_uniform(config.lstm, 0),
        "LSTM parameters",
    );
}

#[test]
fn weights_that_fit_are_the_ones_init_makes() {
    let config = ClassifierConfig::new(3, 5, 2, 4).unwrap();
    let w = ClassifierWeights::try_init(config, 9, Some(1.0)).unwrap();
    assert_eq!(w, ClassifierWeights::init(config, 9, Some(1.0)));
    let lstm = LstmWeights::<f32>::try_init_uniform(config.lstm, 9).unwrap();
    assert_eq!(lstm, LstmWeights::init_uniform(config.lstm, 9));
}

#[test]
fn a_cpu_trainer_beyond_host_memory_is_refused_before_the_weights_exist() {
    let config = ClassifierConfig::new(28, HUGE, 1, 10).unwrap();
    let bytes = expect_host_memory(CpuTrainer::check_fits(config, &adam()), "trainer state");
    // The weights, their gradients and Adam's two moments.
    assert_eq!(bytes, 4 * config.parameter_bytes().unwrap());
    CpuTrainer::check_fits(ClassifierConfig::new(28, 128, 1, 10).unwrap(), &adam()).unwrap();
}

#[test]
fn a_gpu_trainer_beyond_the_device_limits_is_refused_before_the_weights_exist() {
    // 30 000 units: 14 GB of parameters, more than any device binds as one storage buffer.
    let config = ClassifierConfig::new(28, 30_000, 1, 10).unwrap();
    match GpuTrainer::check_fits(&gpu(), config, &adam()) {
        Err(Error::DeviceLimit { tensor, bytes, .. }) => {
            assert_eq!(tensor, "parameters");
            assert!(bytes >= config.parameter_bytes().unwrap(), "{bytes}");
        }
        other => panic!("expected a device limit error, got {other:?}"),
    }
    let small = ClassifierConfig::new(28, 128, 1, 10).unwrap();
    GpuTrainer::check_fits(&gpu(), small, &adam()).unwrap();
}

#[test]
fn a_request_beyond_physical_memory_is_refused_and_a_small_one_granted() {
    expect_host_memory(host_memory::reserve("probe", u64::MAX), "probe");
    expect_host_memory(host_memory::reserve("probe", 1 << 50), "probe");
    host_memory::reserve("probe", 1 << 20).unwrap();
    expect_host_memory(host_memory::bytes_of("probe", usize::MAX, 8), "probe");
}
