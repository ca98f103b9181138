// The product of two operands stored along k (A as rows, B as columns), with the rows of A
// shared through the subgroup: the input gradient dx = dgates · W_ih of backward. CPU twin:
// src/cpu/matmul.rs, on the same GemmSpec (src/gemm.rs).
//
//   C[m, n] = Σ_k A[m, k] · Bᵀ[n, k]   (+ bias[n])   (+ C[m, n])     m < M, n < N, k < K
//
// with A stored [M, K] and B stored transposed, [N, K]: both hold 4 consecutive k in a vec4.
//
// A workgroup is one subgroup of 8 invocations (the host picks this kernel only on adapters whose
// subgroups are exactly 8 wide: src/gpu/tuning.rs) and owns a tile of TM = 32 rows by TN = 32
// columns of C. For each 4 k, lane s loads rows m0 + s + 8q (q = 0 .. 3) of A (four vec4s) and
// every invocation takes all 32 rows from the lanes that loaded them (subgroupBroadcast); each
// invocation loads its own 4 columns n0 + 8j of B (four vec4s) and does the 32 x 4 x 4
// multiply-adds. A software adapter pays per load and per lane, while a broadcast is a register
// shuffle: matmul_blocked, the variant that serves this layout without subgroups, loads one
// float of A and of B per multiply-add and lane.
//
// Each element sums its k ascending, one fma per term, as matmul_blocked does, so C has its
// bits. The host picks this kernel only where every vec4 it loads lies in one row of A or B
// (offsets, leading dimensions and K multiples of 4: src/gpu/kernels/matmul.rs).

// The uniform `Params` and `store_element` come from matmul_output.wgsl, `shared_rows4` from
// subgroup_rows.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Four k of rows s + 8q (q = 0 .. 3, the components of acc[s]) against one column: rq holds row
// s + 8q's four k, col the column's. Called with constant s only, so `acc` is not moved to
// memory; it is taken up once for the four k (a software adapter keeps a lane's sums in memory).
fn rows4(
    acc: ptr<function, array<vec4<f32>, 8>>,
    s: u32,
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
    col: vec4<f32>,
) {
    var sum = fma(vec4<f32>(r0.x, r1.x, r2.x, r3.x), vec4<f32>(col.x), (*acc)[s]);
    sum = fma(vec4<f32>(r0.y, r1.y, r2.y, r3.y), vec4<f32>(col.y), sum);
    sum = fma(vec4<f32>(r0.z, r1.z, r2.z, r3.z), vec4<f32>(col.z), sum);
    (*acc)[s] = fma(vec4<f32>(r0.w, r1.w, r2.w, r3.w), vec4<f32>(col.w), sum);
}

// Four k of the tile's 32 rows against one column: qj[s] holds row s + 8j's four k.
fn column4(
    acc: ptr<function, array<vec4<f32>, 8>>,
    q0: array<vec4<f32>, 8>,
    q1: array<vec4<f32>, 8>,
    q2: array<vec4<f32>, 8>,
    q3: array<vec4<f32>, 8>,
    col: vec4<f32>,
) {
    rows4(acc, 0u, q0[0], q1[0], q2[0], q3[0], col);
    rows4(acc, 1u, q0[1], q1[1], q2[1], q3[1], col);
    rows4(acc, 2u, q0[2], q1[2], q2[2], q3[2], col);
    rows4(acc, 3u, q0[3], q1[3], q2[3], q3[3], col);
    rows4(acc, 4u, q0[4], q1[4], q2[4], q3[4], col);
    rows4(acc, 5u, q0[5], q1[5], q2[5], q3[5], col);
    rows4(acc, 6u, q0[6], q1[6], q2[6], q3[6], col);
    rows4(acc, 7u, q0[7], q1[7], q2[7], q3[7], col);
}

// Stores column n of the tile (rows m0 + s + 8q in acc[s][q]), where it lies inside C.
fn store_column(m0: u32, n: u32, acc: array<vec4<f32>, 8>) {
    if (n >= p.n) {
        return;
    }
    for (var s = 0u; s < 8u; s++) {
        for (var q = 0u; q < 4u; q++) {
            let m = m0 + s + 8u * q;
            if (m < p.m) {
                store_element(m, n, acc[s][q]);
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    p = params;
    // No early return: every lane's loads serve the whole subgroup, so all of them run the loop
    // (rows and columns past C's edge read the last ones inside and store nothing).
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN + lid.x;
    // vec4 indices of k = 0 in this lane's rows of A and this invocation's columns of B.
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    let a0 = p.a_off / 4u + min(m0 + lane, p.m - 1u) * lda4;
    let a1 = p.a_off / 4u + min(m0 + 8u + lane, p.m - 1u) * lda4;
    let a2 = p.a_off / 4u + min(m0 + 16u + lane, p.m - 1u) * lda4;
    let a3 = p.a_off / 4u + min(m0 + 24u + lane, p.m - 1u) * lda4;
    let b0 = p.b_off / 4u + min(n0, p.n - 1u) * ldb4;
    let b1 = p.b_off / 4u + min(n0 + 8u, p.n - 1u) * ldb4;
    let b2 = p.b_off / 4u + min(n0 + 16u, p.n - 1u) * ldb4;
    let b3 = p.b_off / 4u + min(n0 + 24u, p.n - 1u) * ldb4;
    // accj[s][q] = C[m0 + s + 8q, n0 + 8j].
    var acc0: array<vec4<f32>, 8>;
    var acc1: array<vec4<f32>, 8>;
    var acc2: array<vec4<f32>, 8>;
    var acc3: array<vec4<f32>, 8>;
    for (var k4 = 0u; k4 < p.k / 4u; k4++) {
        let q0 = shared_rows4(a[a0 + k4]);
        let q1 = shared_rows4(a[a1 + k4]);
        let q2 = shared_rows4(a[a2 + k4]);
        let q3 = shared_rows4(a[a3 + k4]);
        column4(&acc0, q0, q1, q2, q3, b[b0 + k4]);
        column4(&acc1, q0, q1, q2, q3, b[b1 + k4]);
        column4(&acc2, q0, q1, q2, q3, b[b2 + k4]);
        column4(&acc3, q0, q1, q2, q3, b[b3 + k4]);
    }
    store_column(m0, n0, acc0);
    store_column(m0, n0 + 8u, acc1);
    store_column(m0, n0 + 16u, acc2);
    store_column(m0, n0 + 24u, acc3);
}
