// The LSTM's nonlinearities; CPU twin: src/activations.rs.
//
// Both are built on e^-|x|, which lies in (0, 1] and so can neither overflow nor give a NaN:
// 1 / (1 + exp(-x)) overflows for x < -88, and the builtin tanh is undefined past |x| ≈ 88 in
// WGSL (Metal's fast tanh returns NaN past |x| ≈ 44). This file is prepended to the shaders that
// use it.

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let s = 1.0 / (1.0 + e);
    return select(e * s, s, x >= 0.0);
}

// Below this magnitude tanh uses its odd Taylor series, where (1 - e) / (1 + e) would cancel.
const TANH_SERIES_BELOW: f32 = 0.2;

fn tanh_stable(x: f32) -> f32 {
    let a = abs(x);
    let e = exp(-2.0 * a);
    let t = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    let series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    return select(select(-t, t, x >= 0.0), series, a < TANH_SERIES_BELOW);
}
