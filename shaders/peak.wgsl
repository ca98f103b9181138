// Peak probes: what the adapter does at best, to read the crate's kernels against
// (src/gpu/peak.rs). CPU twin: src/cpu/peak.rs.
//
//   fma_chains   every invocation g < n runs 8 independent vec4 chains a ← fma(a, M, 1 − M) for
//                `iters` steps and writes their sum: dst[g] = a0 + a1 + … + a7. One step is
//                8 · 4 fused multiply-adds = 64 FLOP, with no memory traffic in the loop.
//   copy         dst[i] = src[i] for i < n (vec4): 32 bytes read and written per element.
//   empty        nothing: what one dispatch costs by itself.
//
// The chains move towards 1 by a factor M per step, so they neither overflow nor settle within
// the step counts the probe uses, and a wrong step count changes the result.

struct Peak {
    n: u32,
    iters: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> peak: Peak;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

const M: f32 = 0.999;

// The start of chain j of invocation g: small values, different per chain and invocation.
fn chain_start(g: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(f32(g % 64u), f32(j), f32(g % 7u), 1.0) * (1.0 / 128.0);
}

// The element of a 1-D grid folded into y (src/gpu/kernels/mod.rs, grid_1d).
fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_X;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn fma_chains(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = element(gid, nwg);
    if (g >= peak.n) {
        return;
    }
    let m = vec4<f32>(M);
    let c = vec4<f32>(1.0 - M);
    var a0 = chain_start(g, 0u);
    var a1 = chain_start(g, 1u);
    var a2 = chain_start(g, 2u);
    var a3 = chain_start(g, 3u);
    var a4 = chain_start(g, 4u);
    var a5 = chain_start(g, 5u);
    var a6 = chain_start(g, 6u);
    var a7 = chain_start(g, 7u);
    // The step count, read once (a software adapter may load a uniform at every use).
    let iters = peak.iters;
    for (var k = 0u; k + 4u <= iters; k += 4u) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    for (var k = iters & ~3u; k < iters; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    dst[g] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn copy(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = element(gid, nwg);
    if (i < peak.n) {
        dst[i] = src[i];
    }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn empty() {
}
