//! Streaming latency: one push of a single step (reading back the top layer's `h` `[B, H]`)
//! at B1 H128 and B32 H128 (I32, one layer), on the CPU and the GPU, beside
//!
//! * `long call, per step`: one forward call over many steps, its time divided by the steps
//!   (what a step costs when the whole sequence is known in advance), and
//! * on the GPU, `floor`: the adapter's own minimum for any call that reads something back,
//!   one empty dispatch, a 4-byte copy, one submit and one mapping, with plain wgpu.
//!
//! `cargo bench --bench stream`. Compare the push with the two lines beside it, measured in the
//! same run.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::{Array3, s};
use lstm_wgpu::rng::Rng;
use lstm_wgpu::stream::{LstmStream, StreamRequest};
use lstm_wgpu::wgpu;
use lstm_wgpu::{Lstm, LstmConfig, LstmWeights};

const I: usize = 32;
const H: usize = 128;

/// `(B, steps of the long call)`.
const SIZES: [(usize, usize); 2] = [(1, 300), (32, 50)];

/// Times `f`, which runs `steps` steps, per step.
fn per_step(iters: u64, steps: usize, mut f: impl FnMut()) -> Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        f();
    }
    t0.elapsed() / steps as u32
}

fn bench(c: &mut Criterion) {
    let gpu = common::gpu();
    let w = LstmWeights::init_uniform(LstmConfig::new(I, H, 1).unwrap(), 1);
    let mut group = c.benchmark_group("stream-step");
    group.sample_size(20);
    for (b, long) in SIZES {
        let mut rng = Rng::new(2);
        let x = Array3::from_shape_simple_fn((b, long, I), || rng.uniform(0.0, 1.0) as f32);
        let step = x.slice(s![.., ..1, ..]);

        let mut cpu = CpuLstm::new(w.clone()).unwrap();
        let mut stream = cpu.stream(b).unwrap();
        group.bench_function(format!("cpu/B{b} H{H}/push 1 step"), |bch| {
            bch.iter(|| black_box(stream.push(step, StreamRequest::LAST).unwrap()))
        });
        group.bench_function(format!("cpu/B{b} H{H}/long call, per step"), |bch| {
            bch.iter_custom(|iters| {
                per_step(iters, long, || {
                    black_box(cpu.forward(x.view(), None).unwrap());
                })
            })
        });

        let Some(gpu) = gpu.as_ref() else { continue };
        let mut lstm = GpuLstm::new(gpu, &w).unwrap();
        let mut stream = lstm.stream(b).unwrap();
        group.bench_function(format!("gpu/B{b} H{H}/push 1 step"), |bch| {
            bch.iter(|| black_box(stream.push(step, StreamRequest::LAST).unwrap()))
        });
        group.bench_function(format!("gpu/B{b} H{H}/long call, per step"), |bch| {
            bch.iter_custom(|iters| {
                per_step(iters, long, || {
                    black_box(lstm.forward(x.view(), None).unwrap());
                })
            })
        });
    }
    if let Some(gpu) = gpu.as_ref() {
        let floor = Floor::new(gpu);
        group.bench_function("gpu/floor: empty dispatch + 4-byte readback", |bch| {
            bch.iter(|| floor.run())
        });
    }
    group.finish();
}

/// The least a call that reads back can cost on the adapter: one dispatch of an empty kernel
/// and a copy of 4 bytes into a mappable buffer, one submit, one mapping waited on.
struct Floor {
    gpu: Gpu,
    pipeline: wgpu::ComputePipeline,
    src: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl Floor {
    fn new(gpu: &Gpu) -> Floor {
        let device = gpu.device();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("empty"),
            source: wgpu::ShaderSource::Wgsl("@compute @workgroup_size(1) fn main() {}".into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("empty"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: 4,
                usage,
                mapped_at_creation: false,
            })
        };
        Floor {
            gpu: gpu.clone(),
            pipeline,
            src: buffer(wgpu::BufferUsages::COPY_SRC),
            staging: buffer(wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ),
        }
    }

    fn run(&self) {
        let (device, queue) = (self.gpu.device(), self.gpu.queue());
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.dispatch_workgroups(1, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&self.src, 0, &self.staging, 0, 4);
        queue.submit([encoder.finish()]);
        let slice = self.staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, |r| r.unwrap());
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        black_box(slice.get_mapped_range().unwrap()[0]);
        self.staging.unmap();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
