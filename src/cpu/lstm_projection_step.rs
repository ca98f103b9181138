//! The projection of one forward timestep of a projected layer (PyTorch's `proj_size`), twin of
//! `shaders/lstm_projection_step.wgsl`:
//!
//! ```text
//! h = r · W_hrᵀ        r = o ⊙ tanh(c) [B, H], W_hr [O, H], h [B, O]
//! ```
//!
//! The kernel runs it per direction on the rows still running; [`crate::cpu::general_lstm`]
//! does the same around its steps.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use crate::real::Real;

/// Writes `h` `[B, O]` `= r · W_hrᵀ` for `r` `[B, H]` and `w_hr` `[O, H]` (PyTorch layout).
pub fn lstm_projection_step<F: Real>(
    r: ArrayView2<'_, F>,
    w_hr: ArrayView2<'_, F>,
    mut h: ArrayViewMut2<'_, F>,
) {
    general_mat_mul(F::one(), &r, &w_hr.t(), F::zero(), &mut h);
}
