//! The CPU reference against PyTorch's golden tensors: forward outputs and every gradient.
mod common;

use common::{Golden, run_golden};
use lstm_wgpu::cpu::lstm::CpuLstm;

/// Checks outputs and gradients of case `name` computed on the CPU in `F` with the given
/// tolerances (the same check as the GPU's, `run_golden`).
fn check_case<F: lstm_wgpu::Real>(name: &str, rtol_fwd: f64, rtol_bwd: f64) {
    let g = Golden::load(name);
    let mut lstm = CpuLstm::new(g.weights::<F>()).unwrap();
    let (out, grads) = run_golden(&mut lstm, &g);
    g.check(&out, &grads, rtol_fwd, rtol_bwd);
}

// float64 against PyTorch's float64: both are exact to ~1e-16 per operation, and these tensors
// pass through a few dozen operations, so 1e-12 relative leaves a wide margin yet would catch
// any wrong term.
#[test]
fn cpu_f64_matches_pytorch_f64_on_the_tiny_case() {
    check_case::<f64>("c1_tiny_f64", 1e-12, 1e-12);
}

// float32 against PyTorch's float32: PyTorch itself is within 6.5e-7 of float64; our
// accumulation order and exp/tanh differ in the last bits, so a few 1e-6 of the tensor's
// largest magnitude is the float32 agreement the golden README documents.
#[test]
fn cpu_f32_matches_pytorch_on_the_tiny_case() {
    check_case::<f32>("c1_tiny_f32", 2e-6, 4e-6);
}

#[test]
fn cpu_f32_matches_pytorch_with_two_stacked_layers() {
    check_case::<f32>("c3_two_layer_f32", 2e-6, 4e-6);
}

// The seed's size sums 448 rows per weight-gradient element and runs 28 recurrent steps, so
// rounding accumulates further than in the tiny cases; 1e-5 is still ~50x below any real bug
// (a dropped term shifts results by percent).
#[test]
fn cpu_f32_matches_pytorch_at_the_seed_size() {
    check_case::<f32>("c2_seed_f32", 4e-6, 1e-5);
}

// Computing in float64 from the float32 inputs should land within PyTorch float32's own error
// (6.5e-7) of its result.
#[test]
fn cpu_f64_matches_pytorch_f32_within_its_rounding() {
    check_case::<f64>("c3_two_layer_f32", 1e-6, 1e-6);
}
