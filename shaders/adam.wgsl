// One Adam step over the whole parameter arena, exactly as torch.optim.Adam (or, with a weight
// decay λ > 0, torch.optim.AdamW; no amsgrad) updates each element. CPU twin: src/cpu/adam.rs.
//
//   g   = grad · clip_scale
//   p  ·= 1 - lr·λ                            (decoupled decay; the host passes the factor, 1 for Adam)
//   m  += (1 - β1) (g - m)                    (torch: exp_avg.lerp_(grad, 1 - β1))
//   v   = β2 v + (1 - β2) g²
//   p  -= (lr / (1 - β1^t)) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)
//
// The host passes the bias corrections for step t and the decay factor. The arena bindings, arena_index and
// clipped_grad come from arena_update.wgsl.

struct Params {
    len: u32, lr: f32, beta1: f32, beta2: f32,
    eps: f32, bias_correction1: f32, bias_correction2_sqrt: f32, decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = arena_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let g = clipped_grad(i);
    let m1 = m[i] + (1.0 - p.beta1) * (g - m[i]);
    let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = m1;
    v[i] = v1;
    let denom = sqrt(v1) / p.bias_correction2_sqrt + p.eps;
    let decayed = params[i] * p.decay;
    params[i] = decayed - (p.lr / p.bias_correction1) * (m1 / denom);
}
