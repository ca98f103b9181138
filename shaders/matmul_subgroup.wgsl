// The weight gradients' product of matmul_blocked_vec4.wgsl, with the rows of A shared through
// the subgroup instead of loaded by every invocation. CPU twin: src/cpu/matmul.rs, on the same
// GemmSpec (src/gemm.rs).
//
//   C[m, n] = Σ_k Aᵀ[m, k] · B[k, n]   (+ bias[n])   (+ C[m, n])     m < M, n < N, k < K
//
// with A stored [K, M] (transposed) and B stored [K, N], as in matmul_blocked_vec4.wgsl.
//
// A workgroup is one subgroup of 8 invocations (the host picks this kernel only on adapters whose
// subgroups are exactly 8 wide: src/gpu/tuning.rs) and owns a tile of TM = 32 (or 64) rows by
// TN = 64 columns of C. At each k, lane s of the subgroup loads rows m0 + 4s .. m0 + 4s + 3 of
// A's stored row k (one vec4; with 64 rows also m0 + 32 + 4s .. m0 + 32 + 4s + 3), and every
// invocation takes all the rows from the lanes that loaded them (subgroupBroadcast); each
// invocation loads its own 8 columns of B (two vec4) and does the TM x 8 multiply-adds. A
// software adapter pays per load and per lane, while a broadcast is a register shuffle:
// matmul_blocked_vec4 loads 4 vec4s per invocation and k for 64 products, this kernel 3 vec4s
// for 256 (4 for 512 with 64 rows, where B is read by half as many tiles). Each half of the
// columns of each group of 32 rows keeps its sums in an array of 32 vec4s: one array of 64 would
// be compiled to memory. Even so a lane's sums are more vector registers than a processor has, so
// on a software adapter they live in memory: the loop takes each up once per four k
// (`group_products4`), where one per k would load and store it at every multiply-add.
//
// The multiply-adds are those of matmul_blocked_vec4, in the same order (k ascending, one fma
// per term), so C has the same bits. The host picks this kernel only where matmul_blocked_vec4
// could run (every row of 4 aligned: src/gpu/kernels/matmul.rs), so 4 rows of A lie in one vec4
// and 4 columns of C are all inside it or all outside.

// The uniform `Params` and `store_element` come from matmul_output.wgsl, `shared_rows4` from
// subgroup_rows.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

// Groups of 32 rows in the tile.
const GROUPS: u32 = TM / 32u;

// acc[4i + e] += rows[e] · col: rows m0 + 4i + e of the tile against 4 columns. Called with
// constant i only, so `acc` is not moved to memory.
fn quad(acc: ptr<function, array<vec4<f32>, 32>>, i: u32, rows: vec4<f32>, col: vec4<f32>) {
    (*acc)[4u * i] = fma(vec4<f32>(rows.x), col, (*acc)[4u * i]);
    (*acc)[4u * i + 1u] = fma(vec4<f32>(rows.y), col, (*acc)[4u * i + 1u]);
    (*acc)[4u * i + 2u] = fma(vec4<f32>(rows.z), col, (*acc)[4u * i + 2u]);
    (*acc)[4u * i + 3u] = fma(vec4<f32>(rows.w), col, (*acc)[4u * i + 3u]);
}

// One k of a group of 32 rows of the tile: the 8 lanes' 4 rows of A each (this lane's are
// `mine`) against this invocation's 8 columns of B (`lo`, `hi`), into `acc` and `acc_hi`.
fn group_products(
    acc: ptr<function, array<vec4<f32>, 32>>,
    acc_hi: ptr<function, array<vec4<f32>, 32>>,
    mine: vec4<f32>,
    lo: vec4<f32>,
    hi: vec4<f32>,
) {
    let r = shared_rows4(mine);
    quad(acc, 0u, r[0], lo); quad(acc_hi, 0u, r[0], hi);
    quad(acc, 1u, r[1], lo); quad(acc_hi, 1u, r[1], hi);
    quad(acc, 2u, r[2], lo); quad(acc_hi, 2u, r[2], hi);
    quad(acc, 3u, r[3], lo); quad(acc_hi, 3u, r[3], hi);
    quad(acc, 4u, r[4], lo); quad(acc_hi, 4u, r[4], hi);
    quad(acc, 5u, r[5], lo); quad(acc_hi, 5u, r[5], hi);
    quad(acc, 6u, r[6], lo); quad(acc_hi, 6u, r[6], hi);
    quad(acc, 7u, r[7], lo); quad(acc_hi, 7u, r[7], hi);
}

// acc[4i + e] += rows_j[e] · col[j] for j = 0 .. 3 in turn (four k of `quad`, k ascending), each
// accumulator taken up once for the four: a lane's sums are more vector registers than a
// processor has on a software adapter, so they live in memory and each use loads and stores one.
fn quad4(
    acc: ptr<function, array<vec4<f32>, 32>>,
    i: u32,
    rows0: vec4<f32>,
    rows1: vec4<f32>,
    rows2: vec4<f32>,
    rows3: vec4<f32>,
    col: array<vec4<f32>, 4>,
) {
    for (var e = 0u; e < 4u; e++) {
        var sum = fma(vec4<f32>(rows0[e]), col[0], (*acc)[4u * i + e]);
        sum = fma(vec4<f32>(rows1[e]), col[1], sum);
        sum = fma(vec4<f32>(rows2[e]), col[2], sum);
        (*acc)[4u * i + e] = fma(vec4<f32>(rows3[e]), col[3], sum);
    }
}

// Four k of `group_products`: mine[j], lo[j] and hi[j] at k + j.
fn group_products4(
    acc: ptr<function, array<vec4<f32>, 32>>,
    acc_hi: ptr<function, array<vec4<f32>, 32>>,
    mine: array<vec4<f32>, 4>,
    lo: array<vec4<f32>, 4>,
    hi: array<vec4<f32>, 4>,
) {
    let r0 = shared_rows4(mine[0]);
    let r1 = shared_rows4(mine[1]);
    let r2 = shared_rows4(mine[2]);
    let r3 = shared_rows4(mine[3]);
    quad4(acc, 0u, r0[0], r1[0], r2[0], r3[0], lo); quad4(acc_hi, 0u, r0[0], r1[0], r2[0], r3[0], hi);
    quad4(acc, 1u, r0[1], r1[1], r2[1], r3[1], lo); quad4(acc_hi, 1u, r0[1], r1[1], r2[1], r3[1], hi);
    quad4(acc, 2u, r0[2], r1[2], r2[2], r3[2], lo); quad4(acc_hi, 2u, r0[2], r1[2], r2[2], r3[2], hi);
    quad4(acc, 3u, r0[3], r1[3], r2[3], r3[3], lo); quad4(acc_hi, 3u, r0[3], r1[3], r2[3], r3[3], hi);
    quad4(acc, 4u, r0[4], r1[4], r2[4], r3[4], lo); quad4(acc_hi, 4u, r0[4], r1[4], r2[4], r3[4], hi);
    quad4(acc, 5u, r0[5], r1[5], r2[5], r3[5], lo); quad4(acc_hi, 5u, r0[5], r1[5], r2[5], r3[5], hi);
    quad4(acc, 6u, r0[6], r1[6], r2[6], r3[6], lo); quad4(acc_hi, 6u, r0[6], r1[6], r2[6], r3[6], hi);
    quad4(acc, 7u, r0[7], r1[7], r2[7], r3[7], lo); quad4(acc_hi, 7u, r0[7], r1[7], r2[7], r3[7], hi);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    p = params;
    // No early return: every lane's load serves the whole subgroup, so all of them run the loop
    // (a tile past C's edge reads clamped elements inside it and stores nothing).
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN + 8u * lid.x;
    // vec4 index in stored row 0 of this lane's rows of A (4 rows past C's last row read the
    // last 4 inside); vec4 indices of this invocation's columns of B, as in
    // matmul_blocked_vec4.wgsl.
    let a_at = (p.a_off + min(m0 + 4u * lane, p.m - 4u)) / 4u;
    let a_at2 = (p.a_off + min(m0 + 32u * (GROUPS - 1u) + 4u * lane, p.m - 4u)) / 4u;
    let b_lo = (p.b_off + min(n0, p.n - 4u)) / 4u;
    let b_hi = (p.b_off + min(n0 + 4u, p.n - 4u)) / 4u;
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    var a_base = 0u; var a_pos = 0u;
    var b_base = 0u; var b_pos = 0u;
    // acc[i] = C[m0 + i, n0 .. n0 + 3], acc_hi[i] = C[m0 + i, n0 + 4 .. n0 + 7]; acc2 and acc2_hi
    // the same for rows m0 + 32 + i (TM = 64 only).
    var acc: array<vec4<f32>, 32>;
    var acc_hi: array<vec4<f32>, 32>;
    var acc2: array<vec4<f32>, 32>;
    var acc2_hi: array<vec4<f32>, 32>;
    var k = 0u;
    for (; k + 4u <= p.k; k += 4u) {
        // Stored rows of A and B at k .. k + 3.
        var ka: array<u32, 4>;
        var kb: array<u32, 4>;
        for (var j = 0u; j < 4u; j++) {
            ka[j] = (a_base + a_pos) * lda4;
            kb[j] = (b_base + b_pos) * ldb4;
            a_pos += 1u;
            if (a_pos == p.a_group) { a_pos = 0u; a_base += p.a_group_stride; }
            b_pos += 1u;
            if (b_pos == p.b_group) { b_pos = 0u; b_base += p.b_group_stride; }
        }
        let lo = array<vec4<f32>, 4>(b[b_lo + kb[0]], b[b_lo + kb[1]], b[b_lo + kb[2]], b[b_lo + kb[3]]);
        let hi = array<vec4<f32>, 4>(b[b_hi + kb[0]], b[b_hi + kb[1]], b[b_hi + kb[2]], b[b_hi + kb[3]]);
        let mine = array<vec4<f32>, 4>(a[a_at + ka[0]], a[a_at + ka[1]], a[a_at + ka[2]], a[a_at + ka[3]]);
        group_products4(&acc, &acc_hi, mine, lo, hi);
        if (GROUPS > 1u) {
            let mine2 = array<vec4<f32>, 4>(
                a[a_at2 + ka[0]], a[a_at2 + ka[1]], a[a_at2 + ka[2]], a[a_at2 + ka[3]],
            );
            group_products4(&acc2, &acc2_hi, mine2, lo, hi);
        }
    }
    for (; k < p.k; k++) {
        let bk = (b_base + b_pos) * ldb4;
        let lo = b[b_lo + bk];
        let hi = b[b_hi + bk];
        group_products(&acc, &acc_hi, a[a_at + (a_base + a_pos) * lda4], lo, hi);
        if (GROUPS > 1u) {
            group_products(&acc2, &acc2_hi, a[a_at2 + (a_base + a_pos) * lda4], lo, hi);
        }
        a_pos += 1u;
        if (a_pos == p.a_group) { a_pos = 0u; a_base += p.a_group_stride; }
        b_pos += 1u;
        if (b_pos == p.b_group) { b_pos = 0u; b_base += p.b_group_stride; }
    }
    // Copied out with constant indices first (see matmul_blocked_vec4.wgsl).
    var block: array<vec4<f32>, TM>;
    var block_hi: array<vec4<f32>, TM>;
    for (var i = 0u; i < 32u; i++) {
        block[i] = acc[i];
        block_hi[i] = acc_hi[i];
        if (GROUPS > 1u) {
            block[32u + i] = acc2[i];
            block_hi[32u + i] = acc2_hi[i];
        }
    }
    if (n0 >= p.n) {
        return;
    }
    for (var i = 0u; i < TM; i++) {
        let m = m0 + i;
        if (m < p.m) {
            for (var j = 0u; j < 4u; j++) {
                store_element(m, n0 + j, block[i][j]);
            }
            if (n0 + 4u < p.n) {
                for (var j = 0u; j < 4u; j++) {
                    store_element(m, n0 + 4u + j, block_hi[i][j]);
                }
            }
        }
    }
}
