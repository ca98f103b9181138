// Peak probes: what the adapter does at best, to read the crate's kernels against
// (src/gpu/peak.rs). CPU twin: src/cpu/peak.rs.
//
//   fma_chains   every invocation g < n runs 8 independent vec4 chains a ← fma(a, M, 1 − M) for
//                `iters` steps and writes their sum: dst[g] = a0 + a1 + … + a7. One step is
//                8 · 4 fused multiply-adds = 64 FLOP, with no memory traffic in the loop.
//   copy         dst[i] = src[i] for i < n (vec4): 32 bytes read and written per element.
//   empty        nothing: what one dispatch costs by itself.
//   load_storage, load_texture
//                the source is a grid of vec4s `width` wide, element (x, y) at src[y * width + x]
//                in storage and texel (x, y) of `texels`; invocation g < n sums the `iters`
//                elements (x, y0 .. y0 + iters) with x = g % width, y0 = (g / width) · iters:
//                dst[g] = Σ_j src(x, y0 + j), in order. Neighbouring invocations read
//                neighbouring vec4s, as the step kernels read a row of weights.
//
// The chains move towards 1 by a factor M per step, so they neither overflow nor settle within
// the step counts the probe uses, and a wrong step count changes the result.

struct Peak {
    n: u32,
    iters: u32,
    width: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> peak: Peak;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(3) var texels: texture_storage_2d<rgba32float, read>;

const M: f32 = 0.999;

// The start of chain j of invocation g: small values, different per chain and invocation.
fn chain_start(g: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(f32(g % 64u), f32(j), f32(g % 7u), 1.0) * (1.0 / 128.0);
}

// The element of a 1-D grid folded into y (src/gpu/kernels/mod.rs, grid_1d).
fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_X;
}

// The 8 chains of one invocation, as values (so the loop holds them in registers).
struct Chains {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
    a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
}

// One step of every chain: 8 independent fused multiply-adds of vec4s.
fn step(x: Chains) -> Chains {
    let m = vec4<f32>(M);
    let c = vec4<f32>(1.0 - M);
    return Chains(
        fma(x.a0, m, c), fma(x.a1, m, c), fma(x.a2, m, c), fma(x.a3, m, c),
        fma(x.a4, m, c), fma(x.a5, m, c), fma(x.a6, m, c), fma(x.a7, m, c),
    );
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
    var x = Chains(
        chain_start(g, 0u), chain_start(g, 1u), chain_start(g, 2u), chain_start(g, 3u),
        chain_start(g, 4u), chain_start(g, 5u), chain_start(g, 6u), chain_start(g, 7u),
    );
    // The step count, read once (a software adapter may load a uniform at every use).
    let iters = peak.iters;
    // Four steps per trip, so the loop's own work is a small part of it.
    for (var k = 0u; k + 4u <= iters; k += 4u) {
        x = step(step(step(step(x))));
    }
    for (var k = iters & ~3u; k < iters; k++) {
        x = step(x);
    }
    dst[g] = x.a0 + x.a1 + x.a2 + x.a3 + x.a4 + x.a5 + x.a6 + x.a7;
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

// The first row and the column of invocation g in the load probes' source grid.
fn load_origin(g: u32) -> vec2<u32> {
    return vec2<u32>(g % peak.width, (g / peak.width) * peak.iters);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn load_storage(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = element(gid, nwg);
    if (g >= peak.n) {
        return;
    }
    let at = load_origin(g);
    let w = peak.width;
    let iters = peak.iters;
    var sum = vec4<f32>(0.0);
    for (var j = 0u; j < iters; j++) {
        sum += src[(at.y + j) * w + at.x];
    }
    dst[g] = sum;
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn load_texture(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let g = element(gid, nwg);
    if (g >= peak.n) {
        return;
    }
    let at = load_origin(g);
    let iters = peak.iters;
    var sum = vec4<f32>(0.0);
    for (var j = 0u; j < iters; j++) {
        sum += textureLoad(texels, vec2<u32>(at.x, at.y + j));
    }
    dst[g] = sum;
}
