//! Forward and forward+backward, GPU vs CPU, at five sizes (B T I H): the reference
//! classifier's (seed, 128 28 28 128), a small one (8 28 28 32), a medium (64 100 64 256), a
//! large (32 50 512 512) and a streaming one (1 1000 32 128), the sizes
//! `shared/bench/pytorch_lstm.py`-style PyTorch and onnxruntime timings use.
//!
//! The CPU path runs once per instruction set this processor supports (`cpu-avx512`,
//! `cpu-avx2`, `cpu-scalar`), so one run compares them.
//!
//! `cargo bench --bench lstm`; a criterion filter picks cases, e.g.
//! `cargo bench --bench lstm -- "cpu-avx512/seed"`. On a software adapter (lavapipe) the GPU
//! figures measure dispatch overhead and a CPU running WGSL, not GPU speed; the adapter is
//! printed first.

mod common;

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use lstm_wgpu::Lstm;
use lstm_wgpu::cpu::isa::Isa;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::rng::Rng;
use lstm_wgpu::{GradRequest, LstmConfig, LstmWeights, Upstream};

struct Size {
    name: &'static str,
    b: usize,
    t: usize,
    i: usize,
    h: usize,
}

const SIZES: [Size; 5] = [
    Size {
        name: "seed B128 T28 I28 H128",
        b: 128,
        t: 28,
        i: 28,
        h: 128,
    },
    Size {
        name: "small B8 T28 I28 H32",
        b: 8,
        t: 28,
        i: 28,
        h: 32,
    },
    Size {
        name: "medium B64 T100 I64 H256",
        b: 64,
        t: 100,
        i: 64,
        h: 256,
    },
    Size {
        name: "large B32 T50 I512 H512",
        b: 32,
        t: 50,
        i: 512,
        h: 512,
    },
    Size {
        name: "stream B1 T1000 I32 H128",
        b: 1,
        t: 1000,
        i: 32,
        h: 128,
    },
];

fn inputs(s: &Size) -> (LstmWeights<f32>, Array3<f32>, Upstream<f32>) {
    let w = LstmWeights::init_uniform(LstmConfig::new(s.i, s.h, 1).unwrap(), 1);
    let mut rng = Rng::new(2);
    let x = Array3::from_shape_simple_fn((s.b, s.t, s.i), || rng.uniform(0.0, 1.0) as f32);
    let up = Upstream {
        dy: Some(Array3::from_shape_simple_fn((s.b, s.t, s.h), || {
            rng.uniform(-1.0, 1.0) as f32
        })),
        ..Default::default()
    };
    (w, x, up)
}

/// Times one pass on one device; `backward` adds backpropagation (parameter gradients, what
/// training needs). Written once for both devices through the `Lstm` trait.
fn bench_pass(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    lstm: &mut dyn Lstm,
    (x, up): (&Array3<f32>, &Upstream<f32>),
    backward: bool,
) {
    group.bench_function(id, |bch| {
        bch.iter(|| {
            if backward {
                let r = lstm.forward_backward(x.view(), None, up, GradRequest::WEIGHTS);
                black_box(r.unwrap());
            } else {
                black_box(lstm.forward(x.view(), None).unwrap());
            }
        })
    });
}

/// Both paths keep their buffers between calls (as an application running one shape repeatedly
/// would).
fn bench(c: &mut Criterion) {
    let gpu = common::gpu();
    for (pass, backward) in [("forward", false), ("forward+backward", true)] {
        let mut group = c.benchmark_group(pass);
        group.sample_size(10);
        for s in &SIZES {
            let (w, x, up) = inputs(s);
            let mut devices: Vec<(String, Box<dyn Lstm>)> = Isa::supported()
                .into_iter()
                .rev()
                .map(|isa| {
                    let cpu = CpuLstm::new(w.clone()).unwrap().with_isa(isa).unwrap();
                    (format!("cpu-{isa}"), Box::new(cpu) as Box<dyn Lstm>)
                })
                .collect();
            if let Some(gpu) = gpu.as_ref() {
                devices.push(("gpu".into(), Box::new(GpuLstm::new(gpu, &w).unwrap())));
            }
            for (device, lstm) in &mut devices {
                let id = BenchmarkId::new(device.as_str(), s.name);
                bench_pass(&mut group, id, lstm.as_mut(), (&x, &up), backward);
            }
        }
        group.finish();
    }
}

// Criterion's HTML charts are off: the training demo's PNG curves enable plotters' ab_glyph
// fonts, which criterion's chart code does not register.
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
