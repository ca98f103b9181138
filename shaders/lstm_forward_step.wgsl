// One forward timestep of one layer, for the whole batch. CPU twin: src/cpu/lstm_forward_step.rs.
//
//   a   = xproj_t + b_hh + h_{t-1} · W_hhᵀ          xproj_t = x_t · W_ihᵀ + b_ih (matmul.wgsl)
//   i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//   c_t = f ⊙ c_{t-1} + i ⊙ g
//   h_t = o ⊙ tanh(c_t)
//
// Layouts. Gates are interleaved: a vec4 holds (i, f, g, o) of one hidden unit, so one invocation
// owns all four gates of a unit and the cell update needs no exchange between invocations.
//   xproj   [B, T, H] vec4        y        [B, T, H]     (h_t of every step; h_{t-1} is read here)
//   w_hh    [H_k, H_u] vec4 = W_hhᵀ with the four gate rows of unit u side by side
//   b_hh    [H] vec4
//   w_ih    [I_k, H_u] vec4, b_ih [H] vec4: the same layouts, read by main_direct only
//   weights texture [I + H rows, H texels]: W_ihᵀ then W_hhᵀ, the same layouts row by row, read
//           instead of w_ih and w_hh by main_direct where TEXELS = 1 (src/gpu/weight_texels.rs)
//   input   [B, T, I]     the layer's input (x, or y of the layer below): main_direct only
//   state0  [2, L, B, H]  (h0 then c0)      state_n [2, L, B, H]  (h_n then c_n; the c half holds
//                                                                   the running c_t meanwhile)
//   c_seq   [B, T, H], gates [B, T, H] vec4: written only when `save` (training keeps them)
// The uniform's struct `Step` comes from lstm_step.wgsl.
//
// Two entry points share the gate math (`finish`) and differ in how they sum the products:
//   main              a workgroup owns TU units x TB batch rows; invocation (lx, ly) computes unit
//                     lx for rows ly, ly + WG_Y, ... (RB of them). The reduction over k is staged
//                     KC at a time in workgroup memory, where each element serves the whole tile.
//                     xproj_t comes from one GEMM over the whole sequence, made before the steps.
//   main_direct       invocation (lx, ly) computes units lx, lx + WG_X, ... (RU of them) for rows
//                     ly, ly + WG_Y, ... (RB), reading the weights, x_t and h_{t-1} straight from
//                     storage, with no workgroup memory and no barrier; each weight it loads
//                     serves its RB rows, each input its RU units. It also sums
//                     xproj_t = x_t · W_ihᵀ + b_ih itself (what matmul.wgsl does for `main`): for
//                     a few rows a GEMM dispatch of its own costs more than the products it
//                     computes, and a one-step call (a stream's push) would pay for it every time.
//                     It serves small batches everywhere, and every batch where workgroup memory
//                     and barriers cost more than they save (src/gpu/tuning.rs).
// The descriptors in src/gpu/kernels/lstm_forward_step.rs set the tile sizes of each.

@group(0) @binding(0) var<uniform> step: Step;
// The uniform, copied once per invocation: some adapters (a software rasterizer) load a uniform
// afresh at every use, and the loops below use it at every k.
var<private> s: Step;
@group(0) @binding(1) var<storage, read> xproj: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> state0: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> state_n: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_seq: array<f32>;
@group(0) @binding(7) var<storage, read_write> gates: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> input: array<f32>;
@group(0) @binding(9) var weights: texture_2d<f32>;

var<workgroup> h_tile: array<f32, TB * KC>;        // [TB][KC]
var<workgroup> w_tile: array<vec4<f32>, KC * TU>;  // [KC][TU]

// h_{t-1}[b, k]: h0 at the first step, else the previous step's output.
fn h_prev(b: u32, k: u32) -> f32 {
    if (s.t == 0u) {
        return state0[s.h_off + b * s.hidden + k];
    }
    return y[(b * s.seq + s.t - 1u) * s.hidden + k];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    s = step;
    let u0 = wg.x * TU;
    let b0 = wg.y * TB;
    let H = s.hidden;

    var acc: array<vec4<f32>, RB>;
    for (var k0 = 0u; k0 < H; k0 += KC) {
        for (var e = 0u; e < TB * KC / WG; e++) {
            let idx = li + WG * e;
            let bb = idx / KC;
            let kh = idx % KC;
            var hv = 0.0;
            if (b0 + bb < s.batch && k0 + kh < H) {
                hv = h_prev(b0 + bb, k0 + kh);
            }
            h_tile[idx] = hv;
        }
        for (var e = 0u; e < KC * TU / WG; e++) {
            let idx = li + WG * e;
            let kw = idx / TU;
            let uu = idx % TU;
            var wv = vec4<f32>(0.0);
            if (k0 + kw < H && u0 + uu < H) {
                wv = params[s.w_off + (k0 + kw) * H + u0 + uu];
            }
            w_tile[idx] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KC; kk++) {
            let w = w_tile[kk * TU + lid.x];
            for (var r = 0u; r < RB; r++) {
                acc[r] = fma(vec4<f32>(h_tile[(lid.y + WG_Y * r) * KC + kk]), w, acc[r]);
            }
        }
        workgroupBarrier();
    }

    let u = u0 + lid.x;
    for (var r = 0u; r < RB; r++) {
        let b = b0 + lid.y + WG_Y * r;
        if (u < H && b < s.batch) {
            finish(u, b, acc[r] + xproj[(b * s.seq + s.t) * H + u] + params[s.b_off + u]);
        }
    }
}

const RU: u32 = TU / WG_X;

// W_ihᵀ[k, u] and W_hhᵀ[k, u] (the four gates of unit u), from the parameters, or from the
// layer's weight texture in the texel variants (a constant: the other branch compiles away).
fn w_ih(k: u32, u: u32) -> vec4<f32> {
    if (TEXELS != 0u) {
        return textureLoad(weights, vec2<u32>(u, k), 0);
    }
    return params[s.wi_off + k * s.hidden + u];
}

fn w_hh(k: u32, u: u32) -> vec4<f32> {
    if (TEXELS != 0u) {
        return textureLoad(weights, vec2<u32>(u, s.input + k), 0);
    }
    return params[s.w_off + k * s.hidden + u];
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    s = step;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB + lid.y;
    let H = s.hidden;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    var units: array<u32, RU>;
    for (var j = 0u; j < RU; j++) {
        units[j] = min(u0 + WG_X * j, H - 1u);
    }
    var rows: array<u32, RB>;
    for (var r = 0u; r < RB; r++) {
        rows[r] = min(b0 + WG_Y * r, s.batch - 1u);
    }
    var acc: array<array<vec4<f32>, RU>, RB>;
    // x_t · W_ihᵀ
    for (var k = 0u; k < s.input; k++) {
        var w: array<vec4<f32>, RU>;
        for (var j = 0u; j < RU; j++) {
            w[j] = w_ih(k, units[j]);
        }
        for (var r = 0u; r < RB; r++) {
            let xv = vec4<f32>(input[(rows[r] * s.seq + s.t) * s.input + k]);
            for (var j = 0u; j < RU; j++) {
                acc[r][j] = fma(xv, w[j], acc[r][j]);
            }
        }
    }
    // + h_{t-1} · W_hhᵀ
    for (var k = 0u; k < H; k++) {
        var w: array<vec4<f32>, RU>;
        for (var j = 0u; j < RU; j++) {
            w[j] = w_hh(k, units[j]);
        }
        for (var r = 0u; r < RB; r++) {
            let hv = vec4<f32>(h_prev(rows[r], k));
            for (var j = 0u; j < RU; j++) {
                acc[r][j] = fma(hv, w[j], acc[r][j]);
            }
        }
    }
    for (var r = 0u; r < RB; r++) {
        let b = b0 + WG_Y * r;
        for (var j = 0u; j < RU; j++) {
            let u = u0 + WG_X * j;
            if (u < H && b < s.batch) {
                finish(u, b, acc[r][j] + params[s.bi_off + u] + params[s.b_off + u]);
            }
        }
    }
}

// The rest of the step for unit u < H of batch row b < B: `a` holds the four gates'
// pre-activations of u, xproj_t + b_hh + h_{t-1} · W_hhᵀ.
fn finish(u: u32, b: u32, a: vec4<f32>) {
    let H = s.hidden;
    let row = b * s.seq + s.t;
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh_stable(a.z);
    let o = sigmoid(a.w);
    let state = b * H + u;
    var c_prev: f32;
    if (s.t == 0u) {
        c_prev = state0[s.c_off + state];
    } else {
        c_prev = state_n[s.c_off + state];
    }
    let c = f * c_prev + i * g;
    let h = o * tanh_stable(c);
    y[row * H + u] = h;
    state_n[s.c_off + state] = c;
    if (s.t + 1u == s.seq) {
        state_n[s.h_off + state] = h;
    }
    if (s.save != 0u) {
        c_seq[row * H + u] = c;
        gates[row * H + u] = vec4<f32>(i, f, g, o);
    }
}
