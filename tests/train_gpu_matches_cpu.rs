//! GPU training steps (head, loss, backward, clipping, optimizer kernels) against the CPU
//! trainer, from the same initial weights.
mod common;

use common::gpu;
use common::train_vs_cpu::{assert_metrics_close, compare, data};
use lstm_wgpu::data::SequenceDataset;
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};

#[test]
fn adam_steps_with_active_clipping_match_cpu() {
    // clip_norm 0.05 is below the gradient norm of these batches, so the scale is active.
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(0.05),
        schedule: LrSchedule::constant(),
    };
    compare(ClassifierConfig::new(5, 9, 1, 4).unwrap(), train, 3);
}

#[test]
fn sgd_with_momentum_steps_match_cpu() {
    let train = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    compare(ClassifierConfig::new(5, 9, 1, 4).unwrap(), train, 3);
}

#[test]
fn adamw_steps_through_a_warmup_and_a_cosine_schedule_match_cpu() {
    // Steps at 1/2, 1, 1, 1/2 of lr (cosine to 0 at step 5), each decaying the weights by lr·λ.
    let train = TrainConfig {
        optimizer: Optimizer::Adam(AdamConfig {
            lr: 1e-2,
            weight_decay: 0.1,
            ..AdamConfig::default()
        }),
        clip_norm: Some(0.05),
        schedule: LrSchedule::cosine(5).with_warmup(2),
    };
    compare(ClassifierConfig::new(5, 9, 1, 4).unwrap(), train, 4);
}

#[test]
fn sgd_steps_through_a_warmup_and_a_step_schedule_match_cpu() {
    // Steps at 1/2, 1, 1, 1/2 of lr: the momentum buffer carries gradients, the rate is the
    // step's.
    let train = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        clip_norm: None,
        schedule: LrSchedule::step(1, 0.5).with_warmup(2),
    };
    compare(ClassifierConfig::new(5, 9, 1, 4).unwrap(), train, 4);
}

#[test]
fn a_two_layer_classifier_step_matches_cpu() {
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    compare(ClassifierConfig::new(3, 20, 2, 3).unwrap(), train, 2);
}

#[test]
fn evaluation_matches_cpu_with_a_padded_last_batch() {
    let config = ClassifierConfig::new(5, 9, 1, 4).unwrap();
    let w = ClassifierWeights::init(config, 4, None);
    let (x, labels) = data(10, 5, 5, 4, 99);
    let set = SequenceDataset::new("random", x, labels, 4).unwrap();
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-3),
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    let mut cpu = CpuTrainer::new(w.clone(), train, None).unwrap();
    let mut gpu = GpuTrainer::new(&gpu(), &w, train, None).unwrap();
    // 10 examples in batches of 4: the last batch holds 2 real examples and 2 padding rows.
    let (mc, mg) = (
        cpu.evaluate(&set, 4).unwrap(),
        gpu.evaluate(&set, 4).unwrap(),
    );
    assert_eq!(mg.count, 10);
    assert_metrics_close("evaluation", mg, mc);
}
