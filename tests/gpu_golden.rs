//! The GPU path against PyTorch's golden tensors: outputs and every gradient.
mod common;

use common::{Golden, gpu, run_golden};
use lstm_wgpu::gpu::GpuLstm;

/// Runs forward+backward of case `name` on the GPU (one submission) and checks everything the
/// file holds (the same check as the CPU's, `run_golden`).
fn check_case(name: &str, rtol_fwd: f64, rtol_bwd: f64) {
    let g = Golden::load(name);
    let mut lstm = GpuLstm::new(&gpu(), &g.weights::<f32>()).unwrap();
    let (out, grads) = run_golden(&mut lstm, &g);
    g.check(&out, &grads, rtol_fwd, rtol_bwd);
}

// PyTorch float32 is within 6.5e-7 of float64; the GPU adds its own float32 rounding in a
// different summation order and the device's exp. The golden README expects GPU reductions to
// need ~1e-5 relative to each tensor's largest magnitude.
#[test]
fn gpu_matches_pytorch_on_the_tiny_case() {
    check_case("c1_tiny_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_with_two_stacked_layers() {
    check_case("c3_two_layer_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_at_the_seed_size() {
    check_case("c2_seed_f32", 5e-6, 1e-5);
}

// The float64 file holds the same inputs, upcast; float32 on the GPU lands within float32
// rounding of the exact result.
#[test]
fn gpu_matches_pytorch_float64_within_float32_rounding() {
    check_case("c1_tiny_f64", 2e-6, 4e-6);
}

// Bidirectional, projected, variable-length and bias-less models: the same tolerances, for the
// same reasons (float32 in another summation order; the float64 files hold the same inputs).
#[test]
fn gpu_matches_pytorch_on_a_bidirectional_layer() {
    check_case("d5_bidir_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_a_projected_layer() {
    check_case("d6_proj_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_stacked_bidirectional_projected_layers() {
    check_case("d10_bidir_two_layer_proj_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_packed_sequences_of_variable_lengths() {
    check_case("d9_varlen_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_stacked_bidirectional_layers_of_variable_lengths() {
    check_case("d11_varlen_bidir_two_layer_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_stacked_layers_without_biases() {
    check_case("e1_no_bias_two_layer_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_three_bidirectional_projected_layers_of_variable_lengths() {
    check_case("e2_three_layer_bidir_proj_varlen_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_on_a_bidirectional_layer_without_biases_of_variable_lengths() {
    check_case("e3_no_bias_bidir_varlen_f32", 5e-6, 1e-5);
}

#[test]
fn gpu_matches_pytorch_float64_on_three_bidirectional_projected_layers() {
    check_case("e2_three_layer_bidir_proj_varlen_f64", 2e-6, 4e-6);
}
