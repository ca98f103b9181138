//! Trains the reference LSTM sequence classifier: 28x28 images read row by row (28 steps of 28
//! pixels), an LSTM with 128 hidden units, a dense layer to 10 classes, softmax cross-entropy,
//! Adam at 1e-3, batch 128, the minibatch loss and accuracy every 200 steps, test accuracy at
//! the end of every epoch.
//!
//! `cargo run --release --example train -- --help` lists the options.

mod curves;
mod log;
mod run_dir;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lstm_wgpu::data::temporal_order::{self, TemporalOrderConfig};
use lstm_wgpu::data::{FASHION_MNIST_DIR, MnistSplit, SequenceDataset, load_mnist_dir};
use lstm_wgpu::gpu::Gpu;
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::train::{
    Checkpoint, ClassifierConfig, ClassifierWeights, CpuTrainer, Event, GpuTrainer, LrDecay,
    LrSchedule, Optimizer, OptimizerState, Plan, TrainConfig, Trainer, fit,
};
use lstm_wgpu::{Dropout, LstmConfig};

use curves::Point;
use log::{Events, MetricsLog};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Device {
    /// A hardware GPU when there is one, else the CPU.
    Auto,
    Gpu,
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerName {
    Adam,
    Sgd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScheduleName {
    /// --lr at every step.
    Constant,
    /// Half a cosine from --lr down to 0 at the run's last step (--steps or --epochs).
    Cosine,
    /// --lr multiplied by --lr-gamma every --lr-step-size steps.
    Step,
}

/// Train an LSTM sequence classifier (the classic row-by-row image task) on the GPU or the CPU.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Data: a directory of MNIST-format files (train-images-idx3-ubyte[.gz], ...), or
    /// `temporal-order` for the built-in task. Default: Fashion-MNIST from
    /// /usr/share/datasets/fashion-mnist when installed, else `temporal-order`.
    #[arg(long)]
    data: Option<String>,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = Device::Auto)]
    device: Device,
    /// Optimizer steps in all [default: 10000; temporal-order: 5000].
    #[arg(long)]
    steps: Option<u64>,
    /// Train this many epochs instead of --steps.
    #[arg(long, conflicts_with = "steps")]
    epochs: Option<u64>,
    /// Examples per step.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Learning rate (a schedule's peak).
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Learning-rate schedule after the warm-up (PyTorch's LambdaLR with the same factors; see
    /// lstm_wgpu::optim::LrSchedule).
    #[arg(long, value_enum, default_value_t = ScheduleName::Constant)]
    lr_schedule: ScheduleName,
    /// Linear warm-up over the first N steps: --lr/N on the first step, rising to --lr on the
    /// N-th; the schedule starts after it.
    #[arg(long, default_value_t = 0)]
    warmup_steps: u64,
    /// Steps between two multiplications by --lr-gamma (--lr-schedule step only).
    #[arg(long)]
    lr_step_size: Option<u64>,
    /// The factor of --lr-schedule step, in (0, 1] [default: 0.1].
    #[arg(long)]
    lr_gamma: Option<f32>,
    /// Decoupled weight decay λ: with --optimizer adam this is AdamW (p ← p·(1 − lr·λ) each
    /// step); --optimizer sgd refuses it.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Update rule (the tutorial's other variant is plain gradient descent: `sgd`).
    #[arg(long, value_enum, default_value_t = OptimizerName::Adam)]
    optimizer: OptimizerName,
    /// Momentum for `sgd` (0 is plain gradient descent).
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// Hidden units per layer [default: 128; temporal-order: 32].
    #[arg(long)]
    hidden: Option<usize>,
    /// Stacked LSTM layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Run every layer in both directions (PyTorch `bidirectional=True`); the dense layer reads
    /// the top layer's final state of both.
    #[arg(long)]
    bidirectional: bool,
    /// Project each layer's hidden state to this many features (PyTorch `proj_size`; 0 for
    /// none, else below --hidden).
    #[arg(long, default_value_t = 0)]
    proj_size: usize,
    /// Dropout between stacked layers in training (PyTorch `nn.LSTM(dropout=P)`), in [0, 1).
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Initial forget-gate bias, as TensorFlow's BasicLSTMCell(forget_bias=1.0) [default:
    /// PyTorch's initialisation; temporal-order: 1.0].
    #[arg(long)]
    forget_bias: Option<f32>,
    /// Clip the global gradient norm to this [default: no clipping; temporal-order: 1.0].
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Print the minibatch loss and accuracy every this many steps.
    #[arg(long, default_value_t = 200)]
    display_step: u64,
    /// Seed of the initial weights, the batch order and the generated data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Examples per evaluation batch.
    #[arg(long, default_value_t = 1000)]
    eval_batch: usize,
    /// Directory for metrics.csv, curves.png, the TensorBoard event files and
    /// checkpoint.safetensors (default: runs/<data>, or runs/<data>-2, -3, ... when that holds
    /// an earlier run; with --resume, the checkpoint's directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the run already in --out (without it a new run never overwrites an earlier one).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Continue training from a checkpoint: the model, optimizer, learning-rate schedule, weight
    /// decay, clipping, batch size, seed and data set are the checkpoint's (giving any of those
    /// flags as well is an error), and so is the end of a cosine schedule.
    #[arg(long, conflicts_with = "eval")]
    resume: Option<PathBuf>,
    /// Only evaluate a checkpoint on the test set.
    #[arg(long)]
    eval: Option<PathBuf>,
}

fn main() {
    let matches = Args::command().get_matches();
    let result = Args::from_arg_matches(&matches)
        .map_err(|e| e.to_string().into())
        .and_then(|args| {
            refuse_flags_a_checkpoint_decides(&args, &matches)?;
            refuse_flags_that_do_not_fit_together(&args)?;
            run(args)
        });
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The settings a checkpoint carries; given with --resume they would be silently ignored.
const SET_BY_CHECKPOINT: [&str; 17] = [
    "batch_size",
    "lr",
    "lr_schedule",
    "warmup_steps",
    "lr_step_size",
    "lr_gamma",
    "weight_decay",
    "optimizer",
    "momentum",
    "hidden",
    "layers",
    "bidirectional",
    "proj_size",
    "dropout",
    "forget_bias",
    "clip_norm",
    "seed",
];

/// An error naming the first flag given on the command line that --resume would ignore.
fn refuse_flags_a_checkpoint_decides(
    args: &Args,
    matches: &ArgMatches,
) -> Result<(), Box<dyn std::error::Error>> {
    if args.resume.is_none() {
        return Ok(());
    }
    for id in SET_BY_CHECKPOINT {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            let flag = id.replace('_', "-");
            return Err(format!(
                "--{flag} cannot be combined with --resume: a resumed run keeps the checkpoint's \
                 model, optimizer, learning-rate schedule, weight decay, clipping, batch size \
                 and seed"
            )
            .into());
        }
    }
    Ok(())
}

/// An error for optimizer and schedule flags that contradict each other.
fn refuse_flags_that_do_not_fit_together(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.optimizer == OptimizerName::Sgd && args.weight_decay != 0.0 {
        return Err(
            "--weight-decay applies to --optimizer adam (AdamW); sgd has no weight decay \
                    here"
                .into(),
        );
    }
    match (args.lr_schedule, args.lr_step_size) {
        (ScheduleName::Step, None) => Err("--lr-schedule step needs --lr-step-size N".into()),
        (ScheduleName::Step, Some(_)) => Ok(()),
        _ if args.lr_step_size.is_some() || args.lr_gamma.is_some() => {
            Err("--lr-step-size and --lr-gamma belong to --lr-schedule step".into())
        }
        _ => Ok(()),
    }
}

/// Settings that depend on the task when not given on the command line.
struct Defaults {
    steps: u64,
    hidden: usize,
    forget_bias: Option<f32>,
    clip_norm: Option<f32>,
}

/// The tutorial's settings for the image task.
const IMAGES: Defaults = Defaults {
    steps: 10_000,
    hidden: 128,
    forget_bias: None,
    clip_norm: None,
};

/// The temporal-order task needs information kept over ~90 steps: a small network, a forget
/// gate that starts open and clipped gradients get it past its long plateau at chance, typically
/// after 1000-3000 steps.
const TEMPORAL_ORDER: Defaults = Defaults {
    steps: 5_000,
    hidden: 32,
    forget_bias: Some(1.0),
    clip_norm: Some(1.0),
};

/// The data set to use: its name, the train and test sets, and the task's defaults. `seed`
/// generates the temporal-order task.
fn load_data(
    args: &Args,
    seed: u64,
) -> lstm_wgpu::Result<(String, SequenceDataset, SequenceDataset, Defaults)> {
    let choice = match &args.data {
        Some(d) => d.clone(),
        None if Path::new(FASHION_MNIST_DIR)
            .join("train-labels-idx1-ubyte.gz")
            .exists() =>
        {
            FASHION_MNIST_DIR.to_string()
        }
        None => {
            println!(
                "data: Fashion-MNIST is not installed (Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist`; \
                 or pass --data DIR with MNIST-format files); using the built-in temporal-order task"
            );
            "temporal-order".to_string()
        }
    };
    if choice == "temporal-order" {
        let (train, test) =
            temporal_order::train_test(&TemporalOrderConfig::default(), 10_000, 2_000, seed)?;
        println!(
            "data: temporal order (Hochreiter & Schmidhuber 1997, experiment 6a): which of X/Y came first, \
             markers at steps 10-20 and 50-60 of 100-110"
        );
        return Ok(("temporal-order".into(), train, test, TEMPORAL_ORDER));
    }
    let dir = Path::new(&choice);
    let train = load_mnist_dir(dir, MnistSplit::Train)?;
    let test = load_mnist_dir(dir, MnistSplit::Test)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mnist".into());
    println!("data: {} ({})", name, dir.display());
    Ok((name, train, test, IMAGES))
}

/// The device to train on, and why.
fn pick_device(choice: Device) -> lstm_wgpu::Result<Option<Gpu>> {
    match choice {
        Device::Cpu => {
            println!("device: CPU (--device cpu)");
            Ok(None)
        }
        Device::Gpu => {
            let gpu = Gpu::from_env()?;
            if gpu.is_software() {
                println!(
                    "device: GPU {} — a software adapter: expect it to be far slower than --device cpu",
                    gpu.describe()
                );
            } else {
                println!("device: GPU {}", gpu.describe());
            }
            Ok(Some(gpu))
        }
        Device::Auto => match Gpu::from_env() {
            Ok(gpu) if !gpu.is_software() => {
                println!("device: GPU {}", gpu.describe());
                Ok(Some(gpu))
            }
            Ok(gpu) => {
                println!(
                    "device: CPU — the only GPU adapter is {}, a software implementation that runs the shaders far \
                     slower than the CPU path (--device gpu uses it anyway)",
                    gpu.describe()
                );
                Ok(None)
            }
            Err(e) => {
                println!("device: CPU — {e}");
                Ok(None)
            }
        },
    }
}

/// The step the run ends at: --epochs or --steps when given, else where a resumed run was
/// planned to end (its checkpoint's `planned_steps`, or its cosine schedule's end in a checkpoint
/// written before that was stored), else the task's default. A resumed cosine schedule ends where
/// it was planned to: a different end is refused, since it would change the learning rate of
/// every remaining step.
fn run_length(
    args: &Args,
    per_epoch: u64,
    default: u64,
    resumed: Option<&Checkpoint>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let asked = match (args.epochs, args.steps) {
        (Some(e), _) => Some(e * per_epoch),
        (None, s) => s,
    };
    let cosine_end = resumed.and_then(|ck| match ck.config.schedule.decay {
        LrDecay::Cosine { total_steps } => Some(total_steps),
        _ => None,
    });
    match (cosine_end, asked) {
        (Some(total_steps), Some(n)) if n != total_steps => Err(format!(
            "the checkpoint's cosine schedule ends at step {total_steps}, not {n}: a resumed \
             run keeps it (leave out --steps and --epochs)"
        )
        .into()),
        (_, Some(n)) => Ok(n),
        (Some(total_steps), None) => Ok(total_steps),
        (None, None) => Ok(resumed.and_then(|ck| ck.planned_steps).unwrap_or(default)),
    }
}

/// The learning-rate schedule of a new run of `steps` steps, from the flags (checked by
/// [`refuse_flags_that_do_not_fit_together`]; the trainer checks the values).
fn schedule_from_flags(args: &Args, steps: u64) -> LrSchedule {
    let decay = match args.lr_schedule {
        ScheduleName::Constant => LrDecay::Constant,
        ScheduleName::Cosine => LrDecay::Cosine { total_steps: steps },
        ScheduleName::Step => LrDecay::Step {
            step_size: args.lr_step_size.unwrap_or(0),
            gamma: args.lr_gamma.unwrap_or(0.1),
        },
    };
    LrSchedule {
        warmup_steps: args.warmup_steps,
        decay,
    }
}

fn make_trainer(
    gpu: Option<&Gpu>,
    weights: &ClassifierWeights,
    (config, dropout): (TrainConfig, Option<Dropout>),
    state: Option<OptimizerState>,
) -> lstm_wgpu::Result<Box<dyn Trainer>> {
    Ok(match gpu {
        Some(g) => Box::new(GpuTrainer::new(g, weights, config, state)?.with_dropout(dropout)),
        None => Box::new(CpuTrainer::new(weights.clone(), config, state)?.with_dropout(dropout)),
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // A resumed run's data, batch order and model come from its checkpoint.
    let resume = match &args.resume {
        Some(path) => Some((path.clone(), Checkpoint::load(path)?)),
        None => None,
    };
    let data_seed = resume.as_ref().map_or(args.seed, |(_, ck)| ck.seed);
    let (name, train, test, defaults) = load_data(&args, data_seed)?;
    if let Some((path, ck)) = &resume
        && ck.dataset != name
    {
        return Err(format!(
            "{} was trained on {}, not on {name} (pass --data for its data set)",
            path.display(),
            ck.dataset
        )
        .into());
    }
    println!(
        "      {} training and {} test sequences of {} steps x {} features, {} classes",
        train.len(),
        test.len(),
        train.seq_len(),
        train.features(),
        train.num_classes
    );
    let gpu = pick_device(args.device)?;

    if let Some(path) = &args.eval {
        let ck = Checkpoint::load(path)?;
        let mut trainer = make_trainer(gpu.as_ref(), &ck.weights, (ck.config, None), None)?;
        let t0 = Instant::now();
        let m = trainer.evaluate(&test, args.eval_batch)?;
        println!(
            "{}: step {}, test loss {:.4}, Testing Accuracy: {:.4} ({} examples, {:.1} s)",
            path.display(),
            ck.state.step,
            m.loss(),
            m.accuracy(),
            m.count,
            t0.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let out = match &resume {
        Some((path, _)) => run_dir::for_resumed_run(args.out.as_deref(), path),
        None => run_dir::for_new_run(args.out.as_deref(), &name, args.overwrite)?,
    };
    let batch_size = resume
        .as_ref()
        .map_or(args.batch_size, |(_, ck)| ck.batch_size);
    let per_epoch = (train.len() / batch_size.max(1)).max(1) as u64;
    let steps = run_length(
        &args,
        per_epoch,
        defaults.steps,
        resume.as_ref().map(|(_, ck)| ck),
    )?;
    let (weights, config, dropout, state, seed) = match resume {
        Some((path, ck)) => {
            println!("resuming {} at step {}", path.display(), ck.state.step);
            (ck.weights, ck.config, ck.dropout, Some(ck.state), ck.seed)
        }
        None => {
            let hidden = args.hidden.unwrap_or(defaults.hidden);
            let lr = args.lr;
            let mut lstm = LstmConfig::new(train.features(), hidden, args.layers)?
                .with_bidirectional(args.bidirectional)?;
            if args.proj_size > 0 {
                lstm = lstm.with_proj_size(args.proj_size)?;
            }
            let model = ClassifierConfig::with_lstm(lstm, train.num_classes)?;
            // The masks' seed is the run's; step s draws pass s.
            let dropout = match args.dropout {
                0.0 => None,
                p => Some(Dropout::new(p, args.seed)?),
            };
            let optimizer = match args.optimizer {
                OptimizerName::Adam => Optimizer::Adam(AdamConfig {
                    lr,
                    weight_decay: args.weight_decay,
                    ..AdamConfig::default()
                }),
                OptimizerName::Sgd => Optimizer::Sgd {
                    lr,
                    momentum: args.momentum,
                },
            };
            let config = TrainConfig {
                optimizer,
                clip_norm: args.clip_norm.or(defaults.clip_norm),
                schedule: schedule_from_flags(&args, steps),
            };
            config.validate()?;
            let forget_bias = args.forget_bias.or(defaults.forget_bias);
            // Sizes from the command line are checked against the device and the host before
            // anything is allocated for them.
            match &gpu {
                Some(g) => GpuTrainer::check_fits(g, model, &config)?,
                None => CpuTrainer::check_fits(model, &config)?,
            }
            (
                ClassifierWeights::try_init(model, args.seed, forget_bias)?,
                config,
                dropout,
                None,
                args.seed,
            )
        }
    };
    let plan = Plan {
        steps,
        batch_size,
        seed,
        display_step: args.display_step,
        eval_batch: args.eval_batch,
    };
    let start = state.as_ref().map_or(0, |s| s.step);
    if steps <= start {
        let hint = match config.schedule.decay {
            LrDecay::Cosine { .. } => "its cosine schedule is over",
            _ => "raise --steps or --epochs",
        };
        return Err(format!(
            "nothing to train: the run is to end at step {steps} and starts at step {start} \
             ({hint})"
        )
        .into());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("run directory: {}", out.display());
    let model = weights.config();
    let mut trainer = make_trainer(gpu.as_ref(), &weights, (config, dropout), state)?;
    let variant = [
        model
            .lstm
            .bidirectional
            .then(|| "bidirectional".to_string()),
        (model.lstm.proj_size > 0).then(|| format!("proj {}", model.lstm.proj_size)),
        dropout.map(|d| format!("dropout {}", d.p())),
    ]
    .into_iter()
    .flatten()
    .map(|v| format!(", {v}"))
    .collect::<String>();
    println!(
        "model: LSTM({} -> {}, {} layer{}{variant}) + dense {} -> {}; {} lr {} ({}){}{}, batch {}, {} steps ({:.1} epochs of {} steps)",
        model.lstm.input_size,
        model.lstm.hidden_size,
        model.lstm.num_layers,
        if model.lstm.num_layers == 1 { "" } else { "s" },
        model.features(),
        model.classes,
        config.optimizer.name(),
        config.optimizer.lr(),
        config.schedule,
        match config.optimizer {
            Optimizer::Adam(a) => format!(", weight decay {}", a.weight_decay),
            Optimizer::Sgd { .. } => String::new(),
        },
        config
            .clip_norm
            .map(|c| format!(", clip {c}"))
            .unwrap_or_default(),
        batch_size,
        steps,
        steps as f64 / per_epoch as f64,
        per_epoch
    );

    let csv = out.join("metrics.csv");
    let png = out.join("curves.png");
    let checkpoint = out.join("checkpoint.safetensors");
    let mut log = MetricsLog::open(&csv, args.resume.as_ref().map(|_| start))?;
    let mut events = Events::open(&out, args.resume.as_ref().map(|_| start))?;
    let (mut train_pts, mut test_pts) = if start > 0 {
        log::read_points(&csv, start)
    } else {
        (Vec::new(), Vec::new())
    };
    let text = curves::load_font();

    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {per_sec:>10} eta {eta:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(start);
    let t0 = Instant::now();
    let mut epoch_start = Instant::now();
    let mut epoch_times = Vec::new();
    let mut last_test = None;

    fit(
        trainer.as_mut(),
        &train,
        Some(&test),
        &plan,
        start,
        &mut |event, trainer| {
            match event {
                Event::Step {
                    step,
                    epoch,
                    metrics,
                } => {
                    bar.set_position(step);
                    if let Some(m) = metrics {
                        bar.set_message(format!("loss {:.4} acc {:.3}", m.loss(), m.accuracy()));
                        bar.suspend(|| {
                            println!(
                                "Step {step}, Minibatch Loss= {:.4}, Training Accuracy= {:.3}",
                                m.loss(),
                                m.accuracy()
                            )
                        });
                        log.row(
                            step,
                            epoch,
                            "train",
                            m.loss(),
                            m.accuracy(),
                            t0.elapsed().as_secs_f64(),
                        )?;
                        events.train(
                            step,
                            m.loss(),
                            m.accuracy(),
                            // The rate the step just taken trained at.
                            trainer.config().lr_at(step - 1),
                        )?;
                        train_pts.push(Point {
                            step,
                            loss: m.loss(),
                            accuracy: m.accuracy(),
                        });
                    }
                }
                Event::EpochEnd { step, epoch, test } => {
                    let seconds = epoch_start.elapsed().as_secs_f64();
                    epoch_times.push((step, seconds));
                    if let Some(m) = test {
                        bar.suspend(|| {
                        println!(
                            "Epoch {epoch} (step {step}): test loss {:.4}, test accuracy {:.4}, {:.1} s",
                            m.loss(),
                            m.accuracy(),
                            seconds
                        )
                    });
                        log.row(
                            step,
                            epoch,
                            "test",
                            m.loss(),
                            m.accuracy(),
                            t0.elapsed().as_secs_f64(),
                        )?;
                        events.test(step, m.loss(), m.accuracy())?;
                        test_pts.push(Point {
                            step,
                            loss: m.loss(),
                            accuracy: m.accuracy(),
                        });
                        last_test = Some(m);
                    }
                    let ck = Checkpoint {
                        weights: trainer.weights()?,
                        config: *trainer.config(),
                        dropout: trainer.dropout(),
                        state: trainer.optimizer_state()?,
                        planned_steps: Some(steps),
                        seed,
                        batch_size,
                        dataset: name.clone(),
                    };
                    ck.save(&checkpoint)?;
                    let title = format!("LSTM on {name}: {}", trainer.device());
                    if let Err(e) = curves::draw(&png, &title, &train_pts, &test_pts, text) {
                        bar.suspend(|| eprintln!("could not draw {}: {e}", png.display()));
                    }
                    epoch_start = Instant::now();
                }
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();

    if let Some(m) = last_test {
        println!(
            "Testing Accuracy: {:.4} (loss {:.4})",
            m.accuracy(),
            m.loss()
        );
    }
    let full: Vec<f64> = epoch_times
        .iter()
        .filter(|(step, _)| step % per_epoch == 0)
        .map(|&(_, s)| s)
        .collect();
    if !full.is_empty() {
        let mean = full.iter().sum::<f64>() / full.len() as f64;
        println!(
            "{:.1} s per epoch on average over {} full epochs ({})",
            mean,
            full.len(),
            trainer.device()
        );
    }
    println!(
        "wrote {}, {}{}, {} and {} (tensorboard --logdir {})",
        csv.display(),
        png.display(),
        if text {
            ""
        } else {
            " (no font found: curves without labels)"
        },
        events.path().display(),
        checkpoint.display(),
        out.display()
    );
    Ok(())
}
