// One forward timestep of one layer, for the whole batch and every direction. CPU twin:
// src/cpu/lstm_forward_step.rs (the math of a step), src/cpu/general_lstm.rs (directions,
// lengths and projection around it).
//
//   a   = xproj_t + b_hh + h_prev · W_hhᵀ          xproj_t = x_t · W_ihᵀ + b_ih (matmul.wgsl)
//   i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//   c   = f ⊙ c_prev + i ⊙ g
//   r   = o ⊙ tanh(c)
//   h   = r                       (projected layers: h = r · W_hrᵀ, lstm_projection_step.wgsl)
//
// Row b of direction d at processing step s reads time t = time_of(d, s, n_b) (lstm_step.wgsl);
// h_prev is h0 at s = 0, else its own output of step s - 1; a finished row (s ≥ n_b) keeps its
// state and zeroes its output at time s.
//
// Layouts. Gates are interleaved: a vec4 holds (i, f, g, o) of one hidden unit, so one invocation
// owns all four gates of a unit and the cell update needs no exchange between invocations.
//   xproj   [D, B, T, H] vec4   (staged entry only)
//   y       [B, T, D·O]         the layer's output, [forward | reverse] at each time
//   w_hh    [O, H] vec4 = W_hhᵀ with the four gate rows of unit u side by side; b_hh [H] vec4
//   w_ih    [I, H] vec4, b_ih [H] vec4: the same layouts, read by main_direct only
//   weights texture [D·(I + O) rows, H texels]: per direction W_ihᵀ then W_hhᵀ, the same layouts
//           row by row, read instead of w_ih and w_hh by main_direct where TEXELS = 1
//           (src/gpu/weight_texels.rs)
//   input   [B, T, I]            the layer's input (x, or the layer below's output): main_direct
//   state0  [h0 (L·D·B·O) | c0 (L·D·B·H) | lengths (B, u32 bits)]
//   state_n [h_n | c_n]          the c part holds the running c meanwhile
//   saved   [c D·B·T·H | h_prev D·B·T·O | r D·B·T·H] when `save` (training keeps them for
//           backward; h_prev pairs each step with its input for dW_hh); else only r, [D, B, T, H],
//           where the layer is projected (the projection step reads it)
//   gates   [D, B, T, H] vec4    (i, f, g, o), when `save`
// The uniform's struct `Step` comes from lstm_step.wgsl.
//
// Two entry points share the gate math (`finish`) and differ in how they sum the products:
//   main              a workgroup owns TU units x TB batch rows; invocation (lx, ly) computes unit
//                     lx for rows ly, ly + WG_Y, ... (RB of them). The reduction over k is staged
//                     KC at a time in workgroup memory, where each element serves the whole tile.
//                     xproj_t comes from one GEMM per direction over the whole sequence, made
//                     before the steps.
//   main_direct       invocation (lx, ly) computes units lx, lx + WG_X, ... (RU of them) for rows
//                     ly, ly + WG_Y, ... (RB), reading the weights, x_t and h_prev straight from
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
@group(0) @binding(6) var<storage, read_write> saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> gates: array<vec4<f32>>;
// The layer's input as vec4s, so that the tall variants can load four features of a row at once
// where each row starts on a vec4; the others read it one feature at a time (`input_at`). The
// buffers behind it hold a whole number of vec4s (src/gpu/plan/forward.rs).
@group(0) @binding(8) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(9) var weights: texture_storage_2d<rgba32float, read>;

var<workgroup> h_tile: array<f32, TB * KC>;        // [TB][KC]
var<workgroup> w_tile: array<vec4<f32>, KC * TU>;  // [KC][TU]

// Where row b stands at this step in direction d: its length, whether it is still running and
// the time it reads.
struct Row {
    n: u32,
    running: bool,
    t: u32,
}

fn row_at(d: u32, b: u32) -> Row {
    return row_of_length(d, seq_len(s.len_off, b));
}

// Where a row of n steps stands.
fn row_of_length(d: u32, n: u32) -> Row {
    let running = s.step < n;
    return Row(n, running, select(s.step, time_of(d, s.step, n), running));
}

// h_prev[b, k] of direction d: h0 at the first step, else the row's output of the step before
// (time t - 1 forward, t + 1 reverse).
fn h_prev(d: u32, b: u32, r: Row, k: u32) -> f32 {
    let at = h_prev_at(d, b, r) + k;
    if (s.step == 0u) {
        return state0[at];
    }
    return y[at];
}

// Where h_prev[b, 0] of direction d lies: in `state0` at the first step, else in `y`. A finished
// row gets time 0 (in range; nothing uses what it reads there).
fn h_prev_at(d: u32, b: u32, r: Row) -> u32 {
    if (s.step == 0u) {
        return s.h_off + (d * s.batch + b) * s.out;
    }
    let t_prev = select(0u, time_of(d, s.step - 1u, r.n), r.running);
    return (b * s.seq + t_prev) * s.dirs * s.out + d * s.out;
}

// Element i of the layer's input [B, T, I].
fn input_at(i: u32) -> f32 {
    return input[i / 4u][i % 4u];
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
    let O = s.out;
    let w_off = s.w_off + d * s.dir_params;

    var acc: array<vec4<f32>, RB>;
    for (var k0 = 0u; k0 < O; k0 += KC) {
        for (var e = 0u; e < TB * KC / WG; e++) {
            let idx = li + WG * e;
            let bb = idx / KC;
            let kh = idx % KC;
            var hv = 0.0;
            if (b0 + bb < s.batch && k0 + kh < O) {
                let r = row_at(d, b0 + bb);
                if (r.running) {
                    hv = h_prev(d, b0 + bb, r, k0 + kh);
                }
            }
            h_tile[idx] = hv;
        }
        for (var e = 0u; e < KC * TU / WG; e++) {
            let idx = li + WG * e;
            let kw = idx / TU;
            let uu = idx % TU;
            var wv = vec4<f32>(0.0);
            if (k0 + kw < O && u0 + uu < H) {
                wv = params[w_off + (k0 + kw) * H + u0 + uu];
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

    // Copied out with constant indices first (the same in main_direct): `finish` is long, and
    // a loop around it that a compiler does not unroll would index `acc` dynamically, which
    // moves it out of registers, the product loops' accumulators with it.
    var pre: array<vec4<f32>, RB>;
    for (var r = 0u; r < RB; r++) {
        pre[r] = acc[r];
    }
    let u = u0 + lid.x;
    for (var r = 0u; r < RB; r++) {
        let b = b0 + lid.y + WG_Y * r;
        if (u < H && b < s.batch) {
            let row = row_at(d, b);
            var a = pre[r];
            if (row.running) {
                a += xproj[dir_row(d, b, row.t, H) + u] + params[s.b_off + d * s.dir_params + u];
            }
            finish(d, u, b, row, a);
        }
    }
}

// W_ihᵀ[k, u] and W_hhᵀ[k, u] (the four gates of unit u) of direction d, from the parameters,
// or from the layer's weight texture in the texel variants (a constant: the other branch
// compiles away).
fn w_ih(d: u32, k: u32, u: u32) -> vec4<f32> {
    if (TEXELS != 0u) {
        return textureLoad(weights, vec2<u32>(u, d * (s.input + s.out) + k));
    }
    return params[s.wi_off + d * s.dir_params + k * s.hidden + u];
}

fn w_hh(d: u32, k: u32, u: u32) -> vec4<f32> {
    if (TEXELS != 0u) {
        return textureLoad(weights, vec2<u32>(u, d * (s.input + s.out) + s.input + k));
    }
    return params[s.w_off + d * s.dir_params + k * s.hidden + u];
}

// W_hhᵀ[k, u] of direction d for the tile's units.
fn w_hh_row(d: u32, k: u32, units: array<u32, RU>) -> array<vec4<f32>, RU> {
    var w: array<vec4<f32>, RU>;
    for (var j = 0u; j < RU; j++) {
        w[j] = w_hh(d, k, units[j]);
    }
    return w;
}

// One k of a direct tile's sums: acc[r][j] += v[r] · w[j] (the four gates of unit j at once).
fn products(
    acc: ptr<function, array<array<vec4<f32>, RU>, RB>>,
    v: array<f32, RB>,
    w: array<vec4<f32>, RU>,
) {
    for (var r = 0u; r < RB; r++) {
        let v4 = vec4<f32>(v[r]);
        for (var j = 0u; j < RU; j++) {
            (*acc)[r][j] = fma(v4, w[j], (*acc)[r][j]);
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_direct(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    s = step;
    let d = wg.z;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB + lid.y;
    let H = s.hidden;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let units = tile_columns(u0, H);
    var rows: array<Row, RB>;
    var bs: array<u32, RB>;
    var any_running = false;
    for (var r = 0u; r < RB; r++) {
        bs[r] = min(b0 + WG_Y * r, s.batch - 1u);
        rows[r] = row_at(d, bs[r]);
        any_running = any_running || rows[r].running;
    }
    var acc: array<array<vec4<f32>, RU>, RB>;
    // Sequences that have all finished cost no products: the invocation only zeroes their
    // outputs. (The direct tiles' invocations of a workgroup share their rows, so a workgroup
    // of finished rows skips the loops as a whole.)
    if (any_running) {
        // x_t · W_ihᵀ (finished rows read time s, in range, and store nothing of it)
        for (var k = 0u; k < s.input; k++) {
            var w: array<vec4<f32>, RU>;
            for (var j = 0u; j < RU; j++) {
                w[j] = w_ih(d, k, units[j]);
            }
            var xs: array<f32, RB>;
            for (var r = 0u; r < RB; r++) {
                xs[r] = input_at((bs[r] * s.seq + rows[r].t) * s.input + k);
            }
            products(&acc, xs, w);
        }
        // + h_prev · W_hhᵀ, row r's h_prev being the O floats from h_at[r] (h_prev_at). The first
        // step reads them from `state0`, the others from `y`, each in a loop of its own: a
        // software adapter runs both sides of a branch inside the loop, loads included (on
        // lavapipe at B128 T28 I28 H128 the forward took 2.1 ms a step that way, 1.7 ms so).
        var h_at: array<u32, RB>;
        for (var r = 0u; r < RB; r++) {
            h_at[r] = h_prev_at(d, bs[r], rows[r]);
        }
        if (s.step == 0u) {
            for (var k = 0u; k < s.out; k++) {
                var hs: array<f32, RB>;
                for (var r = 0u; r < RB; r++) {
                    hs[r] = state0[h_at[r] + k];
                }
                products(&acc, hs, w_hh_row(d, k, units));
            }
        } else {
            for (var k = 0u; k < s.out; k++) {
                var hs: array<f32, RB>;
                for (var r = 0u; r < RB; r++) {
                    hs[r] = y[h_at[r] + k];
                }
                products(&acc, hs, w_hh_row(d, k, units));
            }
        }
    }
    finish_tile(d, u0, b0, units, rows, acc);
}

// The direct steps' end: `finish` for each of the invocation's units u0 + WG_X·j and rows
// b0 + WG_Y·r, from the sums `acc` and the unit's biases, loaded once for all its rows.
fn finish_tile(
    d: u32,
    u0: u32,
    b0: u32,
    units: array<u32, RU>,
    rows: array<Row, RB>,
    acc: array<array<vec4<f32>, RU>, RB>,
) {
    let bias = s.dir_params * d;
    // Copied out with constant indices first (see `main`).
    var pre: array<vec4<f32>, RB * RU>;
    for (var r = 0u; r < RB; r++) {
        for (var j = 0u; j < RU; j++) {
            pre[r * RU + j] = acc[r][j];
        }
    }
    // b_ih and b_hh of each unit (clamped into the layer; an edge invocation's copy is unused).
    var b_ih: array<vec4<f32>, RU>;
    var b_hh: array<vec4<f32>, RU>;
    for (var j = 0u; j < RU; j++) {
        b_ih[j] = params[s.bi_off + bias + units[j]];
        b_hh[j] = params[s.b_off + bias + units[j]];
    }
    for (var r = 0u; r < RB; r++) {
        let b = b0 + WG_Y * r;
        for (var j = 0u; j < RU; j++) {
            let u = u0 + WG_X * j;
            if (u < s.hidden && b < s.batch) {
                finish(d, u, b, rows[r], pre[r * RU + j] + b_ih[j] + b_hh[j]);
            }
        }
    }
}

// The rest of the step for unit u < H of batch row b < B in direction d: `a` holds the four
// gates' pre-activations of u, xproj_t + b_hh + h_prev · W_hhᵀ (meaningless for a finished row).
// Returns r (0 for a finished row), which only the tall step uses.
//
// A finished row (time s past its end; its `t` is s) computes the same values unused, keeps its
// state, and writes zero where a running row writes its output: y at time s (the projection step
// writes it in projected layers) and, for backward, its h_prev there. A software adapter runs
// every branch of a lane's code, taken or not, and pays for each load or store it holds, so the
// two cases share their stores.
fn finish(d: u32, u: u32, b: u32, row: Row, a: vec4<f32>) -> f32 {
    let H = s.hidden;
    let O = s.out;
    // Constant false where the kernel serves no projected layers (PROJECTS = 0) or runs
    // inference only (SAVES = 0): the compiler then drops those stores from the code.
    let projected = PROJECTS != 0u && O < H;
    let save = SAVES != 0u && s.save != 0u;
    let i = sigmoid(a.x);
    let f = sigmoid(a.y);
    let g = tanh_stable(a.z);
    let o = sigmoid(a.w);
    let state = (d * s.batch + b) * H + u;
    var c_prev: f32;
    if (s.step == 0u) {
        c_prev = state0[s.c_off + state];
    } else {
        c_prev = state_n[s.c_off + state];
    }
    let c = f * c_prev + i * g;
    let r = select(0.0, o * tanh_stable(c), row.running);
    let rows_h = s.dirs * s.batch * s.seq * H;
    let at = dir_row(d, b, row.t, H) + u;
    if (projected) {
        if (row.running) {
            saved[select(0u, rows_h + s.dirs * s.batch * s.seq * O, save) + at] = r;
        }
    } else {
        y[(b * s.seq + row.t) * s.dirs * O + d * O + u] = r;
        if (row.running && s.step + 1u == row.n) {
            state_n[s.h_off + state] = r;
        }
    }
    if (row.running) {
        state_n[s.c_off + state] = c;
    }
    if (save) {
        if (row.running) {
            saved[at] = c;
            gates[at] = vec4<f32>(i, f, g, o);
        }
        if (u < O) {
            let h = select(0.0, h_prev(d, b, row, u), row.running);
            saved[rows_h + dir_row(d, b, row.t, O) + u] = h;
        }
    }
    return r;
}
