//! The LSTM's nonlinearities in `f32`, twin of `shaders/activations.wgsl`.
//!
//! This module sits at the bottom of the crate and imports nothing from it: [`crate::real::Real`]
//! evaluates `f32` activations through it, and the CPU path reaches it as
//! [`crate::cpu::activations`] too.
//!
//! Both are built on exponentials of `-|x|`, which lie in `(0, 1]` and so can neither overflow
//! nor produce a NaN: a plain `1 / (1 + exp(-x))` overflows for `x < -88`, and WGSL's builtin
//! `tanh` is undefined past `|x| ≈ 88` (Metal's fast `tanh` returns NaN past `|x| ≈ 44`). `±∞`
//! saturate (`sigmoid` to 1 or `e^-87.34 ≈ 0`, `tanh` to ±1), and a NaN comes out NaN: Rust's
//! float arithmetic is IEEE's, every step of these formulas carries a NaN through, and each
//! comparison falls to the branch that carries it. The shader has to test for NaN explicitly
//! instead (`shaders/non_finite.wgsl` says why).
//!
//! ```text
//! sigmoid(x) = 1 / (1 + e)  for x >= 0,   e / (1 + e)  for x < 0,      e = e^-|x|
//! tanh(x)    = sign(x) · -m / (2 + m),                                  m = e^-2|x| - 1
//! ```
//!
//! Both exponentials share one branch-free range reduction and polynomial (within 2 ulp), so
//! that loops over gate vectors vectorise; `tanh` takes `e^y - 1` from them directly rather
//! than subtracting 1 from `e^y`, which keeps it accurate near 0 without a separate series.
//! The shader evaluates `tanh` with the same polynomial and `sigmoid` with WGSL's `exp`, the
//! GPU's own, also within a few ulp.
//!
//! Each polynomial step `a·b + c` is rounded as a [`MulAdd`] says: [`Fused`] (one rounding, a
//! single instruction on processors with FMA, and half the instructions of the whole
//! activation) or [`Separate`] (multiply, then add: processors without FMA, where a fused
//! multiply-add would be a slow library call). The CPU path's SIMD loops use `Fused` on AVX2,
//! AVX-512 and NEON, `Separate` elsewhere; the plain functions ([`sigmoid`], [`tanh_stable`],
//! [`exp_nonpositive`], [`expm1_nonpositive`]) are the `Separate` ones. Both are within the same
//! few ulp.

/// How `a·b + c` is rounded in the activations' polynomials (see the module docs).
pub trait MulAdd {
    /// `a·b + c`.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a·b + c` with one rounding: `f32::mul_add`, one instruction where the processor has FMA.
#[derive(Debug, Clone, Copy)]
pub struct Fused;

/// `a·b + c` with two roundings, the product's and the sum's.
#[derive(Debug, Clone, Copy)]
pub struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Arguments of the exponentials are clamped to `[-EXP_FLOOR, 0]`: `e^-87.34 ≈ 1.2e-38` is the
/// smallest normal float.
pub const EXP_FLOOR: f32 = 87.336_55;

/// `x = n·ln2 + r` with `n` an integer and `|r| <= ln2/2`, for `x` clamped to
/// `[-EXP_FLOOR, 0]`: returns `(r, 2^n)`.
#[inline(always)]
fn reduce<M: MulAdd>(x: f32) -> (f32, f32) {
    // Comparison rather than `max`, so that a NaN propagates instead of being clamped away.
    let x = if x < -EXP_FLOOR { -EXP_FLOOR } else { x };
    // Round x·log2(e) to the nearest integer n by adding 1.5·2^23: the sum's low mantissa bits
    // then hold n, so neither a libm call nor a float-to-int conversion is needed and the loop
    // vectorises.
    const SHIFT: f32 = 12_582_912.0;
    let shifted = M::mul_add(x, std::f32::consts::LOG2_E, SHIFT);
    let n = shifted - SHIFT;
    // ln2 split in two parts, the first with few enough bits that n·ln2_hi is exact.
    let r = M::mul_add(n, -0.693_359_4, x);
    let r = M::mul_add(n, 2.121_944_4e-4, r);
    // n is an integer in [-126, 0]: 2^n has exponent bits n + 127.
    let n_int = shifted.to_bits() as i32 - SHIFT.to_bits() as i32;
    let two_n = f32::from_bits(((n_int + 127) as u32) << 23);
    (r, two_n)
}

/// `e^r - 1 = r + r²·q(r)` for `|r| <= ln2/2`, `q` the minimax polynomial of degree 4 for the
/// relative error of `e^r` (0.06 ulp in exact arithmetic, coefficients rounded to `f32`).
#[inline(always)]
fn expm1_reduced<M: MulAdd>(r: f32) -> f32 {
    let q = 1.381_461_3e-3_f32;
    let q = M::mul_add(q, r, 8.368_71e-3);
    let q = M::mul_add(q, r, 4.166_839e-2);
    let q = M::mul_add(q, r, 1.666_652_1e-1);
    let q = M::mul_add(q, r, 0.499_999_94);
    M::mul_add(q, r * r, r)
}

/// `e^x` for `x <= 0` (the only range the activations use), within 2 ulp of the exact value;
/// returns `e^-EXP_FLOOR` for anything below.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    exp_nonpositive_with::<Separate>(x)
}

/// [`exp_nonpositive`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn exp_nonpositive_with<M: MulAdd>(x: f32) -> f32 {
    let (r, two_n) = reduce::<M>(x);
    // e^x = 2^n·(e^r - 1) + 2^n, the product exact: one rounding.
    M::mul_add(two_n, expm1_reduced::<M>(r), two_n)
}

/// `e^x - 1` for `x <= 0`, within 2 ulp of the exact value (also as `x → 0`, where
/// `exp_nonpositive(x) - 1` would lose every digit); returns `e^-EXP_FLOOR - 1 = -1` for
/// anything below.
#[inline(always)]
pub fn expm1_nonpositive(x: f32) -> f32 {
    expm1_nonpositive_with::<Separate>(x)
}

/// [`expm1_nonpositive`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn expm1_nonpositive_with<M: MulAdd>(x: f32) -> f32 {
    let (r, two_n) = reduce::<M>(x);
    // e^x - 1 = 2^n·(e^r - 1) + (2^n - 1): exact products by a power of two, and for n = 0 (the
    // range where cancellation would hurt) the sum is e^r - 1 itself.
    M::mul_add(two_n, expm1_reduced::<M>(r), two_n - 1.0)
}

/// Logistic sigmoid: `1 / (1 + e^-x)` for `x >= 0`, `e^x / (1 + e^x)` for `x < 0`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_with::<Separate>(x)
}

/// [`sigmoid`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn sigmoid_with<M: MulAdd>(x: f32) -> f32 {
    let e = exp_nonpositive_with::<M>(-x.abs());
    let s = 1.0 / (1.0 + e);
    if x >= 0.0 { s } else { e * s }
}

/// Hyperbolic tangent, named as in the shader: `sign(x) · -m / (1 + e)` with `e = e^-2|x|` and
/// `m = e - 1` ([`expm1_nonpositive`]), both from one range reduction. Taking `m` whole keeps
/// the relative accuracy as `x → 0`, where the textbook `(1 - e) / (1 + e)` cancels; taking
/// the denominator from `e` rather than as `2 + m` keeps `m`'s rounding from counting twice as
/// `|x|` grows.
#[inline(always)]
pub fn tanh_stable(x: f32) -> f32 {
    tanh_stable_with::<Separate>(x)
}

/// [`tanh_stable`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn tanh_stable_with<M: MulAdd>(x: f32) -> f32 {
    let (r, two_n) = reduce::<M>(-2.0 * x.abs());
    let p = expm1_reduced::<M>(r);
    let m = M::mul_add(two_n, p, two_n - 1.0);
    let e = M::mul_add(two_n, p, two_n);
    (-m / (1.0 + e)).copysign(x)
}
