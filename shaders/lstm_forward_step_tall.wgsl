// The direct forward step with a tall tile, 32 rows by 8 units, reading h_prev transposed. CPU
// twin: src/cpu/lstm_forward_step.rs, as for lstm_forward_step.wgsl, which comes first and
// provides the bindings, `finish` and the weight loads (subgroup_rows.wgsl the broadcasts).
//
// A workgroup is one subgroup of 8 invocations (devices whose subgroups are exactly 8 wide:
// src/gpu/tuning.rs) and owns TU = 8 units of TB = 32 rows; invocation `lid.x` owns unit
// wg.x·8 + lid.x of all 32 rows. Each weight it loads (the four gates of its unit at one k)
// serves 32 rows, where the subgroup step's serves 8: a software adapter pays per load and
// per lane, so the weight loads per product fall fourfold. The rows' inputs come four rows to a
// vec4: lane s loads rows 4s .. 4s + 3 and every lane takes the others' (`shared_rows4`). The
// sums go four k at a time (`tall_products4`), in the same order as one at a time.
// h_prev comes from `ht_in`, which the step before wrote transposed into its `ht_out`:
//
//   ht_in, ht_out  [D·O rows, BQ texels], BQ = ceil(B / 32) · 8; texel q of row d·O + k holds
//                  h[4q .. 4q + 3, k] of direction d (0 for rows past B, or finished at that
//                  step). The host binds two textures, each step's ht_out the next's ht_in.
//
// so one texel load per lane brings all 32 rows' h_prev[·, k]. A software adapter loads a
// storage texture's texels several times as fast as a storage buffer's vec4s (both lane by
// lane). The first step reads h0 from
// `state0` row by row (four loads per lane and k); x_t comes from `input` likewise, or, where I
// is a multiple of 4 (so each row's x_t starts on a vec4), four features of a row to a load. The
// rows' lengths too are loaded four to a lane and handed round. The sums are `main_direct`'s, in
// the same order: x_t · W_ihᵀ, then h_prev · W_hhᵀ, then b_ih, then b_hh, so the step has the
// direct step's bits. Unprojected layers only (a projected layer's h is the projection step's
// output).

@group(0) @binding(10) var ht_in: texture_storage_2d<rgba32float, read>;
@group(0) @binding(11) var ht_out: texture_storage_2d<rgba32float, write>;

// One k of the tile's sums: acc[4q + e] += h[q][e] · w (row 4q + e, the four gates of the unit).
fn tall_products(acc: ptr<function, array<vec4<f32>, RB>>, h: array<vec4<f32>, 8>, w: vec4<f32>) {
    for (var q = 0u; q < 8u; q++) {
        let v = h[q];
        (*acc)[4u * q] = fma(vec4<f32>(v.x), w, (*acc)[4u * q]);
        (*acc)[4u * q + 1u] = fma(vec4<f32>(v.y), w, (*acc)[4u * q + 1u]);
        (*acc)[4u * q + 2u] = fma(vec4<f32>(v.z), w, (*acc)[4u * q + 2u]);
        (*acc)[4u * q + 3u] = fma(vec4<f32>(v.w), w, (*acc)[4u * q + 3u]);
    }
}

// Four k of one row's sums, k ascending: a + v0·w0 + v1·w1 + v2·w2 + v3·w3, each product
// rounded into the sum in turn (the order of four `tall_products`).
fn chain4(a: vec4<f32>, v: vec4<f32>, w: array<vec4<f32>, 4>) -> vec4<f32> {
    var r = fma(vec4<f32>(v.x), w[0], a);
    r = fma(vec4<f32>(v.y), w[1], r);
    r = fma(vec4<f32>(v.z), w[2], r);
    return fma(vec4<f32>(v.w), w[3], r);
}

// Four k of the tile's sums, the same as `tall_products` at k, k + 1, k + 2, k + 3 in turn, but
// each accumulator taken up once for all four. On a software adapter a lane's 32 vec4 sums are
// 128 vector registers, more than a processor has, so they live in memory and each use loads
// and stores one: taken up once per four k, each is stored a quarter as often (the products
// ran 25% faster in a probe). hj holds the rows' values at k + j, w[j] the unit's weights there.
// The quads are spelled out: a loop over them, indexing the arrays by its counter, would move
// the arrays to memory on a software adapter.
fn tall_products4(
    acc: ptr<function, array<vec4<f32>, RB>>,
    h0: array<vec4<f32>, 8>,
    h1: array<vec4<f32>, 8>,
    h2: array<vec4<f32>, 8>,
    h3: array<vec4<f32>, 8>,
    w: array<vec4<f32>, 4>,
) {
    tall_quad4(acc, 0u, h0[0], h1[0], h2[0], h3[0], w);
    tall_quad4(acc, 4u, h0[1], h1[1], h2[1], h3[1], w);
    tall_quad4(acc, 8u, h0[2], h1[2], h2[2], h3[2], w);
    tall_quad4(acc, 12u, h0[3], h1[3], h2[3], h3[3], w);
    tall_quad4(acc, 16u, h0[4], h1[4], h2[4], h3[4], w);
    tall_quad4(acc, 20u, h0[5], h1[5], h2[5], h3[5], w);
    tall_quad4(acc, 24u, h0[6], h1[6], h2[6], h3[6], w);
    tall_quad4(acc, 28u, h0[7], h1[7], h2[7], h3[7], w);
}

// The unit's weights from x_t (`w_ih4`) or h_prev (`w_hh4`) at k .. k + 3.
fn w_ih4(d: u32, k: u32, u: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(w_ih(d, k, u), w_ih(d, k + 1u, u), w_ih(d, k + 2u, u), w_ih(d, k + 3u, u));
}

fn w_hh4(d: u32, k: u32, u: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(w_hh(d, k, u), w_hh(d, k + 1u, u), w_hh(d, k + 2u, u), w_hh(d, k + 3u, u));
}

// Rows r .. r + 3 of `tall_products4`, from their values at the four k.
fn tall_quad4(
    acc: ptr<function, array<vec4<f32>, RB>>,
    r: u32,
    v0: vec4<f32>,
    v1: vec4<f32>,
    v2: vec4<f32>,
    v3: vec4<f32>,
    w: array<vec4<f32>, 4>,
) {
    (*acc)[r] = chain4((*acc)[r], vec4<f32>(v0.x, v1.x, v2.x, v3.x), w);
    (*acc)[r + 1u] = chain4((*acc)[r + 1u], vec4<f32>(v0.y, v1.y, v2.y, v3.y), w);
    (*acc)[r + 2u] = chain4((*acc)[r + 2u], vec4<f32>(v0.z, v1.z, v2.z, v3.z), w);
    (*acc)[r + 3u] = chain4((*acc)[r + 3u], vec4<f32>(v0.w, v1.w, v2.w, v3.w), w);
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_tall(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    s = step;
    let d = wg.z;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB;
    // Clamped into the layer: an edge invocation computes a copy and stores nothing.
    let unit = tile_columns(u0, s.hidden)[0];
    // This lane's rows b0 + 4·lane + e (clamped into the batch): it loads their lengths, x_t and
    // h0, and hands them round.
    var mine: array<u32, 4>;
    for (var e = 0u; e < 4u; e++) {
        mine[e] = min(b0 + 4u * lane + e, s.batch - 1u);
    }
    let n_mine = vec4<u32>(
        seq_len(s.len_off, mine[0]),
        seq_len(s.len_off, mine[1]),
        seq_len(s.len_off, mine[2]),
        seq_len(s.len_off, mine[3]),
    );
    let n_all = shared_rows4u(n_mine);
    var rows: array<Row, RB>;
    var any_running = false;
    for (var q = 0u; q < 8u; q++) {
        rows[4u * q] = row_of_length(d, n_all[q].x);
        rows[4u * q + 1u] = row_of_length(d, n_all[q].y);
        rows[4u * q + 2u] = row_of_length(d, n_all[q].z);
        rows[4u * q + 3u] = row_of_length(d, n_all[q].w);
    }
    for (var r = 0u; r < RB; r++) {
        any_running = any_running || rows[r].running;
    }
    var acc: array<vec4<f32>, RB>;
    // The rows are the workgroup's, so this branch is the same for every lane.
    if (any_running) {
        // Where this lane's rows' x_t start.
        var x_at: array<u32, 4>;
        for (var e = 0u; e < 4u; e++) {
            x_at[e] = (mine[e] * s.seq + row_of_length(d, n_mine[e]).t) * s.input;
        }
        if (s.input % 4u == 0u) {
            // Four features of each row to a load (x_t starts on a vec4).
            for (var k4 = 0u; k4 < s.input / 4u; k4++) {
                var x: array<vec4<f32>, 4>;
                for (var e = 0u; e < 4u; e++) {
                    x[e] = input[x_at[e] / 4u + k4];
                }
                let k = 4u * k4;
                tall_products4(
                    &acc,
                    shared_rows4(vec4<f32>(x[0].x, x[1].x, x[2].x, x[3].x)),
                    shared_rows4(vec4<f32>(x[0].y, x[1].y, x[2].y, x[3].y)),
                    shared_rows4(vec4<f32>(x[0].z, x[1].z, x[2].z, x[3].z)),
                    shared_rows4(vec4<f32>(x[0].w, x[1].w, x[2].w, x[3].w)),
                    w_ih4(d, k, unit),
                );
            }
        } else {
            for (var k = 0u; k < s.input; k++) {
                let x = vec4<f32>(
                    input_at(x_at[0] + k),
                    input_at(x_at[1] + k),
                    input_at(x_at[2] + k),
                    input_at(x_at[3] + k),
                );
                tall_products(&acc, shared_rows4(x), w_ih(d, k, unit));
            }
        }
        // h_prev: h0 row by row at the first step, else the last step's ht.
        if (s.step == 0u) {
            var h_at: array<u32, 4>;
            for (var e = 0u; e < 4u; e++) {
                h_at[e] = h_prev_at(d, mine[e], row_of_length(d, n_mine[e]));
            }
            for (var k = 0u; k < s.out; k++) {
                let h = vec4<f32>(
                    state0[h_at[0] + k],
                    state0[h_at[1] + k],
                    state0[h_at[2] + k],
                    state0[h_at[3] + k],
                );
                tall_products(&acc, shared_rows4(h), w_hh(d, k, unit));
            }
        } else {
            let q = b0 / 4u + lane;
            let row = d * s.out;
            var k = 0u;
            for (; k + 4u <= s.out; k += 4u) {
                tall_products4(
                    &acc,
                    shared_rows4(textureLoad(ht_in, vec2<u32>(q, row + k))),
                    shared_rows4(textureLoad(ht_in, vec2<u32>(q, row + k + 1u))),
                    shared_rows4(textureLoad(ht_in, vec2<u32>(q, row + k + 2u))),
                    shared_rows4(textureLoad(ht_in, vec2<u32>(q, row + k + 3u))),
                    w_hh4(d, k, unit),
                );
            }
            for (; k < s.out; k++) {
                let h = textureLoad(ht_in, vec2<u32>(q, row + k));
                tall_products(&acc, shared_rows4(h), w_hh(d, k, unit));
            }
        }
    }
    // Copied out with constant indices first (see `main` in lstm_forward_step.wgsl).
    var pre: array<vec4<f32>, RB>;
    for (var r = 0u; r < RB; r++) {
        pre[r] = acc[r];
    }
    let bias = s.dir_params * d;
    let b_ih = params[s.bi_off + bias + unit];
    let b_hh = params[s.b_off + bias + unit];
    for (var q = 0u; q < TB / 4u; q++) {
        var h = vec4<f32>(0.0);
        for (var e = 0u; e < 4u; e++) {
            let r = 4u * q + e;
            if (u0 < s.hidden && b0 + r < s.batch) {
                h[e] = finish(d, u0, b0 + r, rows[r], pre[r] + b_ih + b_hh);
            }
        }
        if (u0 < s.hidden) {
            textureStore(ht_out, vec2<u32>(b0 / 4u + q, d * s.out + u0), h);
        }
    }
}
