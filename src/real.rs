//! The floating-point types the CPU path runs in: `f32` (the GPU's type) and `f64` (for
//! reference checks such as finite differences).

use std::fmt::{Debug, Display};

use crate::activations::{self, MulAdd};

/// A float the CPU reference can compute in.
///
/// Besides arithmetic it fixes how the LSTM's nonlinearities are evaluated: `f32` uses exactly the
/// formulas of `shaders/activations.wgsl` (see [`crate::activations`]), so the CPU and GPU
/// paths differ only by rounding; `f64` uses the standard library's functions to serve as the
/// high-precision reference.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The safetensors dtype of this type.
    const DTYPE: safetensors::Dtype;

    /// Logistic sigmoid `1 / (1 + e^-x)`, finite for every finite `x`, NaN for a NaN.
    fn sigmoid(self) -> Self;

    /// Hyperbolic tangent, finite and correctly signed for every finite `x` (named after the
    /// shaders' `tanh_stable`), NaN for a NaN.
    fn tanh_stable(self) -> Self;

    /// [`Real::sigmoid`] with the polynomial steps of `f32`'s activations rounded as `M` says
    /// ([`activations`]); the same as `sigmoid` for `f64`.
    #[inline(always)]
    fn sigmoid_with<M: MulAdd>(self) -> Self {
        self.sigmoid()
    }

    /// [`Real::tanh_stable`] with the polynomial steps rounded as `M` says (see
    /// [`Real::sigmoid_with`]).
    #[inline(always)]
    fn tanh_stable_with<M: MulAdd>(self) -> Self {
        self.tanh_stable()
    }

    /// Converts from `f64`, rounding to nearest.
    fn from_f64_lossy(v: f64) -> Self;

    /// Converts to `f64` exactly.
    fn to_f64_exact(self) -> f64;

    /// Decodes little-endian bytes of this type.
    fn from_le_bytes_slice(bytes: &[u8]) -> Vec<Self>;

    /// Appends the little-endian bytes of `values` to `out`.
    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>);
}

impl Real for f32 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F32;

    #[inline(always)]
    fn sigmoid(self) -> Self {
        activations::sigmoid(self)
    }

    #[inline(always)]
    fn tanh_stable(self) -> Self {
        activations::tanh_stable(self)
    }

    #[inline(always)]
    fn sigmoid_with<M: MulAdd>(self) -> Self {
        activations::sigmoid_with::<M>(self)
    }

    #[inline(always)]
    fn tanh_stable_with<M: MulAdd>(self) -> Self {
        activations::tanh_stable_with::<M>(self)
    }

    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }

    fn to_f64_exact(self) -> f64 {
        self as f64
    }

    fn from_le_bytes_slice(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Real for f64 {
    const DTYPE: safetensors::Dtype = safetensors::Dtype::F64;

    fn sigmoid(self) -> Self {
        // Written so that e^-|x| never overflows.
        let e = (-self.abs()).exp();
        if self >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        }
    }

    fn tanh_stable(self) -> Self {
        self.tanh()
    }

    fn from_f64_lossy(v: f64) -> Self {
        v
    }

    fn to_f64_exact(self) -> f64 {
        self
    }

    fn from_le_bytes_slice(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect()
    }

    fn extend_le_bytes(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}
