// The LSTM's nonlinearities; CPU twin: src/activations.rs. Needs non_finite.wgsl before it.
//
// Both are built on e^-|x|, which lies in (0, 1] and so can neither overflow nor give a NaN:
// 1 / (1 + exp(-x)) overflows for x < -88, and the builtin tanh is undefined past |x| ≈ 88 in
// WGSL (Metal's fast tanh returns NaN past |x| ≈ 44). The argument of exp is clamped to
// [-EXP_FLOOR, 0] (e^-87.34 is the smallest normal f32), so ±∞ saturate to 0, 1 or ±1 without
// relying on exp(-∞); a NaN is passed through explicitly (see non_finite.wgsl). This file is
// prepended to the shaders that use it.

const EXP_FLOOR: f32 = 87.33655;

fn sigmoid(x: f32) -> f32 {
    let e = exp(-min(abs(x), EXP_FLOOR));
    let s = 1.0 / (1.0 + e);
    return select(select(e * s, s, x >= 0.0), x, is_nan(x));
}

// Below this magnitude tanh uses its odd Taylor series, where (1 - e) / (1 + e) would cancel.
const TANH_SERIES_BELOW: f32 = 0.2;

fn tanh_stable(x: f32) -> f32 {
    let a = abs(x);
    let e = exp(-min(2.0 * a, EXP_FLOOR));
    let t = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    let series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    return select(select(select(-t, t, x >= 0.0), series, a < TANH_SERIES_BELOW), x, is_nan(x));
}
