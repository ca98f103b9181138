// Inverted dropout of a flat tensor. CPU twin: src/cpu/dropout.rs.
//
//   out[out_off + i] = input[in_off + i] · scale   if bits(key, i) ≥ threshold
//                    = 0                           otherwise                       i < len
//   bits(key, i) = mix(mix(i ^ key0) ^ key1)       (mix: the integer hash below)
//
// A counter-based generator: element i's draw depends on the key and i alone, so the CPU twin
// and every invocation order give the same mask, and backward (the same operation on the
// gradient) recomputes it. The LSTM drops the output of each layer below the top one on its way
// up in a training pass, and the gradient on its way down; the host derives the key from the
// seed, the pass and the layer (`Dropout::key`).

struct Params {
    len: u32, in_off: u32, out_off: u32, threshold: u32,
    key0: u32, key1: u32, scale: f32, pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// One round of the integer hash (C. Wellons' "lowbias32"): a bijection of u32.
fn mix(x0: u32) -> u32 {
    var x = x0;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    return x ^ (x >> 16u);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // A grid longer than one dimension continues in y (`grid_1d`).
    let i = gid.y * groups.x * WG_X + gid.x;
    if (i >= p.len) {
        return;
    }
    let keep = mix(mix(i ^ p.key0) ^ p.key1) >= p.threshold;
    out[p.out_off + i] = select(0.0, input[p.in_off + i] * p.scale, keep);
}
