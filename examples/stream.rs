//! A trained Fashion-MNIST classifier reading images one row at a time, as if each row arrived
//! from a sensor: after every row it prints the running prediction and how long that row took.
//! The LSTM's state stays where the model runs (a GPU buffer, or host memory), and each row is
//! one streaming push of a single step that reads back only the top layer's `h` `[1, H]`; the
//! dense head then runs on the host.
//!
//! ```text
//! cargo run --release --example stream                       # the demo's checkpoint, CPU and GPU
//! cargo run --release --example stream -- --device cpu --images 5
//! ```
//!
//! It uses the checkpoint the training demo writes (`runs/fashion-mnist/checkpoint.safetensors`),
//! or, when there is none, trains the demo's model briefly on the CPU first.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::data::{FASHION_MNIST_DIR, MnistSplit, SequenceDataset, load_mnist_dir};
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::{Array1, Array2, Array3, Axis, s};
use lstm_wgpu::stream::{LstmStream, StreamRequest};
use lstm_wgpu::train::{
    Checkpoint, ClassifierConfig, ClassifierWeights, CpuTrainer, Event, LrSchedule, Optimizer,
    Plan, TrainConfig, fit,
};

const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Device {
    Cpu,
    Gpu,
    Both,
}

/// Classify Fashion-MNIST test images row by row with a streaming LSTM.
#[derive(Debug, Parser)]
struct Args {
    /// The classifier (a training checkpoint, or a classifier safetensors file).
    #[arg(long, default_value = "runs/fashion-mnist/checkpoint.safetensors")]
    checkpoint: PathBuf,
    /// Directory of the Fashion-MNIST IDX files.
    #[arg(long, default_value = FASHION_MNIST_DIR)]
    data: PathBuf,
    /// How many test images to classify.
    #[arg(long, default_value_t = 2)]
    images: usize,
    /// Where to run the LSTM.
    #[arg(long, value_enum, default_value = "both")]
    device: Device,
    /// Steps of the brief training run when there is no checkpoint.
    #[arg(long, default_value_t = 400)]
    train_steps: u64,
}

fn main() -> lstm_wgpu::Result<()> {
    let args = Args::parse();
    let test = load_mnist_dir(&args.data, MnistSplit::Test)?;
    let model = classifier(&args)?;
    if args.device != Device::Gpu {
        let lstm = CpuLstm::new(model.lstm.clone())?;
        println!("\n== CPU ({})", lstm.isa());
        run(&mut lstm.stream(1)?, &model, &test, args.images)?;
    }
    if args.device != Device::Cpu {
        let gpu = Gpu::from_env()?;
        let lstm = GpuLstm::new(&gpu, &model.lstm)?;
        println!("\n== GPU {}", gpu.describe());
        run(&mut lstm.stream(1)?, &model, &test, args.images)?;
    }
    Ok(())
}

/// The classifier of the checkpoint, or one trained briefly now.
fn classifier(args: &Args) -> lstm_wgpu::Result<ClassifierWeights> {
    if args.checkpoint.exists() {
        println!("model: {}", args.checkpoint.display());
        return match Checkpoint::load(&args.checkpoint) {
            Ok(ck) => Ok(ck.weights),
            Err(_) => ClassifierWeights::load(&args.checkpoint),
        };
    }
    println!(
        "model: {} not found (run the training demo to make it); training {} steps on the CPU",
        args.checkpoint.display(),
        args.train_steps
    );
    let train = load_mnist_dir(&args.data, MnistSplit::Train)?;
    let config = ClassifierConfig::new(train.features(), 128, 1, 10)?;
    let train_config = TrainConfig {
        optimizer: Optimizer::adam(1e-3),
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    let mut trainer =
        CpuTrainer::new(ClassifierWeights::init(config, 0, None), train_config, None)?;
    let plan = Plan {
        steps: args.train_steps,
        batch_size: 128,
        seed: 0,
        display_step: 200,
        eval_batch: 1000,
    };
    let mut last = None;
    fit(
        &mut trainer,
        &train,
        None,
        &plan,
        0,
        &mut |event, trainer| {
            if let Event::Step {
                step,
                metrics: Some(m),
                ..
            } = event
            {
                println!(
                    "  step {step}: loss {:.4}, accuracy {:.3}",
                    m.loss(),
                    m.accuracy()
                );
            }
            last = Some(trainer.weights()?);
            Ok(())
        },
    )?;
    Ok(last.expect("at least one step"))
}

/// Streams `images` test images through `stream` a row at a time, printing the running
/// prediction and each row's latency (push, readback and head).
fn run(
    stream: &mut dyn LstmStream,
    model: &ClassifierWeights,
    test: &SequenceDataset,
    images: usize,
) -> lstm_wgpu::Result<()> {
    let (rows, cols) = (test.seq_len(), test.features());
    let mut x = Array3::zeros((1, rows, cols));
    let mut labels = Vec::new();
    let mut latencies = Vec::new();
    let mut correct = 0;
    for n in 0..images.min(test.len()) {
        test.gather(&[n], &mut x, &mut labels)?;
        stream.reset(&[0])?;
        println!("image {n} (a {}):", CLASSES[usize::from(labels[0])]);
        let mut guess = 0;
        for r in 0..rows {
            let t0 = Instant::now();
            let out = stream.push(x.slice(s![.., r..r + 1, ..]), StreamRequest::LAST)?;
            let h = out.last.expect("asked for");
            let p = softmax(&head(model, &h));
            let dt = t0.elapsed();
            latencies.push(dt.as_secs_f64() * 1e6);
            guess = argmax(&p);
            println!(
                "  row {:>2}: {:<11} {:>5.1}%   {:>7.1} µs",
                r + 1,
                CLASSES[guess],
                100.0 * p[guess],
                dt.as_secs_f64() * 1e6
            );
        }
        correct += usize::from(guess == usize::from(labels[0]));
    }
    latencies.sort_by(f64::total_cmp);
    let median = latencies.get(latencies.len() / 2).copied().unwrap_or(0.0);
    println!(
        "{correct}/{} right after the last row; per-row latency median {median:.1} µs (min {:.1})",
        images.min(test.len()),
        latencies.first().copied().unwrap_or(0.0)
    );
    Ok(())
}

/// Logits `h · fc_weightᵀ + fc_bias` of one row `h` `[1, H]`, `[C]`.
fn head(model: &ClassifierWeights, h: &Array2<f32>) -> Array1<f32> {
    h.dot(&model.fc_weight.t())
        .index_axis(Axis(0), 0)
        .to_owned()
        + &model.fc_bias
}

fn softmax(logits: &Array1<f32>) -> Array1<f32> {
    let max = logits.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let e = logits.mapv(|v| (v - max).exp());
    let sum = e.sum();
    e / sum
}

fn argmax(p: &Array1<f32>) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}
