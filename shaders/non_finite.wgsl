// NaN and infinity, tested on the bits. CPU twin: Rust's f32::is_nan / f32::is_finite.
//
// WGSL lets an implementation assume that no NaN or infinity occurs at run time, so a compiler
// may fold `x != x` to false, and `min`, `max`, `exp` or a comparison-driven `select` may lose a
// NaN. Integer tests on the bit pattern cannot be folded that way: the kernels use them wherever
// a NaN could otherwise vanish, so that a NaN in reaches every output that depends on it, on
// every platform, exactly as on the CPU. This file is prepended to the shaders that use it.

const F32_MAGNITUDE: u32 = 0x7fffffffu;
const F32_INFINITY: u32 = 0x7f800000u;
const F32_QUIET_NAN: u32 = 0x7fc00000u;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & F32_MAGNITUDE) > F32_INFINITY;
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & F32_MAGNITUDE) < F32_INFINITY;
}

// A quiet NaN built at run time from the bits of `x` (whatever `x` is): WGSL has no NaN literal,
// and a NaN constant would be folded at shader creation.
fn nan_from(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) | F32_QUIET_NAN);
}
