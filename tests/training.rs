//! Training end to end: learning a small task, checkpoints, resuming, batch order.
mod common;

use common::gpu;
use lstm_wgpu::Error;
use lstm_wgpu::data::SequenceDataset;
use lstm_wgpu::data::temporal_order::{TemporalOrderConfig, train_test};
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::schedule::BatchOrder;
use lstm_wgpu::train::{
    Checkpoint, ClassifierConfig, ClassifierWeights, CpuTrainer, Event, GpuTrainer, LrSchedule,
    Metrics, Optimizer, OptimizerState, Plan, TrainConfig, Trainer, fit,
};

/// The temporal-order task shrunk to sequences of 12-14 steps (markers at 2-4 and 7-9), so a
/// small LSTM learns it in a few hundred steps.
fn small_task(seed: u64) -> (SequenceDataset, SequenceDataset) {
    let config = TemporalOrderConfig {
        min_len: 12,
        max_len: 14,
        t1: (2, 4),
        t2: (7, 9),
    };
    train_test(&config, 1024, 256, seed).unwrap()
}

fn small_model(seed: u64) -> ClassifierWeights {
    ClassifierWeights::init(ClassifierConfig::new(8, 16, 1, 4).unwrap(), seed, Some(1.0))
}

fn adam() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(5.0),
        schedule: LrSchedule::constant(),
    }
}

/// Runs `plan` from `start` and returns the test metrics of the last epoch end.
fn run(
    trainer: &mut dyn Trainer,
    train: &SequenceDataset,
    test: &SequenceDataset,
    plan: &Plan,
    start: u64,
) -> Metrics {
    let mut last = None;
    fit(trainer, train, Some(test), plan, start, &mut |e, _| {
        if let Event::EpochEnd { test, .. } = e {
            last = test;
        }
        Ok(())
    })
    .unwrap();
    last.unwrap()
}

fn plan(steps: u64) -> Plan {
    Plan {
        steps,
        batch_size: 32,
        seed: 1,
        display_step: 50,
        eval_batch: 128,
    }
}

// Chance level is ln 4 ≈ 1.39 loss and 25% accuracy; 150 steps of Adam bring this task to a
// test loss of ~0.005 and every example right (seeded, so the run is always the same).
const LEARNED_LOSS: f64 = 0.05;
const LEARNED_ACCURACY: f64 = 0.98;

#[test]
fn cpu_training_learns_a_small_temporal_order_task() {
    let (train, test) = small_task(3);
    let mut t = CpuTrainer::new(small_model(4), adam(), None).unwrap();
    let before = t.evaluate(&test, 128).unwrap();
    let after = run(&mut t, &train, &test, &plan(150), 0);
    assert!(before.loss() > 1.2, "untrained loss {}", before.loss());
    assert!(
        after.loss() < LEARNED_LOSS && after.accuracy() >= LEARNED_ACCURACY,
        "after 150 steps: loss {} accuracy {}",
        after.loss(),
        after.accuracy()
    );
}

#[test]
fn gpu_training_learns_a_small_temporal_order_task() {
    let (train, test) = small_task(3);
    let mut t = GpuTrainer::new(&gpu(), &small_model(4), adam(), None).unwrap();
    let after = run(&mut t, &train, &test, &plan(150), 0);
    assert!(
        after.loss() < LEARNED_LOSS && after.accuracy() >= LEARNED_ACCURACY,
        "after 150 steps: loss {} accuracy {}",
        after.loss(),
        after.accuracy()
    );
}

/// A fresh directory for one test: `name` must differ between tests of this file, since they
/// run in parallel in one process.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn checkpoint_of(t: &dyn Trainer, plan: &Plan) -> Checkpoint {
    Checkpoint {
        weights: t.weights().unwrap(),
        config: *t.config(),
        dropout: t.dropout(),
        state: t.optimizer_state().unwrap(),
        planned_steps: Some(plan.steps),
        seed: plan.seed,
        batch_size: plan.batch_size,
        dataset: "temporal-order".into(),
    }
}

#[test]
fn a_checkpoint_round_trips_exactly() {
    let (train, test) = small_task(3);
    let mut t = CpuTrainer::new(small_model(4), adam(), None).unwrap();
    run(&mut t, &train, &test, &plan(5), 0);
    let ck = checkpoint_of(&t, &plan(5));
    let dir = temp_dir("checkpoint");
    let path = dir.join("ck.safetensors");
    ck.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back, ck);
    assert_eq!(back.state.step, 5);
    // The model part is an ordinary PyTorch-named file too.
    assert_eq!(ClassifierWeights::load(&path).unwrap(), ck.weights);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Makes a trainer from weights, a training configuration and (when resuming) optimizer state.
type MakeTrainer<'a> =
    &'a dyn Fn(&ClassifierWeights, TrainConfig, Option<OptimizerState>) -> Box<dyn Trainer>;

/// Trains 70 steps straight with `config`, and 40 + (checkpoint, reload) + 30, the last 30 with
/// the configuration the checkpoint holds; both must end bit-identical.
fn resume_matches(device: &str, config: TrainConfig, make: MakeTrainer<'_>) {
    let (train, test) = small_task(5);
    let w0 = small_model(6);
    // 1024 / 32 = 32 steps per epoch: 40 stops mid-epoch, 70 spans three epochs.
    let mut straight = make(&w0, config, None);
    run(straight.as_mut(), &train, &test, &plan(70), 0);

    let mut first = make(&w0, config, None);
    run(first.as_mut(), &train, &test, &plan(40), 0);
    let dir = temp_dir(&format!("resume-{device}-{}", config.schedule.name()));
    let path = dir.join("ck.safetensors");
    checkpoint_of(first.as_ref(), &plan(40))
        .save(&path)
        .unwrap();
    drop(first);
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.config, config);
    let mut resumed = make(&ck.weights, ck.config, Some(ck.state.clone()));
    run(resumed.as_mut(), &train, &test, &plan(70), ck.state.step);
    std::fs::remove_dir_all(dir).unwrap();

    assert_eq!(
        resumed.optimizer_state().unwrap(),
        straight.optimizer_state().unwrap()
    );
    assert_eq!(resumed.weights().unwrap(), straight.weights().unwrap());
}

fn cpu_trainer(
    w: &ClassifierWeights,
    c: TrainConfig,
    s: Option<OptimizerState>,
) -> Box<dyn Trainer> {
    Box::new(CpuTrainer::new(w.clone(), c, s).unwrap())
}

/// AdamW with a 10-step warm-up and a cosine to 0 at step 70: the checkpoint at step 40 is
/// halfway through the decay.
fn adamw_warmup_cosine() -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adam(AdamConfig {
            lr: 1e-2,
            weight_decay: 0.05,
            ..AdamConfig::default()
        }),
        clip_norm: Some(5.0),
        schedule: LrSchedule::cosine(70).with_warmup(10),
    }
}

#[test]
fn resuming_from_a_checkpoint_gives_the_same_weights_as_an_uninterrupted_cpu_run() {
    resume_matches("cpu", adam(), &cpu_trainer);
}

#[test]
fn resuming_from_a_checkpoint_gives_the_same_weights_as_an_uninterrupted_gpu_run() {
    let g = gpu();
    resume_matches("gpu", adam(), &|w, c, s| {
        Box::new(GpuTrainer::new(&g, w, c, s).unwrap())
    });
}

#[test]
fn resuming_mid_schedule_gives_the_same_weights_as_an_uninterrupted_cpu_run() {
    resume_matches("cpu", adamw_warmup_cosine(), &cpu_trainer);
}

#[test]
fn resuming_mid_schedule_gives_the_same_weights_as_an_uninterrupted_gpu_run() {
    let g = gpu();
    resume_matches("gpu", adamw_warmup_cosine(), &|w, c, s| {
        Box::new(GpuTrainer::new(&g, w, c, s).unwrap())
    });
}

#[test]
fn a_checkpoint_keeps_the_weight_decay_and_the_schedule() {
    let schedules = [
        LrSchedule::constant().with_warmup(7),
        LrSchedule::cosine(5_000).with_warmup(100),
        LrSchedule::step(1_000, 0.3),
    ];
    let dir = temp_dir("checkpoint-schedules");
    for (i, schedule) in schedules.into_iter().enumerate() {
        let optimizer = match i {
            // SGD keeps no weight decay; the schedule alone must survive.
            2 => Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
            },
            _ => Optimizer::Adam(AdamConfig {
                lr: 3e-3,
                weight_decay: 0.01 * (i + 1) as f32,
                ..AdamConfig::default()
            }),
        };
        let config = TrainConfig {
            optimizer,
            clip_norm: None,
            schedule,
        };
        let t = CpuTrainer::new(small_model(4), config, None).unwrap();
        let ck = checkpoint_of(&t, &plan(5));
        let path = dir.join(format!("ck{i}.safetensors"));
        ck.save(&path).unwrap();
        assert_eq!(
            Checkpoint::load(&path).unwrap().config,
            config,
            "{schedule}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_checkpoint_from_before_weight_decay_and_schedules_loads_as_plain_adam_at_a_constant_rate() {
    let dir = temp_dir("checkpoint-old-format");
    let path = dir.join("ck.safetensors");
    let config = adamw_warmup_cosine();
    let t = CpuTrainer::new(small_model(4), config, None).unwrap();
    let ck = checkpoint_of(&t, &plan(5));
    ck.save(&path).unwrap();
    // The same file as format 1 wrote it: without the keys the format gained with weight
    // decay and schedules (version 2), and without the planned end, stored since.
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    for key in [
        "weight_decay",
        "lr_schedule",
        "warmup_steps",
        "lr_total_steps",
        "planned_steps",
    ] {
        assert!(meta.remove(key).is_some(), "{key} was saved");
    }
    assert_eq!(meta["format"], "lstm-wgpu checkpoint 2");
    meta.insert("format".into(), "lstm-wgpu checkpoint 1".into());
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    std::fs::write(
        &path,
        safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
    )
    .unwrap();

    let old = Checkpoint::load(&path).unwrap();
    let plain = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(5.0),
        schedule: LrSchedule::constant(),
    };
    assert_eq!(old.config, plain);
    assert_eq!(old.planned_steps, None);
    assert_eq!(old.weights, ck.weights);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn each_epoch_visits_a_reproducible_permutation() {
    let (n, b) = (100, 8);
    let mut order = BatchOrder::new(n, b, 42).unwrap();
    assert_eq!(order.steps_per_epoch(), 12);
    let epoch = |order: &mut BatchOrder, e: u64| -> Vec<usize> {
        (e * 12..(e + 1) * 12)
            .flat_map(|s| order.batch(s).to_vec())
            .collect()
    };
    let e0 = epoch(&mut order, 0);
    let mut sorted = e0.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        96,
        "an epoch's batches never repeat an example"
    );
    assert_ne!(epoch(&mut order, 1), e0, "epochs are shuffled differently");
    let mut again = BatchOrder::new(n, b, 42).unwrap();
    assert_eq!(
        again.batch(17),
        order.batch(17),
        "the same seed gives the same batches"
    );
    assert_ne!(
        BatchOrder::new(n, b, 43).unwrap().batch(0),
        BatchOrder::new(n, b, 42).unwrap().batch(0)
    );
}

#[test]
fn a_label_beyond_the_classes_is_a_data_error() {
    let cpu = CpuTrainer::new(small_model(1), adam(), None).unwrap();
    let gpu = GpuTrainer::new(&gpu(), &small_model(1), adam(), None).unwrap();
    let trainers: [(&str, Box<dyn Trainer>); 2] = [("cpu", Box::new(cpu)), ("gpu", Box::new(gpu))];
    let x = lstm_wgpu::ndarray::Array3::zeros((2, 5, 8));
    for (device, mut t) in trainers {
        match t.step(x.view(), &[1, 4], false) {
            Err(Error::Data(msg)) => assert!(msg.contains("label 4"), "{device}: {msg}"),
            other => panic!("{device}: expected a data error, got {other:?}"),
        }
        // An empty batch is refused too.
        let empty = lstm_wgpu::ndarray::Array3::zeros((0, 5, 8));
        assert!(
            matches!(
                t.step(empty.view(), &[], false),
                Err(Error::ZeroSize { .. })
            ),
            "{device}: an empty batch"
        );
    }
}

#[test]
fn a_non_positive_learning_rate_is_a_config_error() {
    let bad = TrainConfig {
        optimizer: Optimizer::adam(0.0),
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    assert!(matches!(
        CpuTrainer::new(small_model(1), bad, None),
        Err(Error::Config {
            what: "learning rate",
            ..
        })
    ));
    assert!(matches!(
        GpuTrainer::new(&gpu(), &small_model(1), bad, None),
        Err(Error::Config {
            what: "learning rate",
            ..
        })
    ));
}

#[test]
fn a_plain_weights_file_is_not_a_checkpoint() {
    let dir = temp_dir("not-a-checkpoint");
    let path = dir.join("w.safetensors");
    small_model(1).save(&path).unwrap();
    match Checkpoint::load(&path) {
        Err(Error::Checkpoint { reason, .. }) => assert!(reason.contains("format"), "{reason}"),
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_non_finite_loss_stops_fit_before_an_epoch_end_can_save_a_checkpoint() {
    let (mut train, test) = small_task(3);
    // One feature of every training sequence is NaN: the first step's loss is NaN.
    train
        .inputs
        .index_axis_mut(lstm_wgpu::ndarray::Axis(2), 0)
        .fill(f32::NAN);
    let cpu = CpuTrainer::new(small_model(1), adam(), None).unwrap();
    let gpu = GpuTrainer::new(&gpu(), &small_model(1), adam(), None).unwrap();
    let trainers: [(&str, Box<dyn Trainer>); 2] = [("cpu", Box::new(cpu)), ("gpu", Box::new(gpu))];
    for (device, mut t) in trainers {
        let mut events = 0;
        let r = fit(
            t.as_mut(),
            &train,
            Some(&test),
            &plan(40),
            0,
            &mut |_, _| {
                events += 1;
                Ok(())
            },
        );
        match r {
            Err(Error::NonFinite { tensor, .. }) => {
                assert_eq!(tensor, "minibatch loss at step 1", "{device}")
            }
            other => panic!("{device}: expected NonFinite, got {other:?}"),
        }
        assert_eq!(events, 0, "{device}: the callback saw the diverged step");
    }
}

/// A two-layer bidirectional model with dropout between its layers, on the temporal-order task's
/// sequences of their real lengths.
fn dropout_model(seed: u64) -> ClassifierWeights {
    let lstm = lstm_wgpu::LstmConfig::new(8, 12, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap();
    ClassifierWeights::init(
        ClassifierConfig::with_lstm(lstm, 4).unwrap(),
        seed,
        Some(1.0),
    )
}

/// Trains 50 steps straight, and 30 + (checkpoint with its dropout, reload) + 20: the masks of
/// each step come from its number, so both end bit-identical.
fn resume_with_dropout_matches(device: &str, make: MakeTrainer<'_>) {
    let (train, test) = small_task(7);
    let dropout = Some(lstm_wgpu::Dropout::new(0.3, 11).unwrap());
    let w0 = dropout_model(8);
    let mut straight = make(&w0, adam(), None);
    run(straight.as_mut(), &train, &test, &plan(50), 0);
    let mut first = make(&w0, adam(), None);
    run(first.as_mut(), &train, &test, &plan(30), 0);
    assert_eq!(first.dropout(), dropout, "{device}");
    let dir = temp_dir(&format!("resume-dropout-{device}"));
    let path = dir.join("ck.safetensors");
    checkpoint_of(first.as_ref(), &plan(30))
        .save(&path)
        .unwrap();
    drop(first);
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(
        ck.dropout, dropout,
        "{device}: the checkpoint keeps the dropout"
    );
    let mut resumed = make(&ck.weights, ck.config, Some(ck.state.clone()));
    run(resumed.as_mut(), &train, &test, &plan(50), ck.state.step);
    std::fs::remove_dir_all(dir).unwrap();
    assert_eq!(
        resumed.weights().unwrap(),
        straight.weights().unwrap(),
        "{device}"
    );
}

#[test]
fn resuming_a_bidirectional_model_with_dropout_matches_an_uninterrupted_cpu_run() {
    let d = Some(lstm_wgpu::Dropout::new(0.3, 11).unwrap());
    resume_with_dropout_matches("cpu", &|w, c, s| {
        Box::new(CpuTrainer::new(w.clone(), c, s).unwrap().with_dropout(d))
    });
}

#[test]
fn resuming_a_bidirectional_model_with_dropout_matches_an_uninterrupted_gpu_run() {
    let (g, d) = (gpu(), Some(lstm_wgpu::Dropout::new(0.3, 11).unwrap()));
    resume_with_dropout_matches("gpu", &|w, c, s| {
        Box::new(GpuTrainer::new(&g, w, c, s).unwrap().with_dropout(d))
    });
}
