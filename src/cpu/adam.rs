//! Adam, twin of `shaders/adam.wgsl`: one step on one tensor, exactly as `torch.optim.Adam`
//! (no weight decay, no amsgrad).
//!
//! ```text
//! g  = grad · grad_scale                    (the clipping factor, 1 without clipping)
//! m += (1 - β1) (g - m)
//! v  = β2 v + (1 - β2) g²
//! p -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)
//! ```

/// Adam's hyper-parameters; `Default` is PyTorch's (lr 1e-3, β 0.9/0.999, ε 1e-8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// `(1 - β1^t, sqrt(1 - β2^t))` for step `t` (1-based), computed in f64 as PyTorch does on
    /// the host.
    pub fn bias_corrections(&self, step: u64) -> (f32, f32) {
        let t = step.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - (self.beta1 as f64).powi(t);
        let bc2 = 1.0 - (self.beta2 as f64).powi(t);
        (bc1 as f32, bc2.sqrt() as f32)
    }
}

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
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let g = g * grad_scale;
        *m += (1.0 - config.beta1) * (g - *m);
        *v = config.beta2 * *v + (1.0 - config.beta2) * g * g;
        let denom = v.sqrt() / bc2_sqrt + config.eps;
        *p -= step_size * (*m / denom);
    }
}
