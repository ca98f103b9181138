//! GPU backpropagation through time against the CPU reference.
mod common;

use common::{
    assert_close, gpu, gpu_tuned_as_hardware, gpu_tuned_as_software,
    gpu_tuned_as_software_with_subgroups, gpu_tuned_as_software_without_texels, random_array,
    random_state, random_weights, runs_subgroups,
};
use lstm_wgpu::Lstm;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, GpuLstm, Tuning};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{GradRequest, LstmConfig, LstmGrads, Upstream};

#[derive(Clone, Copy)]
enum Up {
    YOnly,
    StateOnly,
    All,
}

// Gradients are sums over B·T rows of products of activations; GPU and CPU sum in different
// orders (GEMM tiles of 16, four partial column sums) and use different exp. On lavapipe they
// agree to ~1e-6 of each tensor's largest magnitude; 2e-5 leaves room for other devices while
// a missing or misplaced term changes results by percent.
const RTOL: f64 = 2e-5;

fn assert_grads_close(what: &str, got: &LstmGrads<f32>, want: &LstmGrads<f32>) {
    let c = |name: &str, a: &Option<Array3<f32>>, b: &Option<Array3<f32>>| {
        assert_close(
            &format!("{what} {name}"),
            a.as_ref().unwrap().view().into_dyn(),
            b.as_ref().unwrap().view().into_dyn(),
            0.0,
            RTOL,
        )
    };
    c("dx", &got.x, &want.x);
    c("dh0", &got.h0, &want.h0);
    c("dc0", &got.c0, &want.c0);
    let (gl, wl) = (got.layers.as_ref().unwrap(), want.layers.as_ref().unwrap());
    for (l, (g, w)) in gl.iter().zip(wl).enumerate() {
        for ((name, a), (_, b)) in g.named(l, 0).into_iter().zip(w.named(l, 0)) {
            assert_close(&format!("{what} d{name}"), a, b, 0.0, RTOL);
        }
    }
}

fn compare(b: usize, t: usize, i: usize, h: usize, layers: usize, with_state: bool, up: Up) {
    compare_on(&gpu(), (b, t, i, h, layers), with_state, up)
}

/// [`compare`] on `gpu` (a tuning of the tests' GPU).
fn compare_on(gpu: &Gpu, (b, t, i, h, layers): Shape, with_state: bool, up: Up) {
    let config = LstmConfig::new(i, h, layers).unwrap();
    let w = random_weights(config, 17 + h as u64, 2.0);
    let x: Array3<f32> = random_array((b, t, i), 13, -1.0, 1.0);
    let state = with_state.then(|| random_state(&config, b, 15));
    let (ys, ns) = ((b, t, h), (layers, b, h));
    let upstream = Upstream {
        dy: matches!(up, Up::YOnly | Up::All).then(|| random_array(ys, 21, -1.0, 1.0)),
        dh_n: matches!(up, Up::StateOnly | Up::All).then(|| random_array(ns, 22, -1.0, 1.0)),
        dc_n: matches!(up, Up::StateOnly | Up::All).then(|| random_array(ns, 23, -1.0, 1.0)),
    };
    let (_, tape) = cpu::lstm::forward_train(&w, x.view(), state.as_ref()).unwrap();
    let want = cpu::lstm::backward(&w, &tape, &upstream).unwrap();

    let mut lstm = GpuLstm::new(gpu, &w).unwrap();
    let (_, gtape) = lstm.forward_train(x.view(), state.as_ref()).unwrap();
    let got = lstm.backward(&gtape, &upstream, GradRequest::ALL).unwrap();
    let step = Kernel::for_forward_step(b, h, gpu);
    let what = format!("B={b} T={t} I={i} H={h} L={layers} state={with_state} ({step:?})");
    assert_grads_close(&what, &got, &want);
}

#[test]
fn matches_cpu_with_gradient_on_y_only() {
    compare(3, 5, 7, 9, 1, true, Up::YOnly);
}

#[test]
fn matches_cpu_with_gradient_on_final_state_only() {
    compare(3, 5, 7, 9, 1, true, Up::StateOnly);
}

#[test]
fn matches_cpu_with_gradient_on_everything() {
    compare(3, 5, 7, 9, 1, true, Up::All);
}

#[test]
fn matches_cpu_without_initial_state() {
    compare(3, 5, 7, 9, 1, false, Up::All);
}

#[test]
fn matches_cpu_with_one_timestep() {
    compare(2, 1, 5, 6, 1, true, Up::All);
}

/// `(B, T, I, H, L)`.
type Shape = (usize, usize, usize, usize, usize);

#[test]
fn matches_cpu_across_tile_boundaries_after_the_staged_forward_step() {
    let gpu = gpu_tuned_as_hardware();
    assert_eq!(
        Kernel::for_forward_step(20, 33, &gpu),
        Kernel::LstmForwardStep
    );
    assert_eq!(
        Kernel::for_backward_step(20, &gpu),
        Kernel::LstmBackwardStep
    );
    compare_on(&gpu, (20, 7, 19, 33, 1), true, Up::All);
}

#[test]
fn matches_cpu_across_the_direct_backward_steps_unit_and_row_tiles() {
    // 70 units are one full 64-unit tile and a partial one, 21 rows two 8-row tiles and a
    // partial one; W_hh from storage (the trainers' models) and from the model's textures.
    for (gpu, kernel) in [
        (
            gpu_tuned_as_software_without_texels(),
            Kernel::LstmBackwardStepDirect,
        ),
        (
            gpu_tuned_as_software(),
            Kernel::LstmBackwardStepDirectTexels,
        ),
    ] {
        assert_eq!(Kernel::for_backward_step(21, &gpu), kernel);
        compare_on(&gpu, (21, 6, 5, 70, 2), true, Up::All);
    }
}

#[test]
fn matches_cpu_across_the_subgroup_backward_steps_unit_and_row_tiles() {
    // The direct step's tiles, each lane loading one row's dgates: 70 units, 21 rows (the last
    // tile's lanes 5-7 load a clamped copy and their rows need nothing).
    if !runs_subgroups() {
        return;
    }
    for (texels, kernel) in [
        (false, Kernel::LstmBackwardStepSubgroup),
        (true, Kernel::LstmBackwardStepSubgroupTexels),
    ] {
        let gpu = gpu_tuned_as_software_with_subgroups(texels);
        assert_eq!(Kernel::for_backward_step(21, &gpu), kernel);
        compare_on(&gpu, (21, 6, 5, 70, 2), true, Up::All);
    }
}

/// A forward and backward pass of 13 rows of a two-layer model of 70 units on `a` and on `b`
/// give the same bits in `dx` and in every weight gradient (`what` names the pair).
fn same_gradient_bits(a: &Gpu, b: &Gpu, what: &str) {
    let config = LstmConfig::new(5, 70, 2).unwrap();
    let w = random_weights(config, 3, 2.0);
    let (batch, t) = (13, 6);
    let x: Array3<f32> = random_array((batch, t, 5), 4, -1.0, 1.0);
    let upstream = Upstream {
        dy: Some(random_array((batch, t, 70), 5, -1.0, 1.0)),
        dh_n: Some(random_array((2, batch, 70), 6, -1.0, 1.0)),
        dc_n: Some(random_array((2, batch, 70), 7, -1.0, 1.0)),
    };
    let grads = |gpu: &Gpu| {
        let mut lstm = GpuLstm::new(gpu, &w).unwrap();
        let (_, tape) = lstm.forward_train(x.view(), None).unwrap();
        lstm.backward(&tape, &upstream, GradRequest::ALL).unwrap()
    };
    let (p, q) = (grads(a), grads(b));
    let (px, qx) = (p.x.unwrap(), q.x.unwrap());
    let differ = px
        .iter()
        .zip(&qx)
        .position(|(u, v)| u.to_bits() != v.to_bits());
    if let Some(i) = differ {
        let (u, v) = (px.as_slice().unwrap()[i], qx.as_slice().unwrap()[i]);
        panic!("{what}: dx element {i}: {u} vs {v}");
    }
    let (pl, ql) = (p.layers.unwrap(), q.layers.unwrap());
    for (l, (g, h)) in pl.iter().zip(&ql).enumerate() {
        for ((name, g), (_, h)) in g.named(l, 0).into_iter().zip(h.named(l, 0)) {
            let differ = g
                .iter()
                .zip(h.iter())
                .position(|(u, v)| u.to_bits() != v.to_bits());
            assert!(
                differ.is_none(),
                "{what}: layer {l} d{name}: element {differ:?} differs"
            );
        }
    }
}

#[test]
fn the_subgroup_backward_step_gives_the_bits_of_the_direct_one() {
    // The same sums in the same order: equal gradients, not close ones.
    if !runs_subgroups() {
        return;
    }
    let with = gpu_tuned_as_software_with_subgroups(false);
    let without = with.with_tuning(Tuning {
        subgroups: false,
        ..with.tuning()
    });
    assert_eq!(
        Kernel::for_backward_step(13, &without),
        Kernel::LstmBackwardStepDirect
    );
    same_gradient_bits(&with, &without, "subgroup vs direct");
}

#[test]
fn the_texel_backward_steps_give_the_bits_of_the_storage_ones() {
    // The same weights fetched another way: equal gradients.
    let (texels, storage) = (
        gpu_tuned_as_software(),
        gpu_tuned_as_software_without_texels(),
    );
    assert_eq!(
        Kernel::for_backward_step(13, &texels),
        Kernel::LstmBackwardStepDirectTexels
    );
    same_gradient_bits(&texels, &storage, "direct, texels vs storage");
    if runs_subgroups() {
        let (texels, storage) = (
            gpu_tuned_as_software_with_subgroups(true),
            gpu_tuned_as_software_with_subgroups(false),
        );
        assert_eq!(
            Kernel::for_backward_step(13, &texels),
            Kernel::LstmBackwardStepSubgroupTexels
        );
        same_gradient_bits(&texels, &storage, "subgroup, texels vs storage");
    }
}

/// On adapters tuned as hardware and as software alike, a backward pass of `shape` (its batch
/// first) picks `kernel` for its steps and matches the CPU.
fn runs_on_every_adapter(kernel: Kernel, shape: Shape) {
    for gpu in [gpu_tuned_as_hardware(), gpu_tuned_as_software()] {
        assert_eq!(
            Kernel::for_backward_step(shape.0, &gpu),
            kernel,
            "{:?}",
            gpu.tuning()
        );
        compare_on(&gpu, shape, true, Up::All);
    }
}

#[test]
fn a_small_batch_runs_the_narrow_backward_step_on_every_adapter() {
    runs_on_every_adapter(Kernel::LstmBackwardStepNarrow, (3, 5, 7, 9, 1));
}

#[test]
fn a_batch_of_one_runs_the_single_row_backward_step_on_every_adapter() {
    // 70 units are one full 64-unit tile and a partial one; the second layer takes the first
    // one's output.
    runs_on_every_adapter(Kernel::LstmBackwardStepSingleRow, (1, 6, 5, 70, 2));
}

#[test]
fn matches_cpu_across_tile_boundaries_after_the_direct_forward_step() {
    let gpu = gpu_tuned_as_software();
    assert_eq!(
        Kernel::for_forward_step(20, 33, &gpu),
        Kernel::LstmForwardStepDirectTexels
    );
    assert_eq!(
        Kernel::for_backward_step(20, &gpu),
        Kernel::LstmBackwardStepDirectTexels
    );
    compare_on(&gpu, (20, 7, 19, 33, 2), true, Up::All);
}

#[test]
fn matches_cpu_with_two_stacked_layers() {
    compare(3, 5, 7, 9, 2, true, Up::All);
}

#[test]
fn matches_cpu_with_three_stacked_layers() {
    // The middle layer's dy comes from the layer above and its input gradient feeds the one
    // below.
    compare(3, 5, 7, 9, 3, true, Up::All);
}

#[test]
fn forward_backward_in_one_submit_matches_forward_then_backward() {
    let config = LstmConfig::new(4, 6, 1).unwrap();
    let w = random_weights(config, 3, 1.0);
    let x: Array3<f32> = random_array((2, 4, 4), 1, -1.0, 1.0);
    let up = Upstream {
        dy: Some(random_array((2, 4, 6), 2, -1.0, 1.0)),
        ..Default::default()
    };
    let mut lstm = GpuLstm::new(&gpu(), &w).unwrap();
    let (out1, tape) = lstm.forward_train(x.view(), None).unwrap();
    let g1 = lstm.backward(&tape, &up, GradRequest::ALL).unwrap();
    let (out2, g2) = lstm
        .forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    assert_eq!(out1, out2);
    assert_eq!(g1, g2);
}

#[test]
fn gradients_are_bitwise_identical_from_run_to_run() {
    let config = LstmConfig::new(7, 33, 2).unwrap();
    let w = random_weights(config, 5, 1.0);
    let x: Array3<f32> = random_array((20, 6, 7), 1, -1.0, 1.0);
    let up = Upstream {
        dy: Some(random_array((20, 6, 33), 2, -1.0, 1.0)),
        ..Default::default()
    };
    let mut lstm = GpuLstm::new(&gpu(), &w).unwrap();
    let (_, a) = lstm
        .forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    let (_, b) = lstm
        .forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    // No float atomics: every reduction runs in a fixed order, so equality is exact.
    assert_eq!(a, b);
}

#[test]
fn matches_cpu_when_the_long_products_take_the_blocked_gemm() {
    // Without subgroups the blocked GEMM serves all three long products.
    let gpu = Gpu::from_env().unwrap();
    let plain = gpu.with_tuning(Tuning {
        subgroups: false,
        ..gpu.tuning()
    });
    long_products_match_cpu(&plain, Kernel::MatmulBlocked, Kernel::MatmulBlocked);
}

#[test]
fn matches_cpu_when_the_input_gradient_takes_the_subgroup_gemm_along_k() {
    // With 8-wide subgroups the input gradient (both operands along K, 4H = 280 a multiple of
    // 4) takes the subgroup GEMM, here also for the gradient the top layer passes down.
    if !runs_subgroups() {
        return;
    }
    let gpu = Gpu::from_env().unwrap();
    long_products_match_cpu(&gpu, Kernel::MatmulBlocked, Kernel::MatmulSubgroupNt);
}

/// A stacked layer's forward+backward with every gradient on `gpu` against the CPU, after
/// checking that `weights` served the weight gradients and `input` the input gradient. B·T =
/// 280 rows make the weight gradients' K long, 4H = 280 that of dx; I = 9 and H = 70 sit off the
/// blocked variant's 8 x 64 tiles and the subgroup variant's 32 x 32. The profile (of a device of
/// its own, so no other test's dispatches land in it) shows which kernel served each product.
fn long_products_match_cpu(gpu: &Gpu, weights: Kernel, input: Kernel) {
    let (b, t, i, h, layers) = (20, 14, 9, 70, 2);
    let config = LstmConfig::new(i, h, layers).unwrap();
    let w = random_weights(config, 3, 1.0);
    let x: Array3<f32> = random_array((b, t, i), 13, -1.0, 1.0);
    let state = random_state(&config, b, 15);
    let upstream = Upstream {
        dy: Some(random_array((b, t, h), 21, -1.0, 1.0)),
        dh_n: Some(random_array((layers, b, h), 22, -1.0, 1.0)),
        dc_n: Some(random_array((layers, b, h), 23, -1.0, 1.0)),
    };
    let (_, tape) = cpu::lstm::forward_train(&w, x.view(), Some(&state)).unwrap();
    let want = cpu::lstm::backward(&w, &tape, &upstream).unwrap();
    let mut lstm = GpuLstm::new(gpu, &w).unwrap();
    let (got, profile) = gpu
        .profile(|| lstm.forward_backward(x.view(), Some(&state), &upstream, GradRequest::ALL))
        .unwrap();
    let (_, got) = got.unwrap();
    for (label, kernel) in [
        ("dW_ih", weights),
        ("dW_hh", weights),
        ("input gradient", input),
    ] {
        assert!(
            profile
                .rows
                .iter()
                .any(|r| r.label == label && r.kernel == kernel),
            "{label} on {kernel:?}: {profile:?}"
        );
    }
    assert_grads_close(&format!("{input:?}"), &got, &want);
}

#[test]
fn a_300_step_sequence_has_finite_gradients_matching_cpu() {
    let config = LstmConfig::new(3, 8, 1).unwrap();
    let w = random_weights(config, 6, 1.0);
    let x: Array3<f32> = random_array((2, 300, 3), 1, -1.0, 1.0);
    let up = Upstream {
        dy: Some(random_array((2, 300, 8), 2, -1.0, 1.0)),
        dh_n: Some(random_array((1, 2, 8), 3, -1.0, 1.0)),
        dc_n: Some(random_array((1, 2, 8), 4, -1.0, 1.0)),
    };
    let (_, tape) = cpu::lstm::forward_train(&w, x.view(), None).unwrap();
    let want = cpu::lstm::backward(&w, &tape, &up).unwrap();
    let mut lstm = GpuLstm::new(&gpu(), &w).unwrap();
    let (_, got) = lstm
        .forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    for g in got.layers.as_ref().unwrap() {
        for (name, v) in g.named(0, 0) {
            assert!(
                v.iter().all(|v| v.is_finite()),
                "{name} has a non-finite element"
            );
        }
    }
    assert_grads_close("T=300", &got, &want);
}

#[test]
fn one_model_trains_on_smaller_then_larger_batches_like_fresh_ones_on_both_devices() {
    // forward_train reallocates the tape (GPU workspace, CPU buffers) whenever the shape
    // changes; gradients must not depend on the shapes seen before. Three layers, so a middle
    // layer (input from below, output above) is exercised too.
    let config = LstmConfig::new(4, 6, 3).unwrap();
    let w = random_weights(config, 5, 2.0);
    let mut gpu_model = GpuLstm::new(&gpu(), &w).unwrap();
    let mut cpu_model = cpu::lstm::CpuLstm::new(w.clone()).unwrap();
    for (b, t) in [(5, 4), (2, 3), (7, 6), (1, 1), (5, 4)] {
        let x: Array3<f32> = random_array((b, t, 4), 30 + b as u64, -1.0, 1.0);
        let upstream = Upstream {
            dy: Some(random_array((b, t, 6), 40 + t as u64, -1.0, 1.0)),
            ..Upstream::default()
        };
        let fresh = cpu::lstm::CpuLstm::new(w.clone())
            .unwrap()
            .forward_backward(x.view(), None, &upstream, GradRequest::ALL)
            .unwrap()
            .1;
        let models: [(&str, &mut dyn Lstm); 2] = [("gpu", &mut gpu_model), ("cpu", &mut cpu_model)];
        for (device, model) in models {
            let (_, tape) = model.forward_train(x.view(), None).unwrap();
            let got = model.backward(&tape, &upstream, GradRequest::ALL).unwrap();
            assert_grads_close(
                &format!("{device} B={b} T={t} after other shapes"),
                &got,
                &fresh,
            );
        }
    }
}
