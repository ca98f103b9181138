// General matrix product, register-blocked. CPU twin: src/cpu/matmul.rs, on the same
// GemmSpec (src/gemm.rs).
//
//   C[m, n] = Σ_k op(A)[m, k] · op(B)[k, n]   (+ bias[n])   (+ C[m, n])     m < M, n < N, k < K
//
// op(A) is A [M, K] or, with TRANS_A, Aᵀ where A is stored [K, M]; likewise op(B) is B [K, N] or
// Bᵀ of a stored [N, K]. Every matrix is row-major with its own leading dimension and element
// offset, so one buffer can hold many tensors. A stored row index r of A (and of B) may be
// remapped as (r / group) · group_stride + r % group: this reads, say, rows b·T + t of a [B, T, ·]
// tensor for t < T-1 only, which is how dW_hh = Σ_t dgates_tᵀ · h_{t-1} pairs each step with the
// previous step's hidden state. group = 0xffffffff is the identity.
//
// Each workgroup computes a TM x TN tile of C with WG_X x WG_Y invocations, each owning an RM x RN
// block (rows ly + WG_Y·i, columns lx + WG_X·j). Entry `main` walks K in chunks of TK staged in
// workgroup memory; entry `main_direct` (few rows, no row map) reads the operands straight from
// storage; entry `main_blocked` (a long K) too, one row of invocations sharing the tile's rows. TM, TN, TK, WG_X, WG_Y and the flag bits TRANS_A, TRANS_B, BIAS, ACCUMULATE are set by
// each variant's descriptor (src/gpu/kernels/matmul.rs), which also sizes the grid.

// The uniform `Params` and `store_element` come from matmul_output.wgsl.

const WG: u32 = WG_X * WG_Y;
const RM: u32 = TM / WG_Y;
const RN: u32 = TN / WG_X;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

var<workgroup> a_tile: array<f32, TK * TM>; // [TK][TM]
var<workgroup> b_tile: array<f32, TK * TN>; // [TK][TN]

fn a_row(r: u32) -> u32 {
    return (r / p.a_group) * p.a_group_stride + r % p.a_group;
}

fn b_row(r: u32) -> u32 {
    return (r / p.b_group) * p.b_group_stride + r % p.b_group;
}

// op(A)[m, k], zero outside the matrix.
fn load_a(m: u32, k: u32) -> f32 {
    if (m >= p.m || k >= p.k) {
        return 0.0;
    }
    if ((p.flags & TRANS_A) != 0u) {
        return a[p.a_off + a_row(k) * p.lda + m];
    }
    return a[p.a_off + a_row(m) * p.lda + k];
}

// op(B)[k, n], zero outside the matrix.
fn load_b(k: u32, n: u32) -> f32 {
    if (k >= p.k || n >= p.n) {
        return 0.0;
    }
    if ((p.flags & TRANS_B) != 0u) {
        return b[p.b_off + b_row(n) * p.ldb + k];
    }
    return b[p.b_off + b_row(k) * p.ldb + n];
}

// Writes one invocation's block of C (plus the bias, plus C itself when accumulating).
fn store(m0: u32, n0: u32, lid: vec3<u32>, acc: array<array<f32, RN>, RM>) {
    for (var i = 0u; i < RM; i++) {
        let m = m0 + lid.y + WG_Y * i;
        for (var j = 0u; j < RN; j++) {
            let n = n0 + lid.x + WG_X * j;
            if (m < p.m && n < p.n) {
                store_element(m, n, acc[i][j]);
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    p = params;
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN;
    if (m0 >= p.m) {
        return; // the whole workgroup leaves together
    }
    let trans_a = (p.flags & TRANS_A) != 0u;
    let trans_b = (p.flags & TRANS_B) != 0u;

    var acc: array<array<f32, RN>, RM>;
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // Stage the A and B chunks, consecutive invocations reading consecutive addresses of
        // whichever index is contiguous in memory.
        for (var e = 0u; e < TK * TM / WG; e++) {
            let idx = li + e * WG;
            var mm: u32; var ka: u32;
            if (trans_a) { mm = idx % TM; ka = idx / TM; } else { mm = idx / TK; ka = idx % TK; }
            a_tile[ka * TM + mm] = load_a(m0 + mm, k0 + ka);
        }
        for (var e = 0u; e < TK * TN / WG; e++) {
            let idx = li + e * WG;
            var nn: u32; var kb: u32;
            if (trans_b) { nn = idx / TK; kb = idx % TK; } else { nn = idx % TN; kb = idx / TN; }
            b_tile[kb * TN + nn] = load_b(k0 + kb, n0 + nn);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, RM>;
            var bv: array<f32, RN>;
            for (var i = 0u; i < RM; i++) {
                av[i] = a_tile[kk * TM + lid.y + WG_Y * i];
            }
            for (var j = 0u; j < RN; j++) {
                bv[j] = b_tile[kk * TN + lid.x + WG_X * j];
            }
            for (var i = 0u; i < RM; i++) {
                for (var j = 0u; j < RN; j++) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }

    store(m0, n0, lid, acc);
}

// The same product without workgroup memory, for few rows (an input projection of one step, a
// batch of one) and no row map: each invocation walks K itself, reading its RM x RN block's
// operands straight from storage. With so few rows no staged element would be reused, and the
// barriers cost more than they save. The loads are branch-free (strides instead of the
// transposition flags, a select at the edges), for adapters that run both sides of a branch.
@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    p = params;
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN;
    if (m0 >= p.m) {
        return;
    }
    // Element (m, k) of op(A) is at a_off + m * a_m + k * a_k, (k, n) of op(B) at
    // b_off + k * b_k + n * b_n.
    let trans_a = (p.flags & TRANS_A) != 0u;
    let trans_b = (p.flags & TRANS_B) != 0u;
    let a_m = select(p.lda, 1u, trans_a);
    let a_k = select(1u, p.lda, trans_a);
    let b_k = select(p.ldb, 1u, trans_b);
    let b_n = select(1u, p.ldb, trans_b);
    var a_at: array<u32, RM>;
    var a_in: array<bool, RM>;
    for (var i = 0u; i < RM; i++) {
        let m = m0 + lid.y + WG_Y * i;
        a_in[i] = m < p.m;
        a_at[i] = p.a_off + min(m, p.m - 1u) * a_m;
    }
    var b_at: array<u32, RN>;
    var b_in: array<bool, RN>;
    for (var j = 0u; j < RN; j++) {
        let n = n0 + lid.x + WG_X * j;
        b_in[j] = n < p.n;
        b_at[j] = p.b_off + min(n, p.n - 1u) * b_n;
    }
    var acc: array<array<f32, RN>, RM>;
    for (var k = 0u; k < p.k; k++) {
        var av: array<f32, RM>;
        var bv: array<f32, RN>;
        for (var i = 0u; i < RM; i++) {
            av[i] = select(0.0, a[a_at[i] + k * a_k], a_in[i]);
        }
        for (var j = 0u; j < RN; j++) {
            bv[j] = select(0.0, b[b_at[j] + k * b_k], b_in[j]);
        }
        for (var i = 0u; i < RM; i++) {
            for (var j = 0u; j < RN; j++) {
                acc[i][j] = fma(av[i], bv[j], acc[i][j]);
            }
        }
    }
    store(m0, n0, lid, acc);
}

// The same product without workgroup memory for many rows and a long K (the weight gradients,
// K = B·T): each invocation walks K itself with its RM x RN block in registers, so each operand
// element it reads serves RN (or RM) multiply-adds and no barrier splits the loop. The row map
// is followed incrementally along K (no division per step), and the loads are branch-free as in
// `main_direct`.
@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_blocked(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    p = params;
    let m0 = first_row(wg, groups);
    let n0 = wg.x * TN;
    if (m0 >= p.m) {
        return;
    }
    let trans_a = (p.flags & TRANS_A) != 0u;
    let trans_b = (p.flags & TRANS_B) != 0u;
    // Element (m, k) of op(A) is at a_at[i] + a_k(k): the part fixed by m, and the part that
    // moves with k (a mapped row times lda when A is transposed, k itself when not).
    var a_at: array<u32, RM>;
    var a_in: array<bool, RM>;
    for (var i = 0u; i < RM; i++) {
        let m = m0 + i;
        let mc = min(m, p.m - 1u);
        a_in[i] = m < p.m;
        a_at[i] = p.a_off + select(a_row(mc) * p.lda, mc, trans_a);
    }
    var b_at: array<u32, RN>;
    var b_in: array<bool, RN>;
    for (var j = 0u; j < RN; j++) {
        let n = n0 + lid.x + WG_X * j;
        let nc = min(n, p.n - 1u);
        b_in[j] = n < p.n;
        b_at[j] = p.b_off + select(nc, b_row(nc) * p.ldb, trans_b);
    }
    // Stored row of A (when transposed) and of B (when not) at step k: the row map's group
    // start plus the position inside the group.
    var a_base = 0u; var a_pos = 0u;
    var b_base = 0u; var b_pos = 0u;
    var acc: array<array<f32, RN>, RM>;
    for (var k = 0u; k < p.k; k++) {
        let a_k = select(k, (a_base + a_pos) * p.lda, trans_a);
        let b_k = select((b_base + b_pos) * p.ldb, k, trans_b);
        var av: array<f32, RM>;
        var bv: array<f32, RN>;
        for (var i = 0u; i < RM; i++) {
            av[i] = select(0.0, a[a_at[i] + a_k], a_in[i]);
        }
        for (var j = 0u; j < RN; j++) {
            bv[j] = select(0.0, b[b_at[j] + b_k], b_in[j]);
        }
        for (var i = 0u; i < RM; i++) {
            for (var j = 0u; j < RN; j++) {
                acc[i][j] = fma(av[i], bv[j], acc[i][j]);
            }
        }
        a_pos += 1u;
        if (a_pos == p.a_group) { a_pos = 0u; a_base += p.a_group_stride; }
        b_pos += 1u;
        if (b_pos == p.b_group) { b_pos = 0u; b_base += p.b_group_stride; }
    }
    store(m0, n0, vec3<u32>(lid.x, 0u, 0u), acc);
}
