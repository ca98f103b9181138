// The LSTM's nonlinearities; CPU twin: src/activations.rs. Needs non_finite.wgsl before it.
//
// Both are built on exponentials of -|x|, which lie in (0, 1] and so can neither overflow nor
// give a NaN: 1 / (1 + exp(-x)) overflows for x < -88, and the builtin tanh is undefined past
// |x| ≈ 88 in WGSL (Metal's fast tanh returns NaN past |x| ≈ 44). Their arguments are clamped
// to [-EXP_FLOOR, 0] (e^-87.34 is the smallest normal f32), so ±∞ saturate to 0, 1 or ±1
// without relying on exp(-∞); a NaN is passed through explicitly (see non_finite.wgsl). This
// file is prepended to the shaders that use it.

const EXP_FLOOR: f32 = 87.33655;

fn sigmoid(x: f32) -> f32 {
    let e = exp(-min(abs(x), EXP_FLOOR));
    let s = 1.0 / (1.0 + e);
    return select(select(e * s, s, x >= 0.0), x, is_nan(x));
}

// tanh(x) = sign(x) · -m / (1 + e), e = e^-2|x| and m = e - 1 from one range reduction:
// -2|x| = n·ln2 + r with |r| <= ln2/2, e^r - 1 = r + r²·q(r) (q: degree-4 minimax), then
// m = 2^n·(e^r - 1) + (2^n - 1) and e = 2^n·(e^r - 1) + 2^n. Taking m whole keeps the relative
// accuracy as x → 0, where (1 - e) / (1 + e) would cancel; the CPU twin runs the same steps.
fn tanh_stable(x: f32) -> f32 {
    let y = -min(2.0 * abs(x), EXP_FLOOR);
    let n = round(y * 1.442695);
    let r = fma(n, 2.1219444e-4, fma(n, -0.6933594, y));
    var q = 1.3814613e-3;
    q = fma(q, r, 8.36871e-3);
    q = fma(q, r, 4.166839e-2);
    q = fma(q, r, 1.6666521e-1);
    q = fma(q, r, 0.49999994);
    let p = fma(q, r * r, r);
    let two_n = ldexp(1.0, i32(n));
    let m = fma(two_n, p, two_n - 1.0);
    let e = fma(two_n, p, two_n);
    let t = abs(m) / (1.0 + e);
    // copysign(t, x), on the bits so that tanh(-0) = -0 as on the CPU.
    let signed = bitcast<f32>(bitcast<u32>(t) | (bitcast<u32>(x) & 0x80000000u));
    return select(signed, x, is_nan(x));
}
