//! Adam and AdamW, twin of `shaders/adam.wgsl`: one step on one tensor, exactly as
//! `torch.optim.Adam`, or `torch.optim.AdamW` when `weight_decay = λ > 0` (no amsgrad).
//!
//! ```text
//! g  = grad · grad_scale                    (the clipping factor, 1 without clipping)
//! p ·= 1 − lr·λ                             (AdamW's decoupled decay; the factor is 1 for Adam)
//! m += (1 - β1) (g - m)
//! v  = β2 v + (1 - β2) g²
//! p -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)
//! ```
use crate::optim::AdamConfig;

/// Updates `params` in place from `grads`, with moments `m` and `v` (same length), at step
/// `step` (1-based).
pub fn adam(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    step: u64,
    grad_scale: f32,
) {
    let (bc1, bc2_sqrt) = config.bias_corrections(step);
    let step_size = config.lr / bc1;
    let decay = config.decay_factor();
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let g = g * grad_scale;
        *p *= decay;
        *m += (1.0 - config.beta1) * (g - *m);
        *v = config.beta2 * *v + (1.0 - config.beta2) * g * g;
        let denom = v.sqrt() / bc2_sqrt + config.eps;
        *p -= step_size * (*m / denom);
    }
}
