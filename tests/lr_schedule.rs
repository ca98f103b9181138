//! Learning-rate schedules: `LrSchedule::factor` against its closed form and against PyTorch's
//! schedulers, its range checks, and both trainers stepping at the scheduled rate.
mod common;

use common::{gpu, random_array};
use lstm_wgpu::Error;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, CpuTrainer, GpuTrainer, LrDecay, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};

/// `factor(s)` for the first `values.len()` steps against `values`, each within `tol`.
fn assert_factors(what: &str, schedule: LrSchedule, values: &[f64], tol: f64) {
    for (s, &want) in values.iter().enumerate() {
        let got = schedule.factor(s as u64);
        assert!(
            (got - want).abs() <= tol,
            "{what}: step {s}: factor {got} against {want}"
        );
    }
}

// The PyTorch numbers below are `optimizer.param_groups[0]["lr"]` before each of ten
// `optimizer.step()` / `scheduler.step()` pairs, with a base learning rate of 1.0 (so the lr is
// the factor), printed by PyTorch 2.15's `torch.optim.lr_scheduler` with `repr`. Its schedulers
// update the rate recursively from the previous step's, so they agree with the closed form to a
// few f64 ulp, not bit for bit: 1e-12.
const PYTORCH_TOL: f64 = 1e-12;

#[test]
fn cosine_without_warmup_is_pytorchs_cosine_annealing_lr() {
    // CosineAnnealingLR(optimizer, T_max=10)
    let torch = [
        1.0,
        0.9755282581475768,
        0.9045084971874737,
        0.7938926261462366,
        0.6545084971874737,
        0.5,
        0.34549150281252633,
        0.2061073738537635,
        0.09549150281252633,
        0.024471741852423234,
    ];
    assert_factors("cosine 10", LrSchedule::cosine(10), &torch, PYTORCH_TOL);
}

#[test]
fn step_decay_without_warmup_is_pytorchs_step_lr() {
    // StepLR(optimizer, step_size=3, gamma=0.5); powers of 0.5 are exact.
    let torch = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125];
    assert_factors("step 3 x0.5", LrSchedule::step(3, 0.5), &torch, 0.0);
}

#[test]
fn warmup_then_cosine_is_pytorchs_linear_lr_then_cosine_annealing_lr() {
    // SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1/3, end_factor=1.0,
    // total_iters=2), CosineAnnealingLR(optimizer, T_max=7)], milestones=[3]); LambdaLR with
    // the documented f gives the same numbers.
    let torch = [
        0.3333333333333333,
        0.6666666666666666,
        1.0,
        1.0,
        0.9504844339512095,
        0.8117449009293668,
        0.6112604669781572,
        0.38873953302184283,
        0.18825509907063326,
        0.04951556604879048,
    ];
    let schedule = LrSchedule::cosine(10).with_warmup(3);
    assert_factors("warm-up 3, cosine 10", schedule, &torch, PYTORCH_TOL);
}

#[test]
fn warmup_then_step_decay_is_pytorchs_linear_lr_then_step_lr() {
    // SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1/2, end_factor=1.0,
    // total_iters=1), StepLR(optimizer, step_size=3, gamma=0.5)], milestones=[2])
    let torch = [0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25];
    let schedule = LrSchedule::step(3, 0.5).with_warmup(2);
    assert_factors("warm-up 2, step 3 x0.5", schedule, &torch, 0.0);
}

#[test]
fn the_warmup_rises_linearly_from_lr_over_w_to_lr() {
    // f(s) = (s + 1) / W: quarters are exact in binary.
    let schedule = LrSchedule::constant().with_warmup(4);
    assert_factors(
        "warm-up 4",
        schedule,
        &[0.25, 0.5, 0.75, 1.0, 1.0, 1.0],
        0.0,
    );
}

#[test]
fn cosine_falls_to_half_midway_through_its_decay_and_to_zero_at_its_end() {
    // W = 4, T = 104: 100 decay steps, k = s − 4. cos(π/2) is 6e-17 in f64, not 0.
    let schedule = LrSchedule::cosine(104).with_warmup(4);
    assert_eq!(schedule.factor(4), 1.0, "the decay starts at the full rate");
    assert!((schedule.factor(54) - 0.5).abs() < 1e-15);
    let last = 0.5 * (1.0 - (std::f64::consts::PI / 100.0).cos());
    assert!(
        (schedule.factor(103) - last).abs() < 1e-15,
        "the run's last step"
    );
    assert_eq!(schedule.factor(104), 0.0, "no floor: 0 at total_steps");
    assert_eq!(schedule.factor(1_000), 0.0, "and 0 after it");
}

#[test]
fn step_decay_multiplies_by_gamma_every_step_size_steps_after_the_warmup() {
    let schedule = LrSchedule::step(100, 0.1).with_warmup(10);
    let gamma = 0.1f32 as f64;
    assert_eq!(schedule.factor(109), 1.0);
    assert_eq!(schedule.factor(110), gamma);
    assert_eq!(schedule.factor(309), gamma * gamma);
    assert_eq!(schedule.factor(310), gamma.powi(3));
}

#[test]
fn a_constant_schedule_returns_the_optimizers_learning_rate_bit_for_bit() {
    for lr in [1e-3f32, 0.1, 3.7e-5, f32::MIN_POSITIVE] {
        for step in [0, 1, 999, u64::MAX] {
            assert_eq!(
                LrSchedule::constant().lr_at(lr, step).to_bits(),
                lr.to_bits()
            );
        }
    }
}

#[test]
fn the_scheduled_learning_rate_is_the_optimizers_times_the_factor() {
    let config = TrainConfig {
        optimizer: Optimizer::adam(2e-3),
        clip_norm: None,
        schedule: LrSchedule::cosine(10).with_warmup(4),
    };
    // f(1) = 2/4 exactly.
    assert_eq!(config.lr_at(1), 1e-3);
    assert_eq!(config.optimizer_at(1).lr(), 1e-3);
    assert_eq!(config.optimizer_at(1), Optimizer::adam(1e-3));
}

#[test]
fn schedules_outside_their_ranges_are_config_errors() {
    let bad = [
        LrSchedule::cosine(10).with_warmup(10),
        LrSchedule::cosine(0),
        LrSchedule::step(0, 0.5),
        LrSchedule::step(10, 0.0),
        LrSchedule::step(10, 1.5),
        LrSchedule::step(10, f32::NAN),
    ];
    for schedule in bad {
        let config = TrainConfig {
            optimizer: Optimizer::adam(1e-3),
            clip_norm: None,
            schedule,
        };
        assert!(
            matches!(
                config.validate(),
                Err(Error::Config {
                    what: "learning-rate schedule",
                    ..
                })
            ),
            "{schedule:?}"
        );
    }
    let fine = [
        LrSchedule::cosine(11).with_warmup(10),
        LrSchedule::step(1, 1.0),
        LrSchedule::constant().with_warmup(5),
    ];
    for schedule in fine {
        assert!(schedule.validate().is_ok(), "{schedule:?}");
    }
}

#[test]
fn weight_decay_that_is_negative_or_not_finite_is_a_config_error() {
    for weight_decay in [-1e-4, f32::NAN, f32::INFINITY] {
        let optimizer = Optimizer::Adam(AdamConfig {
            weight_decay,
            ..AdamConfig::default()
        });
        let config = TrainConfig {
            optimizer,
            clip_norm: None,
            schedule: LrSchedule::constant(),
        };
        let model = ClassifierWeights::init(ClassifierConfig::new(3, 4, 1, 2).unwrap(), 1, None);
        assert!(
            matches!(
                CpuTrainer::new(model, config, None),
                Err(Error::Config {
                    what: "weight decay",
                    ..
                })
            ),
            "weight decay {weight_decay}"
        );
    }
}

/// Plain gradient descent (no momentum, no clipping) at 0.5 after a 2-step warm-up, then a
/// cosine to 0 at step 6: factors 0.5, 1, 1, 0.854, 0.5, 0.146.
fn sgd_warmup_cosine() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.5,
            momentum: 0.0,
        },
        clip_norm: None,
        schedule: LrSchedule {
            warmup_steps: 2,
            decay: LrDecay::Cosine { total_steps: 6 },
        },
    }
}

/// Weights before a step, weights after it and the step's gradients.
type Moved = (ClassifierWeights, ClassifierWeights, ClassifierWeights);

/// The learning rate each of six steps took, measured: plain gradient descent moves the weights
/// by `−lr·g`, so `lr = (w_before − w_after)·g / (g·g)` over all parameters. `step` trains on
/// one batch and returns what moved.
fn measured_lrs(mut step: impl FnMut(&Array3<f32>, &[u8]) -> Moved) -> Vec<f64> {
    (0..6)
        .map(|s| {
            let x: Array3<f32> = random_array((5, 4, 3), 40 + s, -1.0, 1.0);
            let (before, after, g) = step(&x, &[0, 1, 2, 1, 0]);
            let (mut moved, mut norm2) = (0.0f64, 0.0f64);
            for ((b, a), g) in before
                .tensors()
                .into_iter()
                .zip(after.tensors())
                .zip(g.tensors())
            {
                for ((&b, &a), &g) in b.1.unwrap().iter().zip(a.1.unwrap()).zip(g.1.unwrap()) {
                    moved += (b as f64 - a as f64) * g as f64;
                    norm2 += g as f64 * g as f64;
                }
            }
            moved / norm2
        })
        .collect()
}

fn model() -> ClassifierWeights {
    ClassifierWeights::init(ClassifierConfig::new(3, 8, 1, 3).unwrap(), 7, None)
}

/// Each measured rate against the schedule's, and the first warm-up step against the second.
fn check_follows_schedule(device: &str, measured: &[f64]) {
    let config = sgd_warmup_cosine();
    // Each weight's move is rounded to f32 next to a weight ~0.35 (1.5e-8 absolute against
    // moves of 1e-3 or more at the smallest rate); averaged over all parameters, the measured
    // rate is within 1e-4 of the scheduled one (2e-6 seen), while neighbouring steps' rates
    // differ by 15% or more.
    for (s, &got) in measured.iter().enumerate() {
        let want = config.lr_at(s as u64) as f64;
        assert!(
            ((got - want) / want).abs() < 1e-4,
            "{device}: step {}: measured lr {got}, scheduled {want}",
            s + 1
        );
    }
    assert!(
        measured[0] < 0.6 * measured[1],
        "{device}: the first warm-up step ({}) is not smaller than the second ({})",
        measured[0],
        measured[1]
    );
}

#[test]
fn the_cpu_trainer_steps_at_the_scheduled_learning_rate() {
    let mut t = CpuTrainer::new(model(), sgd_warmup_cosine(), None).unwrap();
    let measured = measured_lrs(|x, labels| {
        let before = t.weights().unwrap();
        t.step(x.view(), labels, false).unwrap();
        (before, t.weights().unwrap(), t.gradients().unwrap().clone())
    });
    check_follows_schedule("cpu", &measured);
}

#[test]
fn the_gpu_trainer_steps_at_the_scheduled_learning_rate() {
    let mut t = GpuTrainer::new(&gpu(), &model(), sgd_warmup_cosine(), None).unwrap();
    let measured = measured_lrs(|x, labels| {
        let before = t.weights().unwrap();
        t.step(x.view(), labels, false).unwrap();
        (before, t.weights().unwrap(), t.gradients().unwrap())
    });
    check_follows_schedule("gpu", &measured);
}
