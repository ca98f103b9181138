// One step of stochastic gradient descent with optional momentum over the whole parameter arena,
// as torch.optim.SGD (no dampening, no Nesterov, no weight decay). CPU twin: src/cpu/sgd.rs.
//
//   g    = grad · clip_scale
//   buf  = μ · buf + g                         (buf starts at 0, so the first step is buf = g)
//   p   -= lr · buf
//
// With μ = 0 this is plain gradient descent. The arena bindings, arena_index and clipped_grad
// come from arena_update.wgsl.

struct Params {
    len: u32, lr: f32, momentum: f32, pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = arena_index(gid, groups);
    if (i >= p.len) {
        return;
    }
    let g = clipped_grad(i);
    let b = p.momentum * buf[i] + g;
    buf[i] = b;
    params[i] -= p.lr * b;
}
