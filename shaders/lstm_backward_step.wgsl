// One backward timestep of one layer, for the whole batch and every direction. CPU twin:
// src/cpu/lstm_backward_step.rs (the math of a step), src/cpu/general_lstm.rs (directions,
// lengths and projection around it).
//
//   dr    = dy_t + (last step of the row ? dh_n : dgates_next · W_hh)      (unprojected: r = h)
//   dr    = dh_t · W_hr          (projected: dh_t from lstm_backward_hidden_step.wgsl)
//   dc    = dc_later + dr ⊙ o ⊙ (1 - tanh²(c_t))          dc_later = dc_n at the row's last step
//   da_i  = dc ⊙ g ⊙ i(1 - i)          da_f = dc ⊙ c_prev ⊙ f(1 - f)
//   da_g  = dc ⊙ i ⊙ (1 - g²)          da_o = dr ⊙ tanh(c_t) ⊙ o(1 - o)
//   dc_prev = dc ⊙ f
//
// Processing steps run in reverse, s = T-1 ... 0. Row b of direction d at step s is at time
// t = time_of(d, s, n_b); "next" is its step s + 1 (time t + 1 forward, t - 1 reverse), and its
// last step is s = n_b - 1, where dh_n and dc_n come in. A finished row (s ≥ n_b) passes dh and dc
// through untouched and has zero gate gradients at time s (past its end). The extra dispatch
// with `dh0` set, after step 0, only sends dgates of step 0 back through W_hh into dh0 (the
// projected layers' dh0 comes from lstm_backward_hidden_step.wgsl instead).
//
// Layouts as in lstm_forward_step.wgsl (gate vec4s (i, f, g, o) per unit). With that layout the
// recurrent term is dh[b, u] = Σ_u' dot(dgates_next[b, u'], w_hh[u, u']): row u of the stored
// W_hhᵀ holds, for every unit u', the four weights from h[u] into the gates of unit u'.
//   dy       [B, T, D·O]          gradient arriving at the layer's output (unprojected layers)
//   d_state  [dh (L·D·B·O) | dc (L·D·B·H)]   on entry (dh_n, dc_n); the dc part carries dc
//                                 between steps and ends as dc0, the dh part ends as dh0
//   d_gates  [D, B, T, H] vec4    dL/da for every time, kept for the weight-gradient GEMMs
//   dh_seq   [D, B, T, O]         dL/dh at every time (projected layers)
//   saved    c [D, B, T, H] first (the forward's `saved`)
//
// The uniform's struct `Step` and the tiling (TU units x TB batch rows per workgroup, RB rows per
// invocation, KC-wide chunks of the reduction) come from lstm_step.wgsl, as in the forward step.
//
// Two entry points share the gate derivatives (`finish`) and differ in how they sum the
// recurrent term, as the forward step's do:
//   main         invocation (lx, ly) computes unit lx for rows ly, ly + WG_Y, ... (RB of them),
//                staging dgates_next and W_hh KC at a time in workgroup memory.
//   main_direct  one row of invocations: invocation lx computes units lx, lx + WG_X, ... (RU of
//                them) for all TB rows of the tile, reading W_hh (or W_hr) and dgates_next (or
//                dh_t) straight from storage with no workgroup memory and no barrier. It serves
//                the batches whose forward step runs direct (src/gpu/tuning.rs), and every
//                projected layer.

@group(0) @binding(0) var<uniform> step: Step;
// The uniform, copied once per invocation (see lstm_forward_step.wgsl).
var<private> s: Step;
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read> state0: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_state: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_gates: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> dh_seq: array<f32>;
// The layer's weight texture (lstm_forward_step.wgsl's layout), read by the texel variants only
// (TEXELS = 1); the others bind any texture.
@group(0) @binding(9) var weights: texture_storage_2d<rgba32float, read>;

var<workgroup> dg_tile: array<vec4<f32>, TB * KC>;       // [TB][KC]
var<workgroup> w_tile: array<vec4<f32>, TU * (KC + 1u)>;  // [TU][KC + 1], padded against bank conflicts

// The time of row b's next step (the one whose dgates reach this step's h), or none when this
// step is the row's last (dh_n comes in instead) or the row has finished.
struct Next {
    n: u32,
    has: bool,
    t: u32,
}

fn next_of(d: u32, b: u32) -> Next {
    let n = seq_len(s.len_off, b);
    if (s.dh0 != 0u) {
        return Next(n, true, time_of(d, 0u, n));
    }
    let has = s.step + 1u < n;
    return Next(n, has, select(0u, time_of(d, s.step + 1u, n), has));
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    s = step;
    let d = wg.z;
    let u0 = wg.x * TU;
    let b0 = wg.y * TB;
    let H = s.hidden;
    let w_off = s.w_off + d * s.dir_params;

    // Recurrent term dgates_next · W_hh (unprojected layers, where O = H).
    var acc: array<f32, RB>;
    for (var k0 = 0u; k0 < H; k0 += KC) {
        for (var e = 0u; e < TB * KC / WG; e++) {
            let idx = li + WG * e;
            let bb = idx / KC;
            let kg = idx % KC;
            var gv = vec4<f32>(0.0);
            if (b0 + bb < s.batch && k0 + kg < H) {
                let next = next_of(d, b0 + bb);
                if (next.has) {
                    gv = d_gates[dir_row(d, b0 + bb, next.t, H) + k0 + kg];
                }
            }
            dg_tile[idx] = gv;
        }
        for (var e = 0u; e < TU * KC / WG; e++) {
            let idx = li + WG * e;
            let uu = idx / KC;
            let kw = idx % KC;
            var wv = vec4<f32>(0.0);
            if (u0 + uu < H && k0 + kw < H) {
                wv = params[w_off + (u0 + uu) * H + k0 + kw];
            }
            w_tile[uu * (KC + 1u) + kw] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KC; kk++) {
            let w = w_tile[lid.x * (KC + 1u) + kk];
            for (var r = 0u; r < RB; r++) {
                acc[r] += dot(dg_tile[(lid.y + WG_Y * r) * KC + kk], w);
            }
        }
        workgroupBarrier();
    }

    let u = u0 + lid.x;
    if (u >= H) {
        return;
    }
    // Copied out with constant indices first (as in lstm_forward_step.wgsl): a loop around the
    // long `finish` that is not unrolled would index `acc` dynamically and move it, with the
    // product loop's accumulators, out of registers.
    var products: array<f32, RB>;
    for (var r = 0u; r < RB; r++) {
        products[r] = acc[r];
    }
    for (var r = 0u; r < RB; r++) {
        let b = b0 + lid.y + WG_Y * r;
        if (b < s.batch) {
            finish(d, u, b, products[r]);
        }
    }
}

// Row u of the stored W_hhᵀ at unit k of direction d: the four weights from h[u] into the gates
// of unit k. From the parameters, or in the texel variants from the layer's weight texture, whose
// row d·(I + O) + I + u holds the same row (a constant: the other branch compiles away).
fn w_hh_t(d: u32, u: u32, k: u32) -> vec4<f32> {
    if (TEXELS != 0u) {
        return textureLoad(weights, vec2<u32>(k, d * (s.input + s.out) + s.input + u));
    }
    return params[s.w_off + d * s.dir_params + u * s.hidden + k];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    s = step;
    let d = wg.z;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB;
    let H = s.hidden;
    let O = s.out;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let units = tile_columns(u0, H);
    var bs: array<u32, TB>;
    var nexts: array<Next, TB>;
    // Whether a row of the tile needs the product: a row of the batch (not a clamped copy past
    // its end) at a running step (projected) or with a later step to take the gradient from
    // (unprojected). The tile's invocations share their rows, so these branches are uniform: a
    // row that needs none costs no loads and no products (a batch smaller than the tile pays
    // only for its rows), and a tile that needs none skips the loops as a whole.
    var needs: array<bool, TB>;
    var needed = false;
    for (var r = 0u; r < TB; r++) {
        bs[r] = min(b0 + r, s.batch - 1u);
        nexts[r] = next_of(d, bs[r]);
        needs[r] = b0 + r < s.batch && select(nexts[r].has, s.step < nexts[r].n, O < H);
        needed = needed || needs[r];
    }
    var acc: array<array<f32, RU>, TB>;
    if (!needed) {
        // Nothing to sum.
    } else if (O < H) {
        // Projected: dr = dh_t · W_hr, W_hr [O, H] as f32 in the arena (4 per vec4).
        let w_hr = s.wr_off + 4u * d * s.dir_params;
        for (var k = 0u; k < O; k++) {
            var w: array<f32, RU>;
            for (var j = 0u; j < RU; j++) {
                let at = w_hr + k * H + units[j];
                w[j] = params[at / 4u][at % 4u];
            }
            for (var r = 0u; r < TB; r++) {
                if (needs[r]) {
                    let t = time_of(d, s.step, nexts[r].n);
                    let dh = dh_seq[dir_row(d, bs[r], t, O) + k];
                    for (var j = 0u; j < RU; j++) {
                        acc[r][j] = fma(dh, w[j], acc[r][j]);
                    }
                }
            }
        }
    } else {
        // Recurrent term dgates_next · W_hh.
        for (var k = 0u; k < H; k++) {
            var w: array<vec4<f32>, RU>;
            for (var j = 0u; j < RU; j++) {
                w[j] = w_hh_t(d, units[j], k);
            }
            for (var r = 0u; r < TB; r++) {
                if (needs[r]) {
                    let dg = d_gates[dir_row(d, bs[r], nexts[r].t, H) + k];
                    for (var j = 0u; j < RU; j++) {
                        acc[r][j] += dot(dg, w[j]);
                    }
                }
            }
        }
    }
    finish_tile(d, u0, b0, acc);
}

// The direct steps' end: `finish` for each of the invocation's units u0 + WG_X·j of the tile's
// rows b0 + r, from the sums `acc`.
fn finish_tile(d: u32, u0: u32, b0: u32, acc: array<array<f32, RU>, TB>) {
    // Copied out with constant indices first (see `main`).
    var products: array<f32, TB * RU>;
    for (var r = 0u; r < TB; r++) {
        for (var j = 0u; j < RU; j++) {
            products[r * RU + j] = acc[r][j];
        }
    }
    for (var r = 0u; r < TB; r++) {
        let b = b0 + r;
        for (var j = 0u; j < RU; j++) {
            let u = u0 + WG_X * j;
            if (u < s.hidden && b < s.batch) {
                finish(d, u, b, products[r * RU + j]);
            }
        }
    }
}

// The rest of the step for unit u < H of batch row b < B in direction d: `product` is
// dgates_next · W_hh at (b, u) (unprojected; unused where dh_n comes in) or dh_t · W_hr
// (projected).
fn finish(d: u32, u: u32, b: u32, product: f32) {
    let H = s.hidden;
    let O = s.out;
    let n = seq_len(s.len_off, b);
    let state = (d * s.batch + b) * H + u;
    if (s.dh0 != 0u) {
        // dh0 = dgates_0 · W_hh (O = H here).
        d_state[s.h_off + (d * s.batch + b) * O + u] = product;
        return;
    }
    if (s.step >= n) {
        d_gates[dir_row(d, b, s.step, H) + u] = vec4<f32>(0.0);
        return;
    }
    let t = time_of(d, s.step, n);
    var dr = product;
    if (O == H) {
        dr = dy[(b * s.seq + t) * s.dirs * O + d * O + u];
        if (s.step + 1u == n) {
            dr += d_state[s.h_off + (d * s.batch + b) * O + u];
        } else {
            dr += product;
        }
    }
    let at = dir_row(d, b, t, H) + u;
    let gt = gates[at];
    let i = gt.x;
    let f = gt.y;
    let g = gt.z;
    let o = gt.w;
    let tc = tanh_stable(saved[at]);
    var c_prev: f32;
    if (s.step == 0u) {
        c_prev = state0[s.c_off + state];
    } else {
        c_prev = saved[dir_row(d, b, time_of(d, s.step - 1u, n), H) + u];
    }
    let dc = d_state[s.c_off + state] + dr * o * (1.0 - tc * tc);
    d_gates[at] = vec4<f32>(
        dc * g * i * (1.0 - i),
        dc * c_prev * f * (1.0 - f),
        dc * i * (1.0 - g * g),
        dr * tc * o * (1.0 - o),
    );
    d_state[s.c_off + state] = dc * f;
}
