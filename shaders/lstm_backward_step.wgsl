// One backward timestep of one layer, for the whole batch. CPU twin: src/cpu/lstm_backward_step.rs.
//
//   dh    = dy_t + (t = T-1 ? dh_n : dgates_{t+1} · W_hh)
//   dc    = dc_later + dh ⊙ o ⊙ (1 - tanh²(c_t))          dc_later = dc_n at t = T-1
//   da_i  = dc ⊙ g ⊙ i(1 - i)          da_f = dc ⊙ c_{t-1} ⊙ f(1 - f)
//   da_g  = dc ⊙ i ⊙ (1 - g²)          da_o = dh ⊙ tanh(c_t) ⊙ o(1 - o)
//   dc_{t-1} = dc ⊙ f
//
// Layouts as in lstm_forward_step.wgsl (gate vec4s (i, f, g, o) per unit). With that layout the
// recurrent term is dh[b, u] = Σ_u' dot(dgates_{t+1}[b, u'], w_hh[u, u']): row u of the stored
// W_hhᵀ holds, for every unit u', the four weights from h[u] into the gates of unit u'.
//   dy       [B, T, H]            gradient arriving at h_t from above
//   d_state  [2, L, B, H]         on entry (dh_n, dc_n); the c half carries dc between steps and
//                                 ends as dc0 (matmul.wgsl then writes dh0 into the h half)
//   d_gates  [B, T, H] vec4       dL/da for every step, kept for the weight-gradient GEMMs
//
// The uniform's struct `Step` and the tiling (TU units x TB batch rows per workgroup, RB rows per
// invocation, KC-wide chunks of the reduction) come from lstm_step.wgsl, as in the forward step.
//
// Two entry points share the gate derivatives (`finish`) and differ in how they sum the
// recurrent term, as the forward step's do:
//   main         invocation (lx, ly) computes unit lx for rows ly, ly + WG_Y, ... (RB of them),
//                staging dgates_{t+1} and W_hh KC at a time in workgroup memory.
//   main_direct  one row of invocations: invocation lx computes units lx, lx + WG_X, ... (RU of
//                them) for all TB rows of the tile, reading W_hh and dgates_{t+1} straight from
//                storage with no workgroup memory and no barrier. Every invocation reads the
//                same rows of dgates_{t+1}, each weight it loads serves its TB rows. It serves
//                the batches whose forward step runs direct (src/gpu/tuning.rs).

@group(0) @binding(0) var<uniform> step: Step;
// The uniform, copied once per invocation (see lstm_forward_step.wgsl).
var<private> s: Step;
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gates: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> c_seq: array<f32>;
@group(0) @binding(4) var<storage, read> state0: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read_write> d_state: array<f32>;
@group(0) @binding(7) var<storage, read_write> d_gates: array<vec4<f32>>;

var<workgroup> dg_tile: array<vec4<f32>, TB * KC>;       // [TB][KC]
var<workgroup> w_tile: array<vec4<f32>, TU * (KC + 1u)>;  // [TU][KC + 1], padded against bank conflicts

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
    let last = s.t + 1u == s.seq;

    // Recurrent term dgates_{t+1} · W_hh (absent at the last step).
    var acc: array<f32, RB>;
    if (!last) {
        for (var k0 = 0u; k0 < H; k0 += KC) {
            for (var e = 0u; e < TB * KC / WG; e++) {
                let idx = li + WG * e;
                let bb = idx / KC;
                let kg = idx % KC;
                var gv = vec4<f32>(0.0);
                if (b0 + bb < s.batch && k0 + kg < H) {
                    gv = d_gates[((b0 + bb) * s.seq + s.t + 1u) * H + k0 + kg];
                }
                dg_tile[idx] = gv;
            }
            for (var e = 0u; e < TU * KC / WG; e++) {
                let idx = li + WG * e;
                let uu = idx / KC;
                let kw = idx % KC;
                var wv = vec4<f32>(0.0);
                if (u0 + uu < H && k0 + kw < H) {
                    wv = params[s.w_off + (u0 + uu) * H + k0 + kw];
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
    }

    let u = u0 + lid.x;
    if (u >= H) {
        return;
    }
    for (var r = 0u; r < RB; r++) {
        let b = b0 + lid.y + WG_Y * r;
        if (b < s.batch) {
            finish(u, b, acc[r]);
        }
    }
}

const RU: u32 = TU / WG_X;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    s = step;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB;
    let H = s.hidden;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    var units: array<u32, RU>;
    for (var j = 0u; j < RU; j++) {
        units[j] = min(u0 + WG_X * j, H - 1u);
    }
    var rows: array<u32, TB>;
    for (var r = 0u; r < TB; r++) {
        rows[r] = min(b0 + r, s.batch - 1u);
    }
    // Recurrent term dgates_{t+1} · W_hh (absent at the last step).
    var acc: array<array<f32, RU>, TB>;
    if (s.t + 1u != s.seq) {
        for (var k = 0u; k < H; k++) {
            var w: array<vec4<f32>, RU>;
            for (var j = 0u; j < RU; j++) {
                w[j] = params[s.w_off + units[j] * H + k];
            }
            for (var r = 0u; r < TB; r++) {
                let dg = d_gates[(rows[r] * s.seq + s.t + 1u) * H + k];
                for (var j = 0u; j < RU; j++) {
                    acc[r][j] += dot(dg, w[j]);
                }
            }
        }
    }
    for (var r = 0u; r < TB; r++) {
        let b = b0 + r;
        for (var j = 0u; j < RU; j++) {
            let u = u0 + WG_X * j;
            if (u < H && b < s.batch) {
                finish(u, b, acc[r][j]);
            }
        }
    }
}

// The rest of the step for unit u < H of batch row b < B: `recurrent` is dgates_{t+1} · W_hh at
// (b, u) (unused at the last step, where dh_n stands in for it).
fn finish(u: u32, b: u32, recurrent: f32) {
    let H = s.hidden;
    let row = b * s.seq + s.t;
    let state = b * H + u;
    var dh = dy[row * H + u];
    if (s.t + 1u == s.seq) {
        dh += d_state[s.h_off + state];
    } else {
        dh += recurrent;
    }
    let gt = gates[row * H + u];
    let i = gt.x;
    let f = gt.y;
    let g = gt.z;
    let o = gt.w;
    let tc = tanh_stable(c_seq[row * H + u]);
    var c_prev: f32;
    if (s.t == 0u) {
        c_prev = state0[s.c_off + state];
    } else {
        c_prev = c_seq[(row - 1u) * H + u];
    }
    let dc = d_state[s.c_off + state] + dh * o * (1.0 - tc * tc);
    d_gates[row * H + u] = vec4<f32>(
        dc * g * i * (1.0 - i),
        dc * c_prev * f * (1.0 - f),
        dc * i * (1.0 - g * g),
        dh * tc * o * (1.0 - o),
    );
    d_state[s.c_off + state] = dc * f;
}
