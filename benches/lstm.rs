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
//!
//! Before the cases, the adapter's [`lstm_wgpu::gpu::Peak`] is measured, and the CPU's FMA peak
//! for each vector instruction set (`common/cpu_peak.rs`: independent multiply-add chains on
//! every thread of the pool); after them the adapter's peak once more (each figure then counts
//! at the better of its two readings, [`lstm_wgpu::gpu::Peak::best`]: on a shared machine one
//! reading can halve), and a table reads every case against them: the median,
//! GFLOP/s (forward `2·B·T·4H·(I+H)` FLOP, forward+backward three times that: the backward
//! step's two products per step and the weight gradients'), the share of its device's FMA peak
//! (the portable CPU path, without fused multiply-adds, has none), and on the GPU the median as
//! a multiple of the pass's floor: its step dispatches (`T` forward, `2T` with backward) at the
//! empty dispatch's cost; beside it in brackets the fastest sample's multiple, since the floor is
//! the probe's best reading while the median carries the machine's noise.
//!
//! `first call/gpu/seed` times what an application's first forward pass costs: a device made
//! from nothing (`Gpu::from_env`), the model uploaded and one forward pass at the seed size (its
//! kernels compiled, its buffers and bind groups made on the way).
//!
//! The `variants` groups time the other `nn.LSTM`s at the seed size, on the GPU and the CPU's
//! widest instruction set: the same layer bidirectional, and a batch of sequences of lengths
//! drawn from `1..=T` (`forward_lengths`, `forward_train_lengths`) beside the same batch padded
//! to `T` (`forward`, `forward_train`: what a caller without lengths runs); backward is a second
//! call in every variant. A table after the main one gives each variant's median as a multiple
//! of its baseline's (bidirectional against unidirectional, variable lengths against padded).

mod common;
#[path = "common/cpu_peak.rs"]
mod cpu_peak;

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion};
use lstm_wgpu::Lstm;
use lstm_wgpu::cpu::isa::Isa;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{GpuLstm, Peak};
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

/// One case's per-iteration times, every sample criterion took (warm-up included: the median
/// is what the summary reads, and the fastest beside the floor).
struct Case {
    pass: &'static str,
    device: String,
    size: &'static Size,
    /// The `nn.LSTM` variant (empty for the plain LSTM of the main groups).
    variant: &'static str,
    /// Its FLOP relative to the plain LSTM's (2 for both directions).
    flop_factor: f64,
    times: Vec<Duration>,
}

impl Case {
    fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    }

    /// The fastest sample's time per iteration.
    fn fastest(&self) -> Duration {
        self.times.iter().min().copied().unwrap_or_default()
    }

    /// FLOP of one iteration: `2·B·T·4H·(I+H)` forward (also a first call), three times that
    /// with backward.
    fn flop(&self) -> f64 {
        let s = self.size;
        let forward = 2.0 * (s.b * s.t * 4 * s.h * (s.i + s.h)) as f64 * self.flop_factor;
        if self.pass != "forward+backward" {
            forward
        } else {
            3.0 * forward
        }
    }

    /// Step dispatches of one iteration: one per step forward, one more per step backward.
    fn step_dispatches(&self) -> f64 {
        let per_step = if self.pass == "forward+backward" {
            2.0
        } else {
            1.0
        };
        per_step * self.size.t as f64
    }
}

/// Times one pass on one device; `backward` adds backpropagation (parameter gradients, what
/// training needs). Written once for both devices through the `Lstm` trait. Every sample's
/// per-iteration time lands in `case`.
fn bench_pass(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    lstm: &mut dyn Lstm,
    (x, up): (&Array3<f32>, &Upstream<f32>),
    backward: bool,
    case: &RefCell<Case>,
) {
    group.bench_function(id, |bch| {
        bch.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                if backward {
                    let r = lstm.forward_backward(x.view(), None, up, GradRequest::WEIGHTS);
                    black_box(r.unwrap());
                } else {
                    black_box(lstm.forward(x.view(), None).unwrap());
                }
            }
            let t = t0.elapsed();
            case.borrow_mut().times.push(t / iters.max(1) as u32);
            t
        })
    });
}

/// Both paths keep their buffers between calls (as an application running one shape repeatedly
/// would).
fn bench(c: &mut Criterion, gpu: Option<&lstm_wgpu::gpu::Gpu>) -> Vec<Case> {
    let mut cases = Vec::new();
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
            if let Some(gpu) = gpu {
                devices.push(("gpu".into(), Box::new(GpuLstm::new(gpu, &w).unwrap())));
            }
            for (device, lstm) in &mut devices {
                let id = BenchmarkId::new(device.as_str(), s.name);
                let case = RefCell::new(Case {
                    pass,
                    device: device.clone(),
                    size: s,
                    variant: "",
                    flop_factor: 1.0,
                    times: Vec::new(),
                });
                bench_pass(&mut group, id, lstm.as_mut(), (&x, &up), backward, &case);
                cases.push(case.into_inner());
            }
        }
        group.finish();
    }
    cases
}

/// The first forward pass of a fresh device at the seed size (pipelines, buffers, upload).
fn bench_first_call(c: &mut Criterion) -> Case {
    let s = &SIZES[0];
    let (w, x, _) = inputs(s);
    let case = RefCell::new(Case {
        pass: "first call",
        device: "gpu".into(),
        size: s,
        variant: "",
        flop_factor: 1.0,
        times: Vec::new(),
    });
    let mut group = c.benchmark_group("first call");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("gpu", s.name), |bch| {
        bch.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                let gpu = lstm_wgpu::gpu::Gpu::from_env().unwrap();
                let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
                black_box(lstm.forward(x.view(), None).unwrap());
            }
            let t = t0.elapsed();
            case.borrow_mut().times.push(t / iters.max(1) as u32);
            t
        })
    });
    group.finish();
    case.into_inner()
}

/// The variants of the seed-size layer: `(name, bidirectional, lengths drawn from 1..=T)`;
/// the others run the calls without lengths.
const VARIANTS: [(&str, bool, bool); 4] = [
    ("unidirectional", false, false),
    ("bidirectional", true, false),
    ("padded", false, false),
    ("variable lengths", false, true),
];

/// Each variant's forward and forward+backward at the seed size, through the calls with
/// lengths (all `T` for every variant but `variable lengths`).
fn bench_variants(c: &mut Criterion, gpu: Option<&lstm_wgpu::gpu::Gpu>) -> Vec<Case> {
    let s = &SIZES[0];
    let mut cases = Vec::new();
    let mut rng = Rng::new(3);
    let drawn: Vec<usize> = (0..s.b).map(|_| 1 + rng.below(s.t)).collect();
    for (pass, backward) in [("forward", false), ("forward+backward", true)] {
        let mut group = c.benchmark_group(format!("variants {pass}"));
        group.sample_size(10);
        for (variant, bidirectional, varied) in VARIANTS {
            let config = LstmConfig::new(s.i, s.h, 1)
                .unwrap()
                .with_bidirectional(bidirectional)
                .unwrap();
            let w = LstmWeights::init_uniform(config, 1);
            let (_, x, _) = inputs(s);
            let lengths = varied.then(|| drawn.clone());
            let up = Upstream::<f32>::default();
            let isa = Isa::supported().into_iter().next_back();
            let mut devices: Vec<(String, Box<dyn Lstm>)> = isa
                .map(|isa| {
                    let cpu = CpuLstm::new(w.clone()).unwrap().with_isa(isa).unwrap();
                    (format!("cpu-{isa}"), Box::new(cpu) as Box<dyn Lstm>)
                })
                .into_iter()
                .collect();
            if let Some(gpu) = gpu {
                devices.push(("gpu".into(), Box::new(GpuLstm::new(gpu, &w).unwrap())));
            }
            for (device, lstm) in &mut devices {
                let case = RefCell::new(Case {
                    pass,
                    device: device.clone(),
                    size: s,
                    variant,
                    flop_factor: if bidirectional { 2.0 } else { 1.0 },
                    times: Vec::new(),
                });
                let id = BenchmarkId::new(device.as_str(), variant);
                group.bench_function(id, |bch| {
                    bch.iter_custom(|iters| {
                        let t0 = Instant::now();
                        for _ in 0..iters {
                            let x = x.view();
                            if backward {
                                let (_, tape) = match &lengths {
                                    Some(l) => lstm.forward_train_lengths(x, l, None),
                                    None => lstm.forward_train(x, None),
                                }
                                .unwrap();
                                let grads = lstm.backward(&tape, &up, GradRequest::WEIGHTS);
                                black_box(grads.unwrap());
                            } else {
                                let out = match &lengths {
                                    Some(l) => lstm.forward_lengths(x, l, None),
                                    None => lstm.forward(x, None),
                                };
                                black_box(out.unwrap());
                            }
                        }
                        let t = t0.elapsed();
                        case.borrow_mut().times.push(t / iters.max(1) as u32);
                        t
                    })
                });
                cases.push(case.into_inner());
            }
        }
        group.finish();
    }
    cases
}

/// Each variant's median as a multiple of its baseline's, per pass and device.
fn variant_ratios(cases: &[Case]) {
    let median = |pass: &str, device: &str, variant: &str| {
        cases
            .iter()
            .find(|c| c.pass == pass && c.device == device && c.variant == variant)
            .filter(|c| !c.times.is_empty())
            .map(|c| c.median().as_secs_f64())
    };
    println!();
    println!(
        "{:<17} {:<11} {:>22} {:>26}",
        "pass", "device", "bidirectional / uni", "variable lengths / padded"
    );
    let mut devices: Vec<&str> = Vec::new();
    for c in cases.iter().filter(|c| !c.variant.is_empty()) {
        if !devices.contains(&c.device.as_str()) {
            devices.push(&c.device);
        }
    }
    for pass in ["forward", "forward+backward"] {
        for device in &devices {
            let ratio = |a, b| match (median(pass, device, a), median(pass, device, b)) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "".into(),
            };
            let (bi, var) = (
                ratio("bidirectional", "unidirectional"),
                ratio("variable lengths", "padded"),
            );
            if !bi.is_empty() || !var.is_empty() {
                println!("{pass:<17} {device:<11} {bi:>22} {var:>26}");
            }
        }
    }
}

/// The cases read against the probe (cases a filter skipped have no samples and no row).
fn summary(cases: &[Case], peak: Option<&Peak>, cpu_peaks: &[(String, f64)]) {
    println!();
    if let Some(p) = peak {
        println!("adapter peak (the better of its readings before and after the cases): {p}");
    }
    for (device, gflops) in cpu_peaks {
        println!(
            "{device} peak: FMA {gflops:.1} GFLOP/s on {} threads",
            rayon::current_num_threads()
        );
    }
    println!(
        "{:<17} {:<26} {:<11} {:>11} {:>9} {:>9} {:>18}",
        "pass", "size", "device", "median", "GFLOP/s", "% of FMA", "× floor (fastest)"
    );
    for c in cases.iter().filter(|c| !c.times.is_empty()) {
        let m = c.median();
        let gflops = c.flop() / m.as_secs_f64() / 1e9;
        let (share, floor) = match (peak, c.device.as_str()) {
            (Some(p), "gpu") => (format!("{:.1}%", 100.0 * gflops / p.fma_gflops), {
                let floor_us = c.step_dispatches() * p.dispatch_us;
                let times = |t: Duration| t.as_secs_f64() * 1e6 / floor_us;
                format!("{:.1} ({:.1})", times(m), times(c.fastest()))
            }),
            (_, device) => match cpu_peaks.iter().find(|(d, _)| d == device) {
                Some((_, p)) => (format!("{:.1}%", 100.0 * gflops / p), "".into()),
                None => ("".into(), "".into()),
            },
        };
        let size = match c.variant {
            "" => c.size.name.to_string(),
            v => format!("seed {v}"),
        };
        println!(
            "{:<17} {:<26} {:<11} {:>11} {:>9.1} {:>9} {:>18}",
            c.pass,
            size,
            c.device,
            format!("{:.3?}", m),
            gflops,
            share,
            floor
        );
    }
}

// Criterion's HTML charts are off: the training demo's PNG curves enable plotters' ab_glyph
// fonts, which criterion's chart code does not register.
fn main() {
    let mut c = Criterion::default().without_plots().configure_from_args();
    let gpu = common::gpu();
    let peak = gpu.as_ref().and_then(|g| match g.measure_peak() {
        Ok(p) => {
            eprintln!("adapter peak: {p}");
            Some(p)
        }
        Err(e) => {
            eprintln!("peak probe failed: {e}");
            None
        }
    });
    let cpu_peaks: Vec<(String, f64)> = Isa::supported()
        .into_iter()
        .filter_map(|isa| Some((format!("cpu-{isa}"), cpu_peak::fma_gflops(isa)?)))
        .collect();
    for (device, gflops) in &cpu_peaks {
        eprintln!("{device} peak: FMA {gflops:.1} GFLOP/s");
    }
    let mut cases = bench(&mut c, gpu.as_ref());
    if gpu.is_some() {
        cases.push(bench_first_call(&mut c));
    }
    let variants = bench_variants(&mut c, gpu.as_ref());
    c.final_summary();
    cases.extend(variants);
    // The probe again after the cases: the table reads them against the better of the two
    // readings of each figure (`Peak::best`), which a busy spell during either does not skew.
    let peak = match (peak, gpu.as_ref().map(|g| g.measure_peak())) {
        (Some(before), Some(Ok(after))) => {
            eprintln!("adapter peak after the cases: {after}");
            Some(before.best(after))
        }
        (peak, _) => peak,
    };
    summary(&cases, peak.as_ref(), &cpu_peaks);
    variant_ratios(&cases);
}
