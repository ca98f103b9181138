//! Properties over random inputs (proptest): the GPU agrees with the CPU for any shape, state
//! and upstream gradient; the CPU gives the same bits with one thread and with two; no byte
//! string makes a loader panic.
mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::{assert_close, gpu, random_array, random_state, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::data::idx::parse_idx;
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::ndarray::ArrayViewD;
use lstm_wgpu::real::Real;
use lstm_wgpu::train::{Checkpoint, ClassifierWeights};
use lstm_wgpu::{
    GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, LstmState, LstmWeights, Upstream,
};
use proptest::prelude::*;

/// One random problem: sizes, the `nn.LSTM` variant (directions, projection, biases, each
/// sequence's length), whether h0/c0 and each upstream gradient are given, and a seed for every
/// tensor.
#[derive(Debug, Clone)]
struct Case {
    b: usize,
    t: usize,
    i: usize,
    h: usize,
    layers: usize,
    bidirectional: bool,
    /// Features of the projection (`proj_size`), when below `h`; 0 for none.
    proj: usize,
    bias: bool,
    /// Each sequence's length, or `None` for the calls without lengths.
    lengths: Option<Vec<usize>>,
    state: bool,
    dy: bool,
    dh_n: bool,
    dc_n: bool,
    seed: u64,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (1usize..7, 1usize..7, 1usize..10, 1usize..21, 1usize..4),
        (any::<bool>(), 0usize..4, any::<bool>(), any::<bool>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        any::<u64>(),
    )
        .prop_map(
            |(
                (b, t, i, h, layers),
                (bidirectional, proj, bias, varlen),
                (state, dy, dh_n, dc_n),
                seed,
            )| {
                let mut rng = lstm_wgpu::rng::Rng::new(seed ^ 9);
                // Lengths from 1 to T, the first sequence always T long (PyTorch's batch is as
                // long as its longest sequence).
                let lengths = varlen.then(|| {
                    (0..b)
                        .map(|r| if r == 0 { t } else { 1 + rng.below(t) })
                        .collect()
                });
                Case {
                    b,
                    t,
                    i,
                    h,
                    layers,
                    bidirectional,
                    proj: if proj < h { proj } else { 0 },
                    bias,
                    lengths,
                    state,
                    dy,
                    dh_n,
                    dc_n,
                    seed,
                }
            },
        )
}

fn config(c: &Case) -> LstmConfig {
    let config = LstmConfig::new(c.i, c.h, c.layers)
        .unwrap()
        .with_bidirectional(c.bidirectional)
        .unwrap()
        .with_bias(c.bias);
    match c.proj {
        0 => config,
        p => config.with_proj_size(p).unwrap(),
    }
}

/// Runs case `c` on `lstm`, in `F`: the same inputs (drawn in f32) whatever `F`.
fn run<F: Real>(lstm: &mut dyn Lstm<F>, c: &Case) -> (LstmOutput<F>, LstmGrads<F>) {
    let config = *lstm.config();
    let to_f = |a: Array3<f32>| a.mapv(|v| F::from_f64_lossy(f64::from(v)));
    let draw = |shape, seed| to_f(random_array(shape, seed, -1.0, 1.0));
    let x = draw((c.b, c.t, c.i), c.seed ^ 1);
    let state = c.state.then(|| {
        let s = random_state(&config, c.b, c.seed ^ 2);
        LstmState {
            h: to_f(s.h),
            c: to_f(s.c),
        }
    });
    let ld = config.num_layers * config.num_directions();
    let ys = (c.b, c.t, config.layer_output_size());
    let (hs, cs) = ((ld, c.b, config.output_size()), (ld, c.b, c.h));
    let upstream = Upstream {
        dy: c.dy.then(|| draw(ys, c.seed ^ 3)),
        dh_n: c.dh_n.then(|| draw(hs, c.seed ^ 4)),
        dc_n: c.dc_n.then(|| draw(cs, c.seed ^ 5)),
    };
    match &c.lengths {
        None => lstm
            .forward_backward(x.view(), state.as_ref(), &upstream, GradRequest::ALL)
            .unwrap(),
        Some(lengths) => {
            let (out, tape) = lstm
                .forward_train_lengths(x.view(), lengths, state.as_ref())
                .unwrap();
            (
                out,
                lstm.backward(&tape, &upstream, GradRequest::ALL).unwrap(),
            )
        }
    }
}

fn weights(c: &Case) -> LstmWeights<f32> {
    random_weights(config(c), c.seed, 2.0)
}

// The tolerances of the GPU forward and backward tests: different summation orders and exp,
// ~1e-6 of each tensor's largest magnitude on lavapipe.
const RTOL_FWD: f64 = 1e-5;
const RTOL_BWD: f64 = 2e-5;

/// How many times the CPU path's own f32 error (against f64) the GPU may differ from it by,
/// beside the tolerances above. Where a tensor is a sum that cancels, f32 itself is no more
/// accurate than that: a deep model without biases, projected to one feature, can shrink its
/// outputs to 1e-7 (B1 T1 I4 H11, 3 layers) or its top layer's weight gradients to 3e-6 against
/// gate gradients of 0.09 (B6 T1 I5 H15, 3 layers), and CPU and GPU then differ by 1e-5 to 3e-5
/// of those tensors. Two f32 results each that far from the exact one are up to twice apart;
/// 8 leaves room for the GPU's exp and summation order. A wrong result is off by its own size.
const F32_ERRORS: f64 = 8.0;

/// The largest difference between a tensor and its f64 counterpart.
fn largest_error(a: ArrayViewD<'_, f32>, exact: ArrayViewD<'_, f64>) -> f64 {
    a.iter()
        .zip(exact.iter())
        .fold(0.0, |m, (&a, &e)| m.max((f64::from(a) - e).abs()))
}

/// Asserts that the GPU's `a` is within `atol + rtol·max|b|` of the CPU's `b`, plus
/// [`F32_ERRORS`] times the CPU's own error against `exact`.
fn check(
    what: &str,
    a: ArrayViewD<'_, f32>,
    b: ArrayViewD<'_, f32>,
    exact: ArrayViewD<'_, f64>,
    atol: f64,
    rtol: f64,
) {
    let atol = atol + F32_ERRORS * largest_error(b.view(), exact);
    assert_close(what, a, b, atol, rtol)
}

/// Runs one case on the CPU (f32 and f64) and on the GPU and compares every output and
/// gradient of the GPU with the CPU's in f32.
fn gpu_matches_cpu(c: &Case) {
    let w = weights(c);
    let (want_out, want) = run(&mut CpuLstm::new(w.clone()).unwrap(), c);
    let (exact_out, exact) = run(&mut CpuLstm::new(w.cast::<f64>()).unwrap(), c);
    let (got_out, got) = run(&mut GpuLstm::new(&gpu(), &w).unwrap(), c);
    let what = format!("{c:?}");
    let close = |name: &str, a: &Array3<f32>, b: &Array3<f32>, e: &Array3<f64>, rtol| {
        let (a, b, e) = (
            a.view().into_dyn(),
            b.view().into_dyn(),
            e.view().into_dyn(),
        );
        check(&format!("{what} {name}"), a, b, e, 0.0, rtol)
    };
    close("y", &got_out.y, &want_out.y, &exact_out.y, RTOL_FWD);
    close("h_n", &got_out.h_n, &want_out.h_n, &exact_out.h_n, RTOL_FWD);
    close("c_n", &got_out.c_n, &want_out.c_n, &exact_out.c_n, RTOL_FWD);
    for (name, got, want, exact) in [
        ("dx", &got.x, &want.x, &exact.x),
        ("dh0", &got.h0, &want.h0, &exact.h0),
        ("dc0", &got.c0, &want.c0, &exact.c0),
    ] {
        let (got, want, exact) = (got.as_ref(), want.as_ref(), exact.as_ref());
        close(name, got.unwrap(), want.unwrap(), exact.unwrap(), RTOL_BWD);
    }
    let dirs = w.config().num_directions();
    for (ld, ((g, w), e)) in got
        .layers
        .unwrap()
        .iter()
        .zip(want.layers.as_ref().unwrap())
        .zip(exact.layers.as_ref().unwrap())
        .enumerate()
    {
        let (l, d) = (ld / dirs, ld % dirs);
        // A layer's weight and bias gradients are sums over B·T of its gate gradients
        // times x, h or 1, so their rounding error scales with the largest of them, not
        // with each one: with few units the sum in `dW_hh` can cancel to 1e-2 of `db`,
        // and then CPU and GPU f32 both sit ~1e-5 of `dW_hh` away from an f64 reference
        // (seen at B6 T4 I2 H1, 3 layers). A wrong gradient is off by its own size.
        let named = w.named(l, d);
        let scale = named
            .iter()
            .flat_map(|(_, b)| b.iter())
            .fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
        let exact = e.named(l, d);
        for (((name, a), (_, b)), (_, e)) in g.named(l, d).into_iter().zip(named).zip(exact) {
            check(&format!("{what} d{name}"), a, b, e, RTOL_BWD * scale, 0.0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_gpu_matches_the_cpu_for_any_shape_state_and_upstream(c in cases()) {
        gpu_matches_cpu(&c);
    }

    #[test]
    fn the_cpu_gives_the_same_bits_with_one_thread_and_with_two(c in cases()) {
        let w = weights(&c);
        let with = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| run(&mut CpuLstm::new(w.clone()).unwrap(), &c))
        };
        let (one, two) = (with(1), with(2));
        prop_assert_eq!(&one.0, &two.0, "outputs of {:?}", c);
        prop_assert_eq!(&one.1, &two.1, "gradients of {:?}", c);
    }
}

/// True when `load` returned (an error or a value) instead of panicking.
fn returns<T>(load: impl FnOnce() -> lstm_wgpu::Result<T>) -> bool {
    catch_unwind(AssertUnwindSafe(load)).is_ok()
}

/// Random bytes, sometimes behind a plausible safetensors header length or IDX magic.
fn files() -> impl Strategy<Value = Vec<u8>> {
    let raw = proptest::collection::vec(any::<u8>(), 0..600);
    (raw, 0u8..3, any::<u32>()).prop_map(|(mut bytes, prefix, n)| {
        let head: Vec<u8> = match prefix {
            // A little-endian header length, as safetensors files begin.
            0 => u64::from(n % 700).to_le_bytes().to_vec(),
            // IDX magic with an unsigned-byte type and 1-4 dimensions.
            1 => vec![0, 0, 8, (n % 4 + 1) as u8],
            _ => Vec::new(),
        };
        bytes.splice(0..0, head);
        bytes
    })
}

/// A case the random search once found: with one unit per layer, layer 1's `dW_hh` cancels to
/// 1e-2 of its `db`, and a tolerance relative to `dW_hh` alone failed on rounding.
#[test]
fn the_gpu_matches_the_cpu_when_a_weight_gradient_cancels() {
    gpu_matches_cpu(&Case {
        b: 6,
        t: 4,
        i: 2,
        h: 1,
        layers: 3,
        bidirectional: false,
        proj: 0,
        bias: true,
        lengths: None,
        state: false,
        dy: true,
        dh_n: true,
        dc_n: false,
        seed: 12017615039410091688,
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_byte_string_panics_a_loader(bytes in files()) {
        prop_assert!(returns(|| LstmWeights::<f32>::from_safetensors_bytes(&bytes)), "weights");
        prop_assert!(returns(|| LstmWeights::<f64>::from_safetensors_bytes(&bytes)), "f64 weights");
        prop_assert!(returns(|| ClassifierWeights::from_safetensors_bytes(&bytes)), "classifier");
        // Checkpoints are read from files.
        let path = std::env::temp_dir().join(format!("lstm-wgpu-random-{}.safetensors", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        prop_assert!(returns(|| Checkpoint::load(&path)), "checkpoint");
        prop_assert!(returns(|| parse_idx(&bytes, Path::new("random"))), "IDX");
    }
}
