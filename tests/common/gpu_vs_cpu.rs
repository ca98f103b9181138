//! `nn.LSTM` variants run on the GPU and on the CPU from the same weights, state and upstream
//! gradients, every output and gradient compared: the cases and the check that
//! `gpu_general.rs` runs under each tuning and `gpu_kernel_coverage.rs` sweeps.

use super::{assert_close, random_array, random_state, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{
    Dropout, GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, LstmWeights, Upstream,
};

/// One problem: a configuration, the batch's lengths (`T` is the longest), and dropout.
pub struct Case {
    pub name: &'static str,
    pub config: LstmConfig,
    pub lengths: Vec<usize>,
    pub seq: usize,
    pub dropout: Option<Dropout>,
}

pub fn config(
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

pub fn cases() -> Vec<Case> {
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
pub fn tall_cases() -> Vec<Case> {
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
pub fn run(
    lstm: &mut dyn Lstm,
    w: &LstmWeights<f32>,
    c: &Case,
) -> (LstmOutput<f32>, LstmGrads<f32>) {
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
pub const RTOL_FWD: f64 = 1e-5;
pub const RTOL_BWD: f64 = 2e-5;

pub fn gpu_matches_cpu_on_cases(gpu: &Gpu, tuning: &str, cases: Vec<Case>) {
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
