// Global gradient norm and the clipping factor, as torch.nn.utils.clip_grad_norm_ computes them.
// CPU twin: src/cpu/grad_norm.rs.
//
//   norm  = sqrt(Σ_i g_i²)           over the whole gradient arena
//   scale = min(1, max_norm / (norm + 1e-6))
//
// `partial`: workgroup w sums the squares of chunk w (fixed strides, fixed tree) into
// partials[w]. `finish`: one workgroup adds the partials the same way and writes (norm, scale)
// to clip, which the optimizer kernels multiply every gradient by. Deterministic run to run.

struct Params {
    len: u32, chunk: u32, groups: u32, max_norm: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> clip: array<f32>; // [norm, scale]

const WG: u32 = 256u;
var<workgroup> red: array<f32, 256>;

fn reduce(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (li < half) {
            red[li] += red[li + half];
        }
        workgroupBarrier();
    }
    return red[0];
}

@compute @workgroup_size(256)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let start = wg.x * p.chunk;
    let end = min(start + p.chunk, p.len);
    var s = 0.0;
    for (var i = start + li; i < end; i += WG) {
        let g = grads[i];
        s += g * g;
    }
    let total = reduce(li, s);
    if (li == 0u) {
        partials[wg.x] = total;
    }
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var i = li; i < p.groups; i += WG) {
        s += partials[i];
    }
    let total = reduce(li, s);
    if (li == 0u) {
        let norm = sqrt(total);
        clip[0] = norm;
        clip[1] = min(1.0, p.max_norm / (norm + 1e-6));
    }
}
