//! Per-kernel GPU time of a forward pass, a forward+backward pass and one training step, read
//! against the adapter's peak (see `lstm_wgpu::gpu::profile` and `lstm_wgpu::gpu::peak`).
//!
//! ```text
//! cargo run --release --example profile              # the reference classifier's size
//! cargo run --release --example profile -- 1 1000 32 128   # B T I H
//! cargo run --release --example profile -- --timing submits   # how each dispatch is timed
//! ```
//!
//! Each pass runs once unprofiled first, so its pipelines and buffers exist, then once inside
//! `Gpu::profile_with`, timed the most precise way the device offers unless `--timing`
//! (`inside-passes`, `pass-boundaries` or `submits`) says otherwise.

use lstm_wgpu::gpu::{Gpu, GpuLstm, ProfileTiming};
use lstm_wgpu::ndarray::{Array3, ArrayView3};
use lstm_wgpu::rng::Rng;
use lstm_wgpu::train::{
    ClassifierConfig, ClassifierWeights, GpuTrainer, LrSchedule, Optimizer, TrainConfig, Trainer,
};
use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmWeights, Upstream};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let timing = match args.iter().position(|a| a == "--timing") {
        Some(i) => {
            let name = args.get(i + 1).ok_or("--timing needs a value")?.clone();
            args.drain(i..i + 2);
            Some(match name.as_str() {
                "inside-passes" => ProfileTiming::InsidePasses,
                "pass-boundaries" => ProfileTiming::PassBoundaries,
                "submits" => ProfileTiming::Submits,
                _ => return Err(format!("unknown timing {name}").into()),
            })
        }
        None => None,
    };
    let args: Vec<usize> = args
        .iter()
        .map(|a| a.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected B T I H as numbers: {e}"))?;
    let [b, t, i, h] = match args.as_slice() {
        [] => [128, 28, 28, 128],
        &[b, t, i, h] => [b, t, i, h],
        _ => return Err("expected no arguments or B T I H".into()),
    };
    let gpu = Gpu::from_env()?;
    let timing = timing.unwrap_or(ProfileTiming::best_for(gpu.device().features()));
    println!("adapter: {}", gpu.describe());
    println!("timing:  {timing:?}");
    let peak = gpu.measure_peak()?;
    println!("peak:    {peak}");
    println!("size:    B{b} T{t} I{i} H{h}, one layer\n");

    let mut rng = Rng::new(2);
    let x = Array3::from_shape_simple_fn((b, t, i), || rng.uniform(0.0, 1.0) as f32);
    let up = Upstream {
        dy: Some(Array3::from_shape_simple_fn((b, t, h), || {
            rng.uniform(-1.0, 1.0) as f32
        })),
        ..Default::default()
    };
    let mut lstm = GpuLstm::new(
        &gpu,
        &LstmWeights::init_uniform(LstmConfig::new(i, h, 1)?, 1),
    )?;
    let forward = |lstm: &mut GpuLstm| lstm.forward(x.view(), None).map(|_| ());
    let backward = |lstm: &mut GpuLstm| {
        lstm.forward_backward(x.view(), None, &up, GradRequest::WEIGHTS)
            .map(|_| ())
    };
    report(&gpu, (&peak, timing), "forward", || forward(&mut lstm))?;
    report(&gpu, (&peak, timing), "forward+backward", || {
        backward(&mut lstm)
    })?;

    let model = ClassifierConfig::new(i, h, 1, 10)?;
    let config = TrainConfig {
        optimizer: Optimizer::adam(1e-3),
        clip_norm: Some(1.0),
        schedule: LrSchedule::constant(),
    };
    let mut trainer =
        GpuTrainer::new(&gpu, &ClassifierWeights::init(model, 1, None), config, None)?;
    let labels: Vec<u8> = (0..b).map(|n| (n % 10) as u8).collect();
    let step = |tr: &mut GpuTrainer, x: ArrayView3<'_, f32>| tr.step(x, &labels, true).map(|_| ());
    report(
        &gpu,
        (&peak, timing),
        "training step (Adam, clipped)",
        || step(&mut trainer, x.view()),
    )?;
    Ok(())
}

/// Runs `f` once to warm up, once profiled, and prints the table.
fn report(
    gpu: &Gpu,
    (peak, timing): (&lstm_wgpu::gpu::Peak, ProfileTiming),
    name: &str,
    mut f: impl FnMut() -> lstm_wgpu::Result<()>,
) -> lstm_wgpu::Result<()> {
    f()?;
    let (r, profile) = gpu.profile_with(timing, &mut f)?;
    r?;
    println!("{name}:");
    println!("{}", profile.table(Some(peak)));
    Ok(())
}
