//! One forward pass of the reference LSTM (B = 128, T = 28, I = 28, H = 128) on the GPU and on
//! the CPU: prints the adapter, the shapes, the time of each and the largest difference.
//!
//! `cargo run --release --example forward`

use std::time::Instant;

use lstm_wgpu::Lstm;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::rng::Rng;
use lstm_wgpu::{LstmConfig, LstmWeights};

fn main() -> lstm_wgpu::Result<()> {
    let (b, t, i, h) = (128, 28, 28, 128);
    let weights = LstmWeights::init_uniform(LstmConfig::new(i, h, 1)?, 0);
    let mut rng = Rng::new(1);
    let x = Array3::from_shape_simple_fn((b, t, i), || rng.uniform(0.0, 1.0) as f32);

    let gpu = Gpu::from_env()?;
    println!("adapter: {}", gpu.describe());
    let mut on_gpu = GpuLstm::new(&gpu, &weights)?;
    let mut on_cpu = CpuLstm::new(weights)?;

    on_gpu.forward(x.view(), None)?; // builds the workspace for this shape
    let t0 = Instant::now();
    let g = on_gpu.forward(x.view(), None)?;
    let gpu_time = t0.elapsed();
    let before = on_gpu.stats();
    on_gpu.forward(x.view(), None)?;
    let cost = on_gpu.stats() - before;

    on_cpu.forward(x.view(), None)?;
    let t0 = Instant::now();
    let c = on_cpu.forward(x.view(), None)?;
    let cpu_time = t0.elapsed();

    let max_diff =
        g.y.iter()
            .zip(c.y.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
    println!(
        "x {:?} -> y {:?}, h_n {:?}, c_n {:?}",
        x.shape(),
        g.y.shape(),
        g.h_n.shape(),
        g.c_n.shape()
    );
    println!(
        "GPU {:.2} ms ({} dispatches, {} submit, {} readback), CPU {:.2} ms",
        gpu_time.as_secs_f64() * 1e3,
        cost.dispatches,
        cost.submits,
        cost.readbacks,
        cpu_time.as_secs_f64() * 1e3
    );
    println!("largest |y_gpu - y_cpu| = {max_diff:.3e}");
    Ok(())
}
