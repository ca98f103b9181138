//! Stochastic gradient descent with optional momentum, twin of `shaders/sgd.wgsl`, as
//! `torch.optim.SGD` (no dampening, no Nesterov, no weight decay).
//!
//! ```text
//! g   = grad · grad_scale
//! buf = μ · buf + g            (buf starts at 0, so the first step is buf = g)
//! p  -= lr · buf
//! ```

/// Updates `params` in place from `grads` with momentum buffer `buf` (same length).
pub fn sgd(
    params: &mut [f32],
    grads: &[f32],
    buf: &mut [f32],
    lr: f32,
    momentum: f32,
    grad_scale: f32,
) {
    for ((p, &g), b) in params.iter_mut().zip(grads).zip(buf.iter_mut()) {
        *b = momentum * *b + g * grad_scale;
        *p -= lr * *b;
    }
}
