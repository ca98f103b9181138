//! Global gradient norm and clipping factor, twin of `shaders/grad_norm.wgsl`, as
//! `torch.nn.utils.clip_grad_norm_`:
//!
//! ```text
//! norm  = sqrt(Σ_i g_i²)                   over every gradient tensor together
//! scale = min(1, max_norm / (norm + 1e-6))
//! ```

/// The L2 norm of all `tensors` together (summed in f64).
pub fn grad_norm<'a>(tensors: impl IntoIterator<Item = &'a [f32]>) -> f32 {
    let sum: f64 = tensors
        .into_iter()
        .flat_map(|t| t.iter())
        .map(|&g| (g as f64) * (g as f64))
        .sum();
    sum.sqrt() as f32
}

/// The factor every gradient is multiplied by: `min(1, max_norm / (norm + 1e-6))`.
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    (max_norm / (norm + 1e-6)).min(1.0)
}
