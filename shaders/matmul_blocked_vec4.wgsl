// The weight gradients' product of matmul.wgsl's `main_blocked`, reading its operands four floats
// at a time. CPU twin: src/cpu/matmul.rs, on the same GemmSpec (src/gemm.rs).
//
//   C[m, n] = Σ_k Aᵀ[m, k] · B[k, n]   (+ bias[n])   (+ C[m, n])     m < M, n < N, k < K
//
// with A stored [K, M] (transposed) and B stored [K, N]: the layout of dW = Σ_t dgates_tᵀ · in_t,
// where K runs over the rows b·T + t. Along a stored row the elements of C's rows (in A) and of
// its columns (in B) sit side by side, so an invocation that owns 8 adjacent columns of C loads
// them with two vec4 loads, and the tile's TM = 8 rows of A come in two. A software adapter pays
// per load, not per float loaded: main_blocked spends 12 loads per k for 32 products where this
// spends 4 for 64. (With 4 columns, 3 loads for 32 products, the reference classifier's dW_hh
// took 51 ms on lavapipe; with 8, 35-41 ms.)
//
// The host picks this kernel only when A's and B's offsets and leading dimensions, M and N are
// multiples of 4 (src/gpu/kernels/matmul.rs), so that every vec4 lies inside one row and a vec4
// of rows or columns is either all inside C or all outside. Everything else is main_blocked's:
// a TM x TN tile per workgroup of one row of WG_X invocations, all of K walked in registers, the
// row maps followed incrementally, the same multiply-adds in the same order (so the same bits).

// The uniform `Params` and `store_element` come from matmul_output.wgsl.

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    p = params;
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN + 8u * lid.x;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    // vec4 indices in stored row 0: rows m0..m0+3 and m0+4..m0+7 of A's row, columns n0..n0+3
    // and n0+4..n0+7 of B's. A vec4 past C's edge reads one inside (clamped) and is never stored.
    let a_lo = (p.a_off + m0) / 4u;
    let a_hi = (p.a_off + min(m0 + 4u, p.m - 4u)) / 4u;
    let b_lo = (p.b_off + min(n0, p.n - 4u)) / 4u;
    let b_hi = (p.b_off + min(n0 + 4u, p.n - 4u)) / 4u;
    let lda4 = p.lda / 4u;
    let ldb4 = p.ldb / 4u;
    // Stored row of A and of B at step k: the row map's group start plus the position inside.
    var a_base = 0u; var a_pos = 0u;
    var b_base = 0u; var b_pos = 0u;
    // acc[i] = C[m0 + i, n0 .. n0 + 3], acc_hi[i] = C[m0 + i, n0 + 4 .. n0 + 7]; indexed with
    // constants only, so they stay in registers.
    var acc: array<vec4<f32>, 8>;
    var acc_hi: array<vec4<f32>, 8>;
    for (var k = 0u; k < p.k; k++) {
        let ak = (a_base + a_pos) * lda4;
        let lo = a[a_lo + ak];
        let hi = a[a_hi + ak];
        let bk = (b_base + b_pos) * ldb4;
        let bv = b[b_lo + bk];
        let bv_hi = b[b_hi + bk];
        acc[0] = fma(vec4<f32>(lo.x), bv, acc[0]);
        acc[1] = fma(vec4<f32>(lo.y), bv, acc[1]);
        acc[2] = fma(vec4<f32>(lo.z), bv, acc[2]);
        acc[3] = fma(vec4<f32>(lo.w), bv, acc[3]);
        acc[4] = fma(vec4<f32>(hi.x), bv, acc[4]);
        acc[5] = fma(vec4<f32>(hi.y), bv, acc[5]);
        acc[6] = fma(vec4<f32>(hi.z), bv, acc[6]);
        acc[7] = fma(vec4<f32>(hi.w), bv, acc[7]);
        acc_hi[0] = fma(vec4<f32>(lo.x), bv_hi, acc_hi[0]);
        acc_hi[1] = fma(vec4<f32>(lo.y), bv_hi, acc_hi[1]);
        acc_hi[2] = fma(vec4<f32>(lo.z), bv_hi, acc_hi[2]);
        acc_hi[3] = fma(vec4<f32>(lo.w), bv_hi, acc_hi[3]);
        acc_hi[4] = fma(vec4<f32>(hi.x), bv_hi, acc_hi[4]);
        acc_hi[5] = fma(vec4<f32>(hi.y), bv_hi, acc_hi[5]);
        acc_hi[6] = fma(vec4<f32>(hi.z), bv_hi, acc_hi[6]);
        acc_hi[7] = fma(vec4<f32>(hi.w), bv_hi, acc_hi[7]);
        a_pos += 1u;
        if (a_pos == p.a_group) { a_pos = 0u; a_base += p.a_group_stride; }
        b_pos += 1u;
        if (b_pos == p.b_group) { b_pos = 0u; b_base += p.b_group_stride; }
    }
    // Copied out with constant indices first: a loop below that a compiler does not unroll would
    // index `acc` dynamically, which moves it, and the loop above with it, out of registers.
    var block: array<vec4<f32>, 8>;
    var block_hi: array<vec4<f32>, 8>;
    for (var i = 0u; i < 8u; i++) {
        block[i] = acc[i];
        block_hi[i] = acc_hi[i];
    }
    for (var i = 0u; i < 8u; i++) {
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
