// Global gradient norm and the clipping factor, as torch.nn.utils.clip_grad_norm_ computes them.
// CPU twin: src/cpu/grad_norm.rs.
//
//   norm  = sqrt(Σ_i g_i²)           over the whole gradient arena
//   scale = min(1, max_norm / (norm + 1e-6))
//
// A NaN norm gives a NaN scale (explicitly: `min` may drop a NaN), so NaN gradients make NaN
// parameters as in PyTorch; an infinite norm gives scale 0.
//
// `partial`: workgroup w sums the squares of chunk w (fixed strides, then workgroup_sum.wgsl's
// fixed tree) into partials[w]; the host picks the number of chunks from the length (a few for a
// small model, at most 256). `finish`: one workgroup adds the partials the same way and writes
// (norm, scale) to clip, which the optimizer kernels multiply every gradient by. Deterministic run
// to run.

struct Params {
    len: u32, chunk: u32, groups: u32, max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>; // [norm, scale]

alias Sum = f32;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wg.x * p.chunk;
    let end = min(start + p.chunk, p.len);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG_X) {
        let g = grads[i];
        s += g * g;
    }
    let total = workgroup_sum(li, s);
    if (li == 0u) {
        partials[wg.x] = total;
    }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn finish(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.groups; i += WG_X) {
        s += partials[i];
    }
    let total = workgroup_sum(li, s);
    if (li == 0u) {
        let norm = sqrt(total);
        clip[0] = norm;
        clip[1] = select(min(1.0, p.max_norm / (norm + 1e-6)), nan_from(norm), is_nan(norm));
    }
}
