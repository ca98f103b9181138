// What the GEMM kernels (matmul.wgsl, matmul_blocked_vec4.wgsl) share: their uniform, where a
// workgroup's rows start and how an element of the product lands in C. Host twin: `Params` in
// src/gpu/kernels/matmul.rs. This file is prepended to both; each declares the bindings `bias`
// and `c` it uses.
//
//   C[m, n] = product (+ bias[n] with BIAS) (+ C[m, n] with ACCUMULATE)

struct Params {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, lda: u32, a_group: u32, a_group_stride: u32,
    b_off: u32, ldb: u32, b_group: u32, b_group_stride: u32,
    c_off: u32, ldc: u32, bias_off: u32, pad: u32,
}

// The uniform, copied once per invocation: some adapters (a software rasterizer) load a uniform
// afresh at every use, and the kernels' loops use it at every k.
var<private> p: Params;

// The first row of C that workgroup `wg` of a grid of `groups` computes: row tiles of TM rows
// run along y and, past the per-dimension limit, continue in z (`Matmul::grid` in
// src/gpu/kernels/matmul.rs).
fn first_row(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wg.y + wg.z * groups.y) * TM;
}

// Stores element (m, n) of C, m < M and n < N, whose product over k is `v`.
fn store_element(m: u32, n: u32, v: f32) {
    var out = v;
    if ((p.flags & BIAS) != 0u) {
        out += bias[p.bias_off + n];
    }
    let at = p.c_off + m * p.ldc + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        out += c[at];
    }
    c[at] = out;
}
