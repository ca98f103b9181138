//! `CpuLstm` keeps the general path's buffers (tape, inference activations, backward's working
//! memory) and its packed inference weights between calls. Whatever ran before, a call must
//! give the bits a fresh model gives: after calls of other shapes and lengths, after inference
//! between a training pass and its backward, and after the weights change.
mod common;

use common::{assert_same_bits, random_array, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, LstmWeights, Upstream};

fn assert_outputs(what: &str, a: &LstmOutput, b: &LstmOutput) {
    assert_same_bits(
        &format!("{what}: y"),
        &a.y.view().into_dyn(),
        &b.y.view().into_dyn(),
    );
    assert_same_bits(
        &format!("{what}: h_n"),
        &a.h_n.view().into_dyn(),
        &b.h_n.view().into_dyn(),
    );
    assert_same_bits(
        &format!("{what}: c_n"),
        &a.c_n.view().into_dyn(),
        &b.c_n.view().into_dyn(),
    );
}

fn assert_grads(what: &str, a: &LstmGrads, b: &LstmGrads) {
    let pairs = [(&a.x, &b.x), (&a.h0, &b.h0), (&a.c0, &b.c0)];
    for (name, (a, b)) in ["dx", "dh0", "dc0"].into_iter().zip(pairs) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_same_bits(
            &format!("{what}: {name}"),
            &a.view().into_dyn(),
            &b.view().into_dyn(),
        );
    }
    let (a, b) = (a.layers.as_ref().unwrap(), b.layers.as_ref().unwrap());
    for (ld, (a, b)) in a.iter().zip(b).enumerate() {
        for ((name, a), (_, b)) in a.named(ld, 0).into_iter().zip(b.named(ld, 0)) {
            assert_same_bits(&format!("{what}: {ld}: d{name}"), &a, &b);
        }
    }
}

/// Two bidirectional projected layers.
fn config() -> LstmConfig {
    LstmConfig::new(6, 10, 2)
        .unwrap()
        .with_bidirectional(true)
        .unwrap()
        .with_proj_size(7)
        .unwrap()
}

/// An input and upstream gradients for `lengths.len()` sequences of `seq` steps.
struct Batch {
    x: Array3<f32>,
    lengths: Vec<usize>,
    up: Upstream<f32>,
}

fn batch(lengths: &[usize], seq: usize, seed: u64) -> Batch {
    let (c, b) = (config(), lengths.len());
    Batch {
        x: random_array((b, seq, c.input_size), seed, -1.0, 1.0),
        lengths: lengths.to_vec(),
        up: Upstream {
            dy: Some(random_array(
                (b, seq, c.layer_output_size()),
                seed + 1,
                -1.0,
                1.0,
            )),
            dh_n: Some(random_array((4, b, c.output_size()), seed + 2, -1.0, 1.0)),
            dc_n: Some(random_array((4, b, c.hidden_size), seed + 3, -1.0, 1.0)),
        },
    }
}

fn train(lstm: &mut CpuLstm, b: &Batch) -> (LstmOutput, LstmGrads) {
    let (out, tape) = lstm
        .forward_train_lengths(b.x.view(), &b.lengths, None)
        .unwrap();
    (out, lstm.backward(&tape, &b.up, GradRequest::ALL).unwrap())
}

fn fresh(w: &LstmWeights) -> CpuLstm {
    CpuLstm::new(w.clone()).unwrap()
}

#[test]
fn calls_of_other_shapes_and_lengths_leave_nothing_behind() {
    let w = random_weights(config(), 1, 1.0);
    let mut lstm = fresh(&w);
    let batches = [
        batch(&[7, 3, 7, 1, 5], 7, 10),
        batch(&[4; 9], 4, 20),
        batch(&[2, 7, 6, 6, 1], 7, 30),
        batch(&[1], 1, 40),
        batch(&[7, 3, 7, 1, 5], 7, 10),
    ];
    for (i, b) in batches.iter().enumerate() {
        let (out, grads) = train(&mut lstm, b);
        let (want_out, want_grads) = train(&mut fresh(&w), b);
        assert_outputs(&format!("batch {i}, training"), &out, &want_out);
        assert_grads(&format!("batch {i}"), &grads, &want_grads);
        let inferred = lstm.forward_lengths(b.x.view(), &b.lengths, None).unwrap();
        assert_outputs(&format!("batch {i}, inference"), &inferred, &want_out);
    }
}

#[test]
fn inference_between_a_training_pass_and_its_backward_leaves_the_tape_alone() {
    let w = random_weights(config(), 2, 1.0);
    let (first, other) = (batch(&[5, 2, 4], 5, 50), batch(&[3, 3, 1, 2], 3, 60));
    let mut lstm = fresh(&w);
    let (_, tape) = lstm
        .forward_train_lengths(first.x.view(), &first.lengths, None)
        .unwrap();
    lstm.forward_lengths(other.x.view(), &other.lengths, None)
        .unwrap();
    lstm.forward(other.x.view(), None).unwrap();
    let grads = lstm.backward(&tape, &first.up, GradRequest::ALL).unwrap();
    let (_, want) = train(&mut fresh(&w), &first);
    assert_grads("backward after inference", &grads, &want);
}

#[test]
fn inference_after_the_weights_change_uses_the_new_weights() {
    // CpuLstm keeps the general path's inference weights packed; changing them must repack.
    let b = batch(&[4, 2, 3], 4, 70);
    for lengths in [None, Some(&b.lengths)] {
        let infer = |lstm: &mut CpuLstm| match lengths {
            Some(l) => lstm.forward_lengths(b.x.view(), l, None).unwrap(),
            None => lstm.forward(b.x.view(), None).unwrap(),
        };
        let mut lstm = fresh(&random_weights(config(), 3, 1.0));
        let before = infer(&mut lstm);

        lstm.params_mut().layers_mut()[1].weight_hh *= 0.5;
        let changed = lstm.params().clone();
        let after = infer(&mut lstm);
        assert_outputs("after params_mut", &after, &infer(&mut fresh(&changed)));
        assert_ne!(after.y, before.y);

        let other = random_weights(config(), 4, 1.0);
        lstm.set_weights(&other).unwrap();
        assert_outputs(
            "after set_weights",
            &infer(&mut lstm),
            &infer(&mut fresh(&other)),
        );
    }
}
