//! Every instruction set the CPU path has code for (`Isa`: AVX-512, AVX2, NEON, portable) gives
//! the results the golden files hold; the fused multiply-add paths (AVX-512, AVX2, NEON) give the
//! same bits, and the portable path agrees with them to rounding. Each runs here on every path
//! this processor supports, chosen per model with `CpuLstm::with_isa` (the `LSTM_WGPU_CPU_ISA`
//! variable caps it for a whole program).
mod common;

use common::{
    Golden, assert_close, assert_same_bits, random_array, random_state, random_weights, run_golden,
};
use lstm_wgpu::cpu::isa::Isa;
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::{Array3, ArrayViewD};
use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, Upstream};

/// Every output and gradient of one forward+backward, by name.
fn tensors<'a>(out: &'a LstmOutput, g: &'a LstmGrads) -> Vec<(String, ArrayViewD<'a, f32>)> {
    let mut t = vec![
        ("y".to_string(), out.y.view().into_dyn()),
        ("h_n".to_string(), out.h_n.view().into_dyn()),
        ("c_n".to_string(), out.c_n.view().into_dyn()),
        ("dx".to_string(), g.x.as_ref().unwrap().view().into_dyn()),
        ("dh0".to_string(), g.h0.as_ref().unwrap().view().into_dyn()),
        ("dc0".to_string(), g.c0.as_ref().unwrap().view().into_dyn()),
    ];
    for (l, w) in g.layers.as_ref().unwrap().iter().enumerate() {
        t.push((format!("dweight_ih_l{l}"), w.weight_ih.view().into_dyn()));
        t.push((format!("dweight_hh_l{l}"), w.weight_hh.view().into_dyn()));
        t.push((format!("dbias_ih_l{l}"), w.bias_ih.view().into_dyn()));
        t.push((format!("dbias_hh_l{l}"), w.bias_hh.view().into_dyn()));
    }
    t
}

/// Forward and every gradient of a 3-layer model at sizes off every tile grid (13 rows, 37
/// units, 19 inputs: no multiple of 3, 8 or 32), with a given initial state and upstream
/// gradients on y, h_n and c_n, on `isa`.
fn three_layers(isa: Isa) -> (LstmOutput, LstmGrads) {
    let config = LstmConfig::new(19, 37, 3).unwrap();
    let (b, t) = (13, 7);
    let mut lstm = CpuLstm::new(random_weights(config, 21, 1.0))
        .unwrap()
        .with_isa(isa)
        .unwrap();
    let x: Array3<f32> = random_array((b, t, 19), 22, -1.0, 1.0);
    let state = random_state(&config, b, 23);
    let up = Upstream {
        dy: Some(random_array((b, t, 37), 24, -1.0, 1.0)),
        dh_n: Some(random_array((3, b, 37), 25, -1.0, 1.0)),
        dc_n: Some(random_array((3, b, 37), 26, -1.0, 1.0)),
    };
    lstm.forward_backward(x.view(), Some(&state), &up, GradRequest::ALL)
        .unwrap()
}

#[test]
fn every_supported_instruction_set_matches_pytorch_on_every_golden_case() {
    // The tolerances of tests/cpu_golden.rs, for the same reasons: float32 accumulation order and
    // exp/tanh differ from PyTorch's in the last bits (a few 1e-6 of each tensor's largest
    // magnitude), more at the seed size's 448-row sums; float64 is exact to ~1e-16 per operation.
    for isa in Isa::supported() {
        for (case, rtol_fwd, rtol_bwd) in [
            ("c1_tiny_f32", 2e-6, 4e-6),
            ("c3_two_layer_f32", 2e-6, 4e-6),
            ("c2_seed_f32", 4e-6, 1e-5),
        ] {
            let g = Golden::load(case);
            let mut lstm = CpuLstm::new(g.weights::<f32>())
                .unwrap()
                .with_isa(isa)
                .unwrap();
            let (out, grads) = run_golden(&mut lstm, &g);
            g.check(&out, &grads, rtol_fwd, rtol_bwd);
        }
        let g = Golden::load("c1_tiny_f64");
        let mut lstm = CpuLstm::new(g.weights::<f64>())
            .unwrap()
            .with_isa(isa)
            .unwrap();
        let (out, grads) = run_golden(&mut lstm, &g);
        g.check(&out, &grads, 1e-12, 1e-12);
    }
}

#[test]
fn the_fma_paths_give_the_same_bits_and_the_portable_path_agrees_to_rounding() {
    let scalar = three_layers(Isa::Scalar);
    let scalar = tensors(&scalar.0, &scalar.1);
    let mut first_fma: Option<(Isa, (LstmOutput, LstmGrads))> = None;
    for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
        let run = three_layers(isa);
        {
            // The portable kernels round each product before adding it (in the GEMM and in
            // the activations' polynomials), the vector kernels fuse the two: per step a 1-ulp
            // difference, compounded over 7 steps, 3 layers and
            // sums of up to 91 rows; 2e-6 of each tensor's largest magnitude covers that, and
            // is far below what a wrong term would give.
            for ((name, got), (_, want)) in tensors(&run.0, &run.1).iter().zip(&scalar) {
                assert_close(
                    &format!("{isa} vs scalar: {name}"),
                    got.view(),
                    want.view(),
                    0.0,
                    2e-6,
                );
            }
        }
        match &first_fma {
            None => first_fma = Some((isa, run)),
            Some((first, want)) => {
                for ((name, got), (_, want)) in tensors(&run.0, &run.1)
                    .iter()
                    .zip(tensors(&want.0, &want.1))
                {
                    assert_same_bits(&format!("{isa} vs {first}: {name}"), got, &want);
                }
            }
        }
    }
}

/// Runs `f` on a 2-layer model of size `(B, T, I, H)` and an input `x` `[B, T, I]`, in a pool
/// of `threads` threads.
fn in_pool<R: Send>(
    isa: Isa,
    threads: usize,
    (b, t, i, h): (usize, usize, usize, usize),
    f: impl FnOnce(&mut CpuLstm, Array3<f32>) -> R + Send,
) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| {
            let config = LstmConfig::new(i, h, 2).unwrap();
            let mut lstm = CpuLstm::new(random_weights(config, 5, 1.0))
                .unwrap()
                .with_isa(isa)
                .unwrap();
            f(&mut lstm, random_array((b, t, i), 6, -1.0, 1.0))
        })
}

/// Forward and backward of a 2-layer model in a pool of `threads` threads.
fn with_threads(
    isa: Isa,
    threads: usize,
    size: (usize, usize, usize, usize),
) -> (LstmOutput, LstmGrads) {
    in_pool(isa, threads, size, |lstm, x| {
        let up = Upstream {
            dy: Some(random_array((size.0, size.1, size.3), 7, -1.0, 1.0)),
            ..Default::default()
        };
        lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
            .unwrap()
    })
}

#[test]
fn on_every_instruction_set_one_two_and_four_threads_give_the_same_bits() {
    // 64 rows × 28 steps of a 64-unit layer: the threads split the batch rows; 1100 inputs: the
    // layer projects its inputs a window at a time in a product split by rows of its own; one
    // and two sequences: see the test below; 384 units (2.3 MiB of `W_hh`) and 180 inputs:
    // where half of `W_hh` fits a core's L2 cache (2 MiB), both layers project their inputs
    // and five rows split each step by units; with a smaller L2 (1 MiB) they split by rows.
    for size in [
        (64, 28, 28, 64),
        (6, 5, 1100, 64),
        (1, 1100, 20, 64),
        (2, 90, 20, 96),
        (5, 3, 180, 384),
    ] {
        for isa in Isa::supported() {
            let one = with_threads(isa, 1, size);
            for threads in [2, 4] {
                let many = with_threads(isa, threads, size);
                for ((name, got), (_, want)) in tensors(&many.0, &many.1)
                    .iter()
                    .zip(tensors(&one.0, &one.1))
                {
                    assert_same_bits(
                        &format!("{isa}, {size:?}, {threads} threads vs 1: {name}"),
                        got,
                        &want,
                    );
                }
            }
        }
    }
}

/// The outputs of a forward pass, by name.
fn outputs(o: &LstmOutput) -> [(&str, ArrayViewD<'_, f32>); 3] {
    [
        ("y", o.y.view().into_dyn()),
        ("h_n", o.h_n.view().into_dyn()),
        ("c_n", o.c_n.view().into_dyn()),
    ]
}

/// Inference of the 2-layer model of [`with_threads`] in a pool of `threads` threads.
fn inference_with_threads(
    isa: Isa,
    threads: usize,
    size: (usize, usize, usize, usize),
) -> LstmOutput {
    in_pool(isa, threads, size, |lstm, x| {
        lstm.forward(x.view(), None).unwrap()
    })
}

#[test]
fn small_batches_give_the_same_bits_on_one_two_and_four_threads_in_inference_as_in_training() {
    // One and two sequences of 64 and 96 units: with two threads or more, each step's units
    // are split between two threads (halves of 32 | 32 and 32 | 64 units); one thread runs the
    // whole step. The 1100 steps of one sequence span two windows of inference.
    for size in [(1, 1100, 20, 64), (2, 90, 20, 96)] {
        for isa in Isa::supported() {
            let one = with_threads(isa, 1, size);
            let one_inference = inference_with_threads(isa, 1, size);
            for ((name, got), (_, want)) in outputs(&one_inference).iter().zip(outputs(&one.0)) {
                assert_same_bits(
                    &format!("{isa}, {size:?}: inference vs training {name}"),
                    got,
                    &want,
                );
            }
            for threads in [2, 4] {
                let many = inference_with_threads(isa, threads, size);
                for ((name, got), (_, want)) in outputs(&many).iter().zip(outputs(&one_inference)) {
                    assert_same_bits(
                        &format!("{isa}, {size:?}, inference, {threads} threads vs 1: {name}"),
                        got,
                        &want,
                    );
                }
            }
        }
    }
}

#[test]
fn with_isa_accepts_exactly_the_instruction_sets_the_processor_supports() {
    let weights = random_weights(LstmConfig::new(3, 4, 1).unwrap(), 1, 1.0);
    for isa in Isa::ALL {
        let made = CpuLstm::new(weights.clone()).unwrap().with_isa(isa);
        match made {
            Ok(lstm) => {
                assert!(isa.is_supported(), "{isa} accepted but not supported");
                assert_eq!(lstm.isa(), isa);
            }
            Err(e) => {
                assert!(!isa.is_supported(), "{isa} refused though supported: {e}");
                assert!(matches!(e, lstm_wgpu::Error::Config { .. }), "{e:?}");
            }
        }
    }
}

#[test]
fn inference_after_the_weights_change_uses_the_new_weights() {
    // CpuLstm keeps its weights packed between inference calls; changing them must repack.
    let config = LstmConfig::new(5, 6, 2).unwrap();
    let x: Array3<f32> = random_array((3, 4, 5), 30, -1.0, 1.0);
    let mut lstm = CpuLstm::new(random_weights(config, 31, 1.0)).unwrap();
    let before = lstm.forward(x.view(), None).unwrap();

    lstm.params_mut().layers_mut()[1].weight_hh *= 0.5;
    let changed = lstm.params().clone();
    let after_params_mut = lstm.forward(x.view(), None).unwrap();
    let fresh = CpuLstm::new(changed)
        .unwrap()
        .forward(x.view(), None)
        .unwrap();
    assert_eq!(after_params_mut, fresh);
    assert_ne!(after_params_mut.y, before.y);

    let other = random_weights(config, 32, 1.0);
    lstm.set_weights(&other).unwrap();
    let after_set = lstm.forward(x.view(), None).unwrap();
    let fresh = CpuLstm::new(other)
        .unwrap()
        .forward(x.view(), None)
        .unwrap();
    assert_eq!(after_set, fresh);
}
