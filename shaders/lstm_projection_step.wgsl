// The projection of one forward timestep of a projected layer (PyTorch's proj_size), for the
// whole batch and every direction, after lstm_forward_step.wgsl has written r = o ⊙ tanh(c).
// CPU twin: src/cpu/lstm_projection_step.rs.
//
//   h = r · W_hrᵀ        r [B, H], W_hr [O, H] (PyTorch's layout), h [B, O]
//
// It is a dispatch of its own because every output needs the whole row of r, which the step
// kernel's invocations (one per hidden unit) finish at different times: a second dispatch is
// the barrier between them. h is the layer's output at the row's time and, at its last step,
// its h_n; a finished row (s ≥ n_b) zeroes its output at time s and keeps its h_n.
//
// Layouts as in lstm_forward_step.wgsl: r in `saved` (after c and h_prev when `save`), y
// [B, T, D·O], state [h | c], lengths after h0 and c0 in state0.
//
// Invocation lx of a workgroup computes outputs lx, lx + WG_X, ... (RU of them) of TB rows,
// reading W_hr and r straight from storage.

@group(0) @binding(0) var<uniform> step: Step;
var<private> s: Step;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> state0: array<f32>;
@group(0) @binding(3) var<storage, read> saved: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> state_n: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    s = step;
    let d = wg.z;
    let j0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB;
    let H = s.hidden;
    let O = s.out;
    let w_hr = s.wr_off + 4u * d * s.dir_params;
    let r_at = select(0u, s.dirs * s.batch * s.seq * (H + O), s.save != 0u);
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let outs = tile_columns(j0, O);
    var lens: array<u32, TB>;
    var times: array<u32, TB>;
    // A tile of finished rows skips the sum (it only zeroes their outputs).
    var any_running = false;
    for (var r = 0u; r < TB; r++) {
        let b = min(b0 + r, s.batch - 1u);
        lens[r] = seq_len(s.len_off, b);
        times[r] = select(s.step, time_of(d, s.step, lens[r]), s.step < lens[r]);
        any_running = any_running || s.step < lens[r];
    }
    var acc: array<array<f32, RU>, TB>;
    for (var k = 0u; k < select(0u, H, any_running); k++) {
        var w: array<f32, RU>;
        for (var j = 0u; j < RU; j++) {
            w[j] = params[w_hr + outs[j] * H + k];
        }
        for (var r = 0u; r < TB; r++) {
            let b = min(b0 + r, s.batch - 1u);
            let rv = saved[r_at + dir_row(d, b, times[r], H) + k];
            for (var j = 0u; j < RU; j++) {
                acc[r][j] = fma(rv, w[j], acc[r][j]);
            }
        }
    }
    for (var r = 0u; r < TB; r++) {
        let b = b0 + r;
        for (var j = 0u; j < RU; j++) {
            let o = j0 + WG_X * j;
            if (o < O && b < s.batch) {
                let y_at = (b * s.seq + times[r]) * s.dirs * O + d * O + o;
                if (s.step < lens[r]) {
                    y[y_at] = acc[r][j];
                    if (s.step + 1u == lens[r]) {
                        state_n[s.h_off + (d * s.batch + b) * O + o] = acc[r][j];
                    }
                } else {
                    y[y_at] = 0.0;
                }
            }
        }
    }
}
