//! Forward and forward+backward, GPU vs CPU, at the reference classifier's size
//! (B = 128, T = 28, I = 28, H = 128) and a small one (B = 16, T = 28, I = 28, H = 32).
//!
//! `cargo bench --bench lstm`. On a software adapter (lavapipe) the GPU figures measure
//! dispatch overhead and a CPU running WGSL, not GPU speed; the adapter is printed first.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lstm_wgpu::Lstm;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
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

const SIZES: [Size; 2] = [
    Size {
        name: "seed B128 T28 I28 H128",
        b: 128,
        t: 28,
        i: 28,
        h: 128,
    },
    Size {
        name: "small B16 T28 I28 H32",
        b: 16,
        t: 28,
        i: 28,
        h: 32,
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

fn gpu() -> Option<Gpu> {
    match Gpu::from_env() {
        Ok(g) => {
            eprintln!("GPU adapter: {}", g.describe());
            Some(g)
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU benches skipped: {e}");
            None
        }
    }
}

/// Both paths keep their buffers between calls (as an application running one shape repeatedly
/// would) and compute the parameter gradients, what training needs.
fn bench(c: &mut Criterion) {
    let gpu = gpu();
    for (pass, backward) in [("forward", false), ("forward+backward", true)] {
        let mut group = c.benchmark_group(pass);
        group.sample_size(10);
        for s in &SIZES {
            let (w, x, up) = inputs(s);
            let mut on_cpu = CpuLstm::new(w.clone()).unwrap();
            group.bench_function(BenchmarkId::new("cpu", s.name), |bch| {
                bch.iter(|| {
                    if backward {
                        let (_, tape) = on_cpu.forward_train(x.view(), None).unwrap();
                        black_box(on_cpu.backward(&tape, &up, GradRequest::WEIGHTS).unwrap());
                    } else {
                        black_box(on_cpu.forward(x.view(), None).unwrap());
                    }
                })
            });
            if let Some(gpu) = gpu.as_ref() {
                let mut on_gpu = GpuLstm::new(gpu, &w).unwrap();
                group.bench_function(BenchmarkId::new("gpu", s.name), |bch| {
                    bch.iter(|| {
                        if backward {
                            black_box(
                                on_gpu
                                    .forward_backward(x.view(), None, &up, GradRequest::WEIGHTS)
                                    .unwrap(),
                            );
                        } else {
                            black_box(on_gpu.forward(x.view(), None).unwrap());
                        }
                    })
                });
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
