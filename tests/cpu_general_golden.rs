//! The CPU path for every `nn.LSTM` (bidirectional, projected, variable lengths, and their
//! stacked combinations) against PyTorch's golden tensors: outputs and every gradient.
mod common;

use common::{Golden, assert_same_bits, run_golden};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::{GradRequest, Lstm, LstmWeights};

/// Checks outputs and gradients of case `name` computed on the CPU in `F`.
fn check_case<F: lstm_wgpu::Real>(name: &str, rtol_fwd: f64, rtol_bwd: f64) {
    let g = Golden::load(name);
    let mut lstm = CpuLstm::new(g.weights::<F>()).unwrap();
    let (out, grads) = run_golden(&mut lstm, &g);
    g.check(&out, &grads, rtol_fwd, rtol_bwd);
}

// float64 against PyTorch's float64: both are exact to ~1e-16 per operation and these small
// cases pass through a few dozen operations per element, so 1e-12 relative is a wide margin
// that still catches any wrong or missing term (those move results by percent).
const F64_RTOL: f64 = 1e-12;
// float32 against PyTorch's float32: PyTorch is within 6.5e-7 of float64 and our summation
// order and exp/tanh differ in the last bits; the golden README's float32 agreement is a few
// 1e-6 of each tensor's largest magnitude (gradients pass through twice as many operations).
const F32_RTOL_FWD: f64 = 2e-6;
const F32_RTOL_BWD: f64 = 5e-6;

#[test]
fn a_bidirectional_layer_matches_pytorch_f64() {
    check_case::<f64>("d5_bidir_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn a_bidirectional_layer_matches_pytorch_f32() {
    check_case::<f32>("d5_bidir_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn a_projected_layer_matches_pytorch_f64() {
    check_case::<f64>("d6_proj_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn a_projected_layer_matches_pytorch_f32() {
    check_case::<f32>("d6_proj_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn stacked_bidirectional_projected_layers_match_pytorch_f64() {
    check_case::<f64>("d10_bidir_two_layer_proj_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn stacked_bidirectional_projected_layers_match_pytorch_f32() {
    check_case::<f32>("d10_bidir_two_layer_proj_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn variable_lengths_match_pytorch_packed_sequences_f64() {
    check_case::<f64>("d9_varlen_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn variable_lengths_match_pytorch_packed_sequences_f32() {
    check_case::<f32>("d9_varlen_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn variable_lengths_in_stacked_bidirectional_layers_match_pytorch_f64() {
    check_case::<f64>("d11_varlen_bidir_two_layer_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn variable_lengths_in_stacked_bidirectional_layers_match_pytorch_f32() {
    check_case::<f32>("d11_varlen_bidir_two_layer_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn stacked_layers_without_biases_match_pytorch_f64() {
    check_case::<f64>("e1_no_bias_two_layer_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn stacked_layers_without_biases_match_pytorch_f32() {
    check_case::<f32>("e1_no_bias_two_layer_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

#[test]
fn three_bidirectional_projected_layers_of_variable_lengths_match_pytorch_f64() {
    check_case::<f64>("e2_three_layer_bidir_proj_varlen_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn three_bidirectional_projected_layers_of_variable_lengths_match_pytorch_f32() {
    check_case::<f32>(
        "e2_three_layer_bidir_proj_varlen_f32",
        F32_RTOL_FWD,
        F32_RTOL_BWD,
    );
}

#[test]
fn a_bidirectional_layer_without_biases_of_variable_lengths_matches_pytorch_f64() {
    check_case::<f64>("e3_no_bias_bidir_varlen_f64", F64_RTOL, F64_RTOL);
}

#[test]
fn a_bidirectional_layer_without_biases_of_variable_lengths_matches_pytorch_f32() {
    check_case::<f32>("e3_no_bias_bidir_varlen_f32", F32_RTOL_FWD, F32_RTOL_BWD);
}

// The general path also runs plain layers; on them it must agree with the plain path it
// generalises. Both add the same terms in the same order with the same kernels (whether a
// step's input terms come from a product of their own, as the plain path's small batches
// take them, or from the step's product over `[x_t | h_{t-1}]`), so they agree to the bit.
#[test]
fn full_lengths_on_plain_layers_match_the_plain_path() {
    let g = Golden::load("c3_two_layer_f32");
    let weights: LstmWeights<f64> = g.weights();
    let x = g.get3::<f64>("x");
    let state = g.state::<f64>();
    let mut lstm = CpuLstm::new(weights).unwrap();
    let (plain, plain_grads) = lstm
        .forward_backward(x.view(), state.as_ref(), &g.upstream(), GradRequest::ALL)
        .unwrap();
    let full = vec![x.dim().1; x.dim().0];
    let (general, tape) = lstm
        .forward_train_lengths(x.view(), &full, state.as_ref())
        .unwrap();
    let general_grads = lstm
        .backward(&tape, &g.upstream(), GradRequest::ALL)
        .unwrap();
    let pairs = [
        ("y", &general.y, &plain.y),
        ("h_n", &general.h_n, &plain.h_n),
        ("c_n", &general.c_n, &plain.c_n),
        (
            "dx",
            general_grads.x.as_ref().unwrap(),
            plain_grads.x.as_ref().unwrap(),
        ),
        (
            "dh0",
            general_grads.h0.as_ref().unwrap(),
            plain_grads.h0.as_ref().unwrap(),
        ),
        (
            "dc0",
            general_grads.c0.as_ref().unwrap(),
            plain_grads.c0.as_ref().unwrap(),
        ),
    ];
    for (what, a, b) in pairs {
        assert_same_bits(what, &a.view().into_dyn(), &b.view().into_dyn());
    }
    let (a, b) = (general_grads.layers.unwrap(), plain_grads.layers.unwrap());
    for (l, (a, b)) in a.iter().zip(&b).enumerate() {
        for ((name, a), (_, b)) in a.named(l, 0).into_iter().zip(b.named(l, 0)) {
            assert_same_bits(&format!("d{name}"), &a, &b);
        }
    }
}
