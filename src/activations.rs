//! The LSTM's nonlinearities in `f32`, twin of `shaders/activations.wgsl`.
//!
//! This module sits at the bottom of the crate and imports nothing from it: [`crate::real::Real`]
//! evaluates `f32` activations through it, and the CPU path reaches it as
//! [`crate::cpu::activations`] too.
//!
//! Both are built on `e^-|x|`, which lies in `(0, 1]` and so can neither overflow nor produce a
//! NaN: a plain `1 / (1 + exp(-x))` overflows for `x < -88`, and WGSL's builtin `tanh` is
//! undefined past `|x| ≈ 88` (Metal's fast `tanh` returns NaN past `|x| ≈ 44`). `±∞` saturate
//! (`sigmoid` to 1 or `e^-87.34 ≈ 0`, `tanh` to ±1), and a NaN comes out NaN: Rust's float
//! arithmetic is IEEE's, every step of these formulas carries a NaN through, and each comparison
//! falls to the branch that carries it. The shader has to test for NaN explicitly instead
//! (`shaders/non_finite.wgsl` says why).
//!
//! `exp` is a branch-free polynomial (Cephes' `expf`, within 2 ulp) so that loops over gate
//! vectors vectorise; WGSL's `exp` is the GPU's own, also within a few ulp.
//!
//! Each polynomial step `a·b + c` is rounded as a [`MulAdd`] says: [`Fused`] (one rounding, a
//! single instruction on processors with FMA, and half the instructions of the whole
//! activation) or [`Separate`] (multiply, then add: processors without FMA, where a fused
//! multiply-add would be a slow library call). The CPU path's SIMD loops use `Fused` on AVX2
//! and AVX-512, `Separate` elsewhere; the plain functions ([`sigmoid`], [`tanh_stable`],
//! [`exp_nonpositive`]) are the `Separate` ones. Both are within the same few ulp.

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

/// `e^x` for `x <= 0` (the only range the activations use), within 2 ulp of the exact value;
/// returns `e^-87.34 ≈ 1.2e-38` (the smallest normal float) for anything below.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    exp_nonpositive_with::<Separate>(x)
}

/// [`exp_nonpositive`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn exp_nonpositive_with<M: MulAdd>(x: f32) -> f32 {
    // x = n·ln2 + r with |r| <= ln2/2, then e^x = 2^n · e^r; ln2 split in two parts for exactness.
    // Comparison rather than `max`, so that a NaN propagates instead of being clamped away.
    let x = if x < -87.336_55 { -87.336_55 } else { x };
    // Round x·log2(e) to the nearest integer n by adding 1.5·2^23: the sum's low mantissa bits
    // then hold n, so neither a libm call nor a float-to-int conversion is needed and the loop
    // vectorises.
    const SHIFT: f32 = 12_582_912.0;
    let shifted = M::mul_add(x, std::f32::consts::LOG2_E, SHIFT);
    let n = shifted - SHIFT;
    let r = M::mul_add(n, -0.693_359_4, x);
    let r = M::mul_add(n, 2.121_944_4e-4, r);
    let p = 1.987_569_1e-4_f32;
    let p = M::mul_add(p, r, 1.398_199_9e-3);
    let p = M::mul_add(p, r, 8.333_452e-3);
    let p = M::mul_add(p, r, 4.166_579_6e-2);
    let p = M::mul_add(p, r, 1.666_666_5e-1);
    let p = M::mul_add(p, r, 0.5);
    let er = M::mul_add(p, r * r, r) + 1.0;
    // n is an integer in [-126, 0]: 2^n has exponent bits n + 127.
    let n_int = shifted.to_bits() as i32 - SHIFT.to_bits() as i32;
    let two_n = f32::from_bits(((n_int + 127) as u32) << 23);
    er * two_n
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

/// Below this magnitude [`tanh_stable`] uses its odd Taylor series, which there is more accurate
/// than `(1 - e) / (1 + e)` (that form cancels catastrophically as `x → 0`).
pub const TANH_SERIES_BELOW: f32 = 0.2;

/// Hyperbolic tangent, named as in the shader: `sign(x) · (1 - e) / (1 + e)` with
/// `e = e^-2|x|`, and the series `x - x³/3 + 2x⁵/15 - 17x⁷/315` for `|x| < 0.2` (truncation
/// error below `6e-8` relative).
#[inline(always)]
pub fn tanh_stable(x: f32) -> f32 {
    tanh_stable_with::<Separate>(x)
}

/// [`tanh_stable`] with its polynomial steps rounded as `M` says.
#[inline(always)]
pub fn tanh_stable_with<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    let e = exp_nonpositive_with::<M>(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    // x · (1 + x2·(-1/3 + x2·(2/15 + x2·(-17/315)))), by Horner's rule.
    let p = M::mul_add(x2, -17.0 / 315.0, 2.0 / 15.0);
    let p = M::mul_add(x2, p, -1.0 / 3.0);
    let p = M::mul_add(x2, p, 1.0);
    let series = x * p;
    if a < TANH_SERIES_BELOW {
        series
    } else {
        t.copysign(x)
    }
}
