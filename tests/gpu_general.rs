//! Every `nn.LSTM` variant on the GPU against the CPU: both directions, projection, variable
//! lengths, layers without biases and dropout, over sizes off the kernels' tiles, batches of one
//! and lengths of 1 and `T`, on every kernel variant (the direct steps from textures and from
//! storage, as a software adapter runs them, and the staged steps a hardware GPU runs for
//! larger batches); and what each costs in dispatches.
mod common;

use common::gpu_vs_cpu::{
    RTOL_BWD, RTOL_FWD, cases, config, gpu_matches_cpu_on_cases, run, tall_cases,
};
use common::{
    assert_close, gpu, gpu_tuned_as_hardware, gpu_tuned_as_software,
    gpu_tuned_as_software_with_subgroups, gpu_tuned_as_software_without_texels, random_array,
    random_weights, runs_subgroups,
};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::{Array3, s};
use lstm_wgpu::{Dropout, GradRequest, Lstm, LstmConfig, Upstream};

fn gpu_matches_cpu_on(gpu: &Gpu, tuning: &str) {
    gpu_matches_cpu_on_cases(gpu, tuning, cases());
}

#[test]
fn the_direct_steps_reading_textures_match_the_cpu_on_every_variant() {
    gpu_matches_cpu_on(&gpu_tuned_as_software(), "direct, textures");
}

#[test]
fn the_direct_steps_reading_storage_match_the_cpu_on_every_variant() {
    gpu_matches_cpu_on(&gpu_tuned_as_software_without_texels(), "direct, storage");
}

#[test]
fn the_subgroup_steps_match_the_cpu_on_every_variant() {
    // Batches of 5 to 9 rows: the forward and backward steps that share rows through subgroups
    // (projected layers, lengths, both directions, dropout); a batch of one keeps the one-row
    // steps.
    if !runs_subgroups() {
        return;
    }
    let textures = gpu_tuned_as_software_with_subgroups(true);
    gpu_matches_cpu_on(&textures, "subgroups, textures");
    let storage = gpu_tuned_as_software_with_subgroups(false);
    gpu_matches_cpu_on(&storage, "subgroups, storage");
}

#[test]
fn the_tall_steps_match_the_cpu_on_large_batches_of_every_unprojected_variant() {
    // Forward (training, so the step also saves what backward reads) and backward.
    if !runs_subgroups() {
        return;
    }
    let textures = gpu_tuned_as_software_with_subgroups(true);
    gpu_matches_cpu_on_cases(&textures, "subgroups, textures", tall_cases());
    let storage = gpu_tuned_as_software_with_subgroups(false);
    gpu_matches_cpu_on_cases(&storage, "subgroups, storage", tall_cases());
}

#[test]
fn the_staged_steps_match_the_cpu_on_every_variant() {
    gpu_matches_cpu_on(&gpu_tuned_as_hardware(), "staged");
}

#[test]
fn outputs_past_each_length_are_zero_on_the_gpu() {
    let c = &cases()[1];
    let w = random_weights(c.config, 7, 1.5);
    let (out, _) = run(&mut GpuLstm::new(&gpu(), &w).unwrap(), &w, c);
    for (b, &n) in c.lengths.iter().enumerate() {
        let past = out.y.slice(s![b, n.., ..]);
        assert!(past.iter().all(|&v| v == 0.0), "row {b} past {n}: {past}");
    }
}

#[test]
fn outputs_past_each_length_are_zero_where_an_earlier_call_wrote_them() {
    // The model's buffers are made once per shape, so a call finds the last call's outputs in
    // them: after a pass over full lengths, a pass over shorter ones must write the zeros past
    // each row's end itself, in inference and in training (where backward also reads the saved
    // h_prev there). Unprojected layers, whose steps write y: 8 rows (the direct or subgroup
    // steps) and 40 (the tall ones where the device has 8-wide subgroups).
    let mut gpus = vec![("default", gpu())];
    if runs_subgroups() {
        gpus.push(("subgroups", gpu_tuned_as_software_with_subgroups(true)));
    }
    let config = config(4, 9, 2, true, 0, true);
    let w = random_weights(config, 7, 1.5);
    let seq = 5;
    for (tuning, gpu) in gpus {
        for b in [8, 40] {
            let x: Array3<f32> = random_array((b, seq, 4), 1, -1.0, 1.0);
            let lengths: Vec<usize> = (0..b).map(|r| 1 + r % seq).collect();
            let full = vec![seq; b];
            let mut cpu = CpuLstm::new(w.clone()).unwrap();
            let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
            let what = format!("{tuning}, B {b}");
            lstm.forward_lengths(x.view(), &full, None).unwrap();
            let got = lstm.forward_lengths(x.view(), &lengths, None).unwrap();
            let want = cpu.forward_lengths(x.view(), &lengths, None).unwrap();
            let y_close = |pass: &str, got: &Array3<f32>, want: &Array3<f32>| {
                let name = format!("{what}, {pass}: y");
                assert_close(
                    &name,
                    got.view().into_dyn(),
                    want.view().into_dyn(),
                    0.0,
                    RTOL_FWD,
                );
            };
            y_close("inference", &got.y, &want.y);
            let upstream = Upstream {
                dy: Some(random_array((b, seq, 18), 3, -1.0, 1.0)),
                dh_n: None,
                dc_n: None,
            };
            lstm.forward_train_lengths(x.view(), &full, None).unwrap();
            let (got, tape) = lstm
                .forward_train_lengths(x.view(), &lengths, None)
                .unwrap();
            let got_g = lstm.backward(&tape, &upstream, GradRequest::ALL).unwrap();
            let (want, tape) = cpu.forward_train_lengths(x.view(), &lengths, None).unwrap();
            let want_g = cpu.backward(&tape, &upstream, GradRequest::ALL).unwrap();
            y_close("training", &got.y, &want.y);
            let (gl, wl) = (got_g.layers.unwrap(), want_g.layers.unwrap());
            for (ld, (g, e)) in gl.iter().zip(&wl).enumerate() {
                let (named, expected) = (g.named(ld / 2, ld % 2), e.named(ld / 2, ld % 2));
                for ((name, a), (_, b)) in named.into_iter().zip(expected) {
                    assert_close(&format!("{what}: d{name}"), a, b, 0.0, RTOL_BWD);
                }
            }
        }
    }
}

/// The same dropout pass draws the same masks on both devices: with a weight scale that keeps
/// the outputs well away from zero, each device's zeros in the lower layer's gradient flow
/// show the mask. Compared through the whole network: a mask differing in one element moves
/// the outputs far beyond the tolerance.
#[test]
fn dropout_masks_are_the_same_on_the_cpu_and_the_gpu() {
    let c = &cases()[5];
    let w = random_weights(c.config, 3, 1.0);
    let x: Array3<f32> = random_array((6, 6, 4), 1, -1.0, 1.0);
    let d = Dropout::new(0.5, 123).unwrap().at_pass(40);
    let mut outputs = Vec::new();
    let devices: Vec<Box<dyn Lstm>> = vec![
        Box::new(CpuLstm::new(w.clone()).unwrap()),
        Box::new(GpuLstm::new(&gpu(), &w).unwrap()),
    ];
    for mut lstm in devices {
        lstm.set_dropout(Some(d)).unwrap();
        let (out, _) = lstm.forward_train(x.view(), None).unwrap();
        assert_eq!(lstm.dropout().unwrap().pass, 41);
        // A second pass draws other masks.
        let (again, _) = lstm.forward_train(x.view(), None).unwrap();
        assert_ne!(out.y, again.y);
        outputs.push(out.y);
    }
    assert_close(
        "y with dropout",
        outputs[1].view().into_dyn(),
        outputs[0].view().into_dyn(),
        0.0,
        RTOL_FWD,
    );
}

/// Dispatches of one training pass (forward and backward) of `c` on `gpu`, after a first pass
/// has built the plans.
fn dispatches_of(gpu: &Gpu, c: &LstmConfig, lengths: &[usize], seq: usize) -> u64 {
    let w = random_weights(*c, 1, 1.0);
    let mut lstm = GpuLstm::new(gpu, &w).unwrap();
    let x: Array3<f32> = random_array((lengths.len(), seq, c.input_size), 1, -1.0, 1.0);
    let up = Upstream::default();
    let pass = |lstm: &mut GpuLstm| {
        let (_, tape) = lstm.forward_train_lengths(x.view(), lengths, None).unwrap();
        lstm.backward(&tape, &up, GradRequest::ALL).unwrap();
    };
    pass(&mut lstm);
    let before = lstm.stats();
    pass(&mut lstm);
    (lstm.stats() - before).dispatches
}

#[test]
fn a_bidirectional_layer_is_one_dispatch_per_step_each_way() {
    let (t, b) = (9, 3);
    let gpu = gpu_tuned_as_software();
    let uni = dispatches_of(&gpu, &config(4, 8, 1, false, 0, true), &[t; 3], t);
    let bi = dispatches_of(&gpu, &config(4, 8, 1, true, 0, true), &[t; 3], t);
    // Forward: T steps either way. Backward: T steps and dh0 either way; per direction the
    // weight gradients (dW_ih, dW_hh, biases) and dx's GEMM.
    assert_eq!(uni, (t + t + 1 + 4) as u64, "unidirectional");
    assert_eq!(bi, (t + t + 1 + 2 * 4) as u64, "bidirectional, B = {b}");
}

#[test]
fn variable_lengths_cost_no_dispatch_more_than_full_ones() {
    let gpu = gpu_tuned_as_software();
    let c = config(4, 8, 2, true, 0, true);
    let full = dispatches_of(&gpu, &c, &[6, 6, 6, 6], 6);
    let varied = dispatches_of(&gpu, &c, &[6, 1, 3, 2], 6);
    assert_eq!(varied, full);
}

#[test]
fn a_projected_layer_is_two_dispatches_per_step_each_way() {
    let t = 5;
    let gpu = gpu_tuned_as_software();
    let plain = dispatches_of(&gpu, &config(4, 8, 1, false, 0, true), &[t; 2], t);
    let projected = dispatches_of(&gpu, &config(4, 8, 1, false, 3, true), &[t; 2], t);
    // One more dispatch per step forward (the projection) and backward (the gradient on h),
    // and one more weight gradient (dW_hr).
    assert_eq!(projected, plain + (2 * t + 1) as u64);
}
