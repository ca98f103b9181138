//! Every `nn.LSTM` variant on the GPU against the CPU: both directions, projection, variable
//! lengths, layers without biases and dropout, over sizes off the kernels' tiles, batches of one
//! and lengths of 1 and `T`, on every kernel variant (the direct steps from textures and from
//! storage, as a software adapter runs them, and the staged steps a hardware GPU runs for
//! larger batches); and what each costs in dispatches.
mod common;

use common::{
    assert_close, gpu, gpu_tuned_as_hardware, gpu_tuned_as_software,
    gpu_tuned_as_software_with_subgroups, gpu_tuned_as_software_without_texels, random_array,
    random_state, random_weights, runs_subgroups,
};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::{Array3, s};
use lstm_wgpu::{
    Dropout, GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, LstmWeights, Upstream,
};

/// One problem: a configuration, the batch's lengths (`T` is the longest), and dropout.
struct Case {
    name: &'static str,
    config: LstmConfig,
    lengths: Vec<usize>,
    seq: usize,
    dropout: Option<Dropout>,
}

fn config(
    i: usize,
    h: usize,
    l: usize,
    bidirectional: bool,
    proj: usize,
    bias: bool,
) -> LstmConfig {
    let c = LstmConfig::new(i, h, l)
        .unwrap()
        .with_bidirectional(bidirectional)
        .unwrap()
        .with_bias(bias);
    if proj > 0 {
        c.with_proj_size(proj).unwrap()
    } else {
        c
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "bidirectional",
            config: config(3, 7, 1, true, 0, true),
            lengths: vec![4; 5],
            seq: 4,
            dropout: None,
        },
        Case {
            name: "projected, two layers, variable lengths",
            config: config(4, 9, 2, false, 5, true),
            lengths: vec![5, 1, 3, 5, 2, 4],
            seq: 5,
            dropout: None,
        },
        Case {
            name: "bidirectional projected, batch of one",
            config: config(2, 6, 2, true, 3, true),
            lengths: vec![6],
            seq: 6,
            dropout: None,
        },
        Case {
            name: "three bidirectional layers without biases, variable lengths",
            config: config(5, 17, 3, true, 0, false),
            lengths: vec![3, 1, 2, 3, 3, 1, 2, 3, 1],
            seq: 3,
            dropout: None,
        },
        Case {
            name: "bidirectional projected, variable lengths, dropout",
            config: config(3, 70, 2, true, 33, true),
            lengths: vec![7, 2, 1, 7, 5, 6, 3],
            seq: 7,
            dropout: Some(Dropout::new(0.3, 5).unwrap().at_pass(11)),
        },
        Case {
            name: "two layers, dropout",
            config: config(4, 20, 2, false, 0, true),
            lengths: vec![6; 6],
            seq: 6,
            dropout: Some(Dropout::new(0.5, 9).unwrap()),
        },
    ]
}

/// Batches of 32 rows and more: the tall forward steps where layers are unprojected and their
/// inputs narrow or in whole vec4s.
fn tall_cases() -> Vec<Case> {
    let lengths = |b: usize, seq: usize| (0..b).map(|r| 1 + r * 7 % seq).collect::<Vec<_>>();
    vec![
        Case {
            // The second layer reads 2·12 = 24 features: a whole number of vec4s.
            name: "bidirectional, two layers, variable lengths",
            config: config(3, 12, 2, true, 0, true),
            lengths: lengths(35, 5),
            seq: 5,
            dropout: None,
        },
        Case {
            name: "two layers without biases, dropout",
            config: config(4, 20, 2, false, 0, false),
            lengths: vec![4; 70],
            seq: 4,
            dropout: Some(Dropout::new(0.5, 9).unwrap()),
        },
        Case {
            name: "projected (no tall step), variable lengths",
            config: config(4, 9, 1, false, 5, true),
            lengths: lengths(32, 4),
            seq: 4,
            dropout: None,
        },
    ]
}

/// Forward (training) and backward of `c` with random state and upstream gradients on `lstm`.
fn run(lstm: &mut dyn Lstm, w: &LstmWeights<f32>, c: &Case) -> (LstmOutput<f32>, LstmGrads<f32>) {
    let config = *w.config();
    let b = c.lengths.len();
    let x: Array3<f32> = random_array((b, c.seq, config.input_size), 1, -1.0, 1.0);
    let state = random_state(&config, b, 2);
    let [hs, cs] = [
        (
            config.num_layers * config.num_directions(),
            b,
            config.output_size(),
        ),
        (
            config.num_layers * config.num_directions(),
            b,
            config.hidden_size,
        ),
    ];
    let upstream = Upstream {
        dy: Some(random_array(
            (b, c.seq, config.layer_output_size()),
            3,
            -1.0,
            1.0,
        )),
        dh_n: Some(random_array(hs, 4, -1.0, 1.0)),
        dc_n: Some(random_array(cs, 5, -1.0, 1.0)),
    };
    lstm.set_dropout(c.dropout).unwrap();
    let (out, tape) = lstm
        .forward_train_lengths(x.view(), &c.lengths, Some(&state))
        .unwrap();
    let grads = lstm.backward(&tape, &upstream, GradRequest::ALL).unwrap();
    (out, grads)
}

// f32 on both devices in different summation orders (and the device's exp): ~1e-6 of each
// tensor's largest magnitude; gradients pass through twice the operations. A wrong mask, time
// or direction moves elements by their own size.
const RTOL_FWD: f64 = 1e-5;
const RTOL_BWD: f64 = 2e-5;

fn gpu_matches_cpu_on(gpu: &Gpu, tuning: &str) {
    gpu_matches_cpu_on_cases(gpu, tuning, cases());
}

fn gpu_matches_cpu_on_cases(gpu: &Gpu, tuning: &str, cases: Vec<Case>) {
    for c in cases {
        let w = random_weights(c.config, 7, 1.5);
        let what = format!("{tuning}, {}", c.name);
        let (want, want_g) = run(&mut CpuLstm::new(w.clone()).unwrap(), &w, &c);
        let (got, got_g) = run(&mut GpuLstm::new(gpu, &w).unwrap(), &w, &c);
        let pairs = [
            ("y", &got.y, &want.y, RTOL_FWD),
            ("h_n", &got.h_n, &want.h_n, RTOL_FWD),
            ("c_n", &got.c_n, &want.c_n, RTOL_FWD),
            (
                "dx",
                got_g.x.as_ref().unwrap(),
                want_g.x.as_ref().unwrap(),
                RTOL_BWD,
            ),
            (
                "dh0",
                got_g.h0.as_ref().unwrap(),
                want_g.h0.as_ref().unwrap(),
                RTOL_BWD,
            ),
            (
                "dc0",
                got_g.c0.as_ref().unwrap(),
                want_g.c0.as_ref().unwrap(),
                RTOL_BWD,
            ),
        ];
        for (name, a, b, rtol) in pairs {
            let name = format!("{what}: {name}");
            assert_close(&name, a.view().into_dyn(), b.view().into_dyn(), 0.0, rtol);
        }
        let dirs = c.config.num_directions();
        let (gl, wl) = (got_g.layers.unwrap(), want_g.layers.unwrap());
        for (ld, (g, e)) in gl.iter().zip(&wl).enumerate() {
            let (named, expected) = (g.named(ld / dirs, ld % dirs), e.named(ld / dirs, ld % dirs));
            for ((name, a), (_, b)) in named.into_iter().zip(expected) {
                assert_close(&format!("{what}: d{name}"), a, b, 0.0, RTOL_BWD);
            }
        }
    }
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
