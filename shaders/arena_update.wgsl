// What the optimizer kernels (adam.wgsl, sgd.wgsl) share: one invocation per element of the
// parameter arena, reading the gradient scaled by the clipping factor that grad_norm.wgsl wrote
// (1 without clipping). Prepended to both; each declares its own uniform `p` (with `len` first)
// and its moment buffers from binding 4 on.

@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read> clip: array<f32>; // [norm, scale]

// This invocation's arena element: the grid continues in y past the per-dimension limit.
fn arena_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WG_X;
}

// g = grad · clip_scale
fn clipped_grad(i: u32) -> f32 {
    return grads[i] * clip[1];
}
