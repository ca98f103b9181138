//! Global gradient norm and clipping factor, twin of `shaders/grad_norm.wgsl`, as
//! `torch.nn.utils.clip_grad_norm_`:
//!
//! ```text
//! norm  = sqrt(Σ_i g_i²)                   over every gradient tensor together
//! scale = min(1, max_norm / (norm + 1e-6))
//! ```
//! A NaN norm gives a NaN scale (as `torch.clamp` does; `f32::min` would drop it), so NaN
//! gradients make NaN parameters; an infinite norm gives scale 0.

/// The L2 norm of all `tensors` together (summed in f64).
pub fn grad_norm<'a>(tensors: impl IntoIterator<Item = &'a [f32]>) -> f32 {
    let sum: f64 = tensors
        .into_iter()
        .flat_map(|t| t.iter())
        .map(|&g| (g as f64) * (g as f64))
        .sum();
    sum.sqrt() as f32
}

/// The factor every gradient is multiplied by: `min(1, max_norm / (norm + 1e-6))`, NaN when the
/// norm is NaN.
pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
    if norm.is_nan() {
        return norm;
    }
    (max_norm / (norm + 1e-6)).min(1.0)
}
