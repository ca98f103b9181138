//! The gradient on `h` of one backward timestep of a projected layer, twin of
//! `shaders/lstm_backward_hidden_step.wgsl`:
//!
//! ```text
//! dh_t = dy_t + (t = the row's last step ? dh_n : dgates_next · W_hh)      [B, O]
//! ```
//!
//! `W_hh` is `[4H, O]`: in a projected layer the gates read the `O` features of `h`. The step's
//! gate gradients then need `dr = dh_t · W_hr` ([`crate::cpu::lstm_backward_step`] with `dr`
//! in place of `dh`), and `dW_hr = Σ_t dh_tᵀ · r_t`. The kernel runs it per direction on the rows
//! still running; [`crate::cpu::general_lstm`] does the same around its steps.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

use super::lstm_backward_step::FromLater;
use crate::real::Real;

/// Writes `dh` `[B, O]` `= dy_t + ` the gradient from later in time: `dh_n` at the last step,
/// else `dgates_next` `[B, 4H]` sent back through `w_hh` `[4H, O]`.
pub fn lstm_backward_hidden_step<F: Real>(
    dy_t: ArrayView2<'_, F>,
    from_later: FromLater<'_, F>,
    mut dh: ArrayViewMut2<'_, F>,
) {
    match from_later {
        FromLater::Last { dh_n } => dh.assign(&dh_n),
        FromLater::Step { dgates_next, w_hh } => {
            general_mat_mul(F::one(), &dgates_next, &w_hh, F::zero(), &mut dh)
        }
    }
    dh += &dy_t;
}
