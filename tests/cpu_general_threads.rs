//! The general path (both directions, projection, variable lengths, dropout) splits rows among
//! threads; none of that may change a bit. Here it gives the same bits on one, two and four
//! threads in training and in inference; its inference gives the bits of its training pass's
//! outputs; and on plain layers of full-length sequences it gives the plain path's bits, at
//! sizes whose rows the threads split.
mod common;

use common::{assert_same_bits, random_array, random_state, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::{Array3, ArrayViewD};
use lstm_wgpu::{Dropout, GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, Upstream};

/// The outputs of a forward pass, by name.
fn outputs(o: &LstmOutput) -> Vec<(String, ArrayViewD<'_, f32>)> {
    vec![
        ("y".into(), o.y.view().into_dyn()),
        ("h_n".into(), o.h_n.view().into_dyn()),
        ("c_n".into(), o.c_n.view().into_dyn()),
    ]
}

/// Every output and gradient of a forward+backward, by name.
fn tensors<'a>(o: &'a LstmOutput, g: &'a LstmGrads) -> Vec<(String, ArrayViewD<'a, f32>)> {
    let mut t = outputs(o);
    t.push(("dx".into(), g.x.as_ref().unwrap().view().into_dyn()));
    t.push(("dh0".into(), g.h0.as_ref().unwrap().view().into_dyn()));
    t.push(("dc0".into(), g.c0.as_ref().unwrap().view().into_dyn()));
    for (ld, w) in g.layers.as_ref().unwrap().iter().enumerate() {
        for (name, v) in w.named(ld, 0) {
            t.push((format!("{ld}: d{name}"), v));
        }
    }
    t
}

fn assert_all_same_bits(
    what: &str,
    a: &[(String, ArrayViewD<'_, f32>)],
    b: &[(String, ArrayViewD<'_, f32>)],
) {
    assert_eq!(a.len(), b.len(), "{what}: tensors");
    for ((name, a), (_, b)) in a.iter().zip(b) {
        assert_same_bits(&format!("{what}: {name}"), a, b);
    }
}

/// A model and its inputs: `config` over `lengths.len()` sequences of `seq` steps.
struct Case {
    name: &'static str,
    config: LstmConfig,
    seq: usize,
    lengths: Vec<usize>,
    dropout: Option<Dropout>,
}

/// Lengths in `1..=seq` for `batch` sequences, many of them equal (ties keep their order).
fn lengths(batch: usize, seq: usize) -> Vec<usize> {
    (0..batch).map(|b| 1 + (b * 7 + b / 3) % seq).collect()
}

fn cases() -> Vec<Case> {
    let config = |i, h, l| LstmConfig::new(i, h, l).unwrap();
    // The first three have work enough (over 16 M multiply-adds per pass of a layer, forward
    // and backward) for the threads to share it: each direction's rows split in two chunks on
    // two threads and in four on four.
    vec![
        // Two bidirectional projected layers, dropout between them.
        Case {
            name: "bidirectional projected, 2 layers, dropout",
            config: config(28, 96, 2)
                .with_bidirectional(true)
                .unwrap()
                .with_proj_size(48)
                .unwrap(),
            seq: 30,
            lengths: lengths(48, 30),
            dropout: Some(Dropout::new(0.3, 9).unwrap()),
        },
        Case {
            name: "unidirectional, variable lengths",
            config: config(28, 96, 1),
            seq: 40,
            lengths: lengths(64, 40),
            dropout: None,
        },
        // Full lengths: the sequences run in the batch's order.
        Case {
            name: "bidirectional, full lengths",
            config: config(20, 96, 1).with_bidirectional(true).unwrap(),
            seq: 25,
            lengths: vec![25; 40],
            dropout: None,
        },
        // Little work: every chunk on the calling thread.
        Case {
            name: "bidirectional, 3 sequences",
            config: config(5, 16, 2).with_bidirectional(true).unwrap(),
            seq: 9,
            lengths: vec![4, 9, 1],
            dropout: None,
        },
    ]
}

/// Runs `f` on the case's model and input in a pool of `threads` threads.
fn in_pool<R: Send>(
    c: &Case,
    threads: usize,
    f: impl FnOnce(&mut CpuLstm, Array3<f32>) -> R + Send,
) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| {
            let mut lstm = CpuLstm::new(random_weights(c.config, 5, 1.0)).unwrap();
            lstm.set_dropout(c.dropout).unwrap();
            let x = random_array((c.lengths.len(), c.seq, c.config.input_size), 6, -1.0, 1.0);
            f(&mut lstm, x)
        })
}

/// Forward and every gradient with the case's lengths.
fn train(c: &Case, threads: usize) -> (LstmOutput, LstmGrads) {
    in_pool(c, threads, |lstm, x| {
        let batch = c.lengths.len();
        let ld = c.config.num_layers * c.config.num_directions();
        let state = random_state(&c.config, batch, 7);
        let up = Upstream {
            dy: Some(random_array(
                (batch, c.seq, c.config.layer_output_size()),
                8,
                -1.0,
                1.0,
            )),
            dh_n: Some(random_array(
                (ld, batch, c.config.output_size()),
                9,
                -1.0,
                1.0,
            )),
            dc_n: Some(random_array(
                (ld, batch, c.config.hidden_size),
                10,
                -1.0,
                1.0,
            )),
        };
        let (out, tape) = lstm
            .forward_train_lengths(x.view(), &c.lengths, Some(&state))
            .unwrap();
        let grads = lstm.backward(&tape, &up, GradRequest::ALL).unwrap();
        (out, grads)
    })
}

/// Inference with the case's lengths, twice (the second call reuses the first's buffers and
/// packed weights).
fn infer(c: &Case, threads: usize) -> [LstmOutput; 2] {
    in_pool(c, threads, |lstm, x| {
        let state = random_state(&c.config, c.lengths.len(), 7);
        [(); 2].map(|_| {
            lstm.forward_lengths(x.view(), &c.lengths, Some(&state))
                .unwrap()
        })
    })
}

#[test]
fn one_two_and_four_threads_give_the_same_bits_in_training_and_inference() {
    for c in cases() {
        let one = train(&c, 1);
        let one_inference = infer(&c, 1);
        for threads in [2, 4] {
            let many = train(&c, threads);
            assert_all_same_bits(
                &format!("{}, training, {threads} threads vs 1", c.name),
                &tensors(&many.0, &many.1),
                &tensors(&one.0, &one.1),
            );
            for (call, many) in infer(&c, threads).iter().enumerate() {
                assert_all_same_bits(
                    &format!("{}, inference call {call}, {threads} threads vs 1", c.name),
                    &outputs(many),
                    &outputs(&one_inference[0]),
                );
            }
        }
    }
}

#[test]
fn inference_gives_the_bits_of_the_training_pass_without_dropout() {
    for c in cases().into_iter().filter(|c| c.dropout.is_none()) {
        let trained = train(&c, 2);
        for (call, inferred) in infer(&c, 2).iter().enumerate() {
            assert_all_same_bits(
                &format!("{}: inference call {call} vs training", c.name),
                &outputs(inferred),
                &outputs(&trained.0),
            );
        }
    }
}

#[test]
fn plain_layers_of_full_length_sequences_give_the_plain_paths_bits_on_any_thread_count() {
    // 64 sequences of 28 steps through two 64-unit layers: the plain path splits its steps'
    // rows among the threads, as the general path does.
    let c = Case {
        name: "plain, 2 layers",
        config: LstmConfig::new(28, 64, 2).unwrap(),
        seq: 28,
        lengths: vec![28; 64],
        dropout: None,
    };
    for threads in [1, 2, 4] {
        let (general, general_inference) = (train(&c, threads), infer(&c, threads));
        let plain = in_pool(&c, threads, |lstm, x| {
            let (batch, ld) = (c.lengths.len(), c.config.num_layers);
            let state = random_state(&c.config, batch, 7);
            let up = Upstream {
                dy: Some(random_array((batch, c.seq, 64), 8, -1.0, 1.0)),
                dh_n: Some(random_array((ld, batch, 64), 9, -1.0, 1.0)),
                dc_n: Some(random_array((ld, batch, 64), 10, -1.0, 1.0)),
            };
            let trained = lstm
                .forward_backward(x.view(), Some(&state), &up, GradRequest::ALL)
                .unwrap();
            (trained, lstm.forward(x.view(), Some(&state)).unwrap())
        });
        assert_all_same_bits(
            &format!("{threads} threads, training: general vs plain"),
            &tensors(&general.0, &general.1),
            &tensors(&plain.0.0, &plain.0.1),
        );
        assert_all_same_bits(
            &format!("{threads} threads, inference: general vs plain"),
            &outputs(&general_inference[0]),
            &outputs(&plain.1),
        );
    }
}
