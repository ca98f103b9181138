// The gradient on h of one backward timestep of a projected layer, for the whole batch and every
// direction, before lstm_backward_step.wgsl sends it through the projection and the gates. CPU
// twin: src/cpu/lstm_backward_hidden_step.rs.
//
//   dh_t = dy_t + (last step of the row ? dh_n : dgates_next · W_hh)      [B, O]
//
// In a projected layer h = r · W_hrᵀ has O < H features, and the step kernel's invocations (one
// per hidden unit) need the whole row of dh to form dr = dh · W_hr: a dispatch of its own is
// the barrier between the two. A finished row (s ≥ n_b) writes zero at time s (past its end).
// With `dh0` set (the extra dispatch after step 0) it writes dh0 = dgates_0 · W_hh instead.
//
// Layouts as in lstm_backward_step.wgsl: dy [B, T, D·O], d_gates [D, B, T, H] vec4, W_hh
// [O, H] vec4 in the arena, d_state [dh | dc], dh_seq [D, B, T, O].
//
// Invocation lx of a workgroup computes outputs lx, lx + WG_X, ... (RU of them) of TB rows,
// reading W_hh and dgates_next straight from storage.

@group(0) @binding(0) var<uniform> step: Step;
var<private> s: Step;
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> state0: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> d_gates: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> d_state: array<f32>;
@group(0) @binding(6) var<storage, read_write> dh_seq: array<f32>;

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
    let w_off = s.w_off + d * s.dir_params;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let outs = tile_columns(j0, O);
    var lens: array<u32, TB>;
    var has_next: array<bool, TB>;
    var t_next: array<u32, TB>;
    // A tile whose rows have no later step (finished, or at their last step) skips the sum.
    var any_next = false;
    for (var r = 0u; r < TB; r++) {
        let n = seq_len(s.len_off, min(b0 + r, s.batch - 1u));
        lens[r] = n;
        if (s.dh0 != 0u) {
            has_next[r] = true;
            t_next[r] = time_of(d, 0u, n);
        } else {
            has_next[r] = s.step + 1u < n;
            t_next[r] = select(0u, time_of(d, s.step + 1u, n), has_next[r]);
        }
        any_next = any_next || has_next[r];
    }
    // dgates_next · W_hh: row j of the stored W_hhᵀ holds the four weights from h[j] into the
    // gates of every unit.
    var acc: array<array<f32, RU>, TB>;
    for (var u = 0u; u < select(0u, H, any_next); u++) {
        var w: array<vec4<f32>, RU>;
        for (var j = 0u; j < RU; j++) {
            w[j] = params[w_off + outs[j] * H + u];
        }
        for (var r = 0u; r < TB; r++) {
            var dg = vec4<f32>(0.0);
            if (has_next[r]) {
                dg = d_gates[dir_row(d, min(b0 + r, s.batch - 1u), t_next[r], H) + u];
            }
            for (var j = 0u; j < RU; j++) {
                acc[r][j] += dot(dg, w[j]);
            }
        }
    }
    for (var r = 0u; r < TB; r++) {
        let b = b0 + r;
        for (var j = 0u; j < RU; j++) {
            let o = j0 + WG_X * j;
            if (o >= O || b >= s.batch) {
                continue;
            }
            let state = s.h_off + (d * s.batch + b) * O + o;
            let n = lens[r];
            if (s.dh0 != 0u) {
                d_state[state] = acc[r][j];
            } else if (s.step >= n) {
                dh_seq[dir_row(d, b, s.step, O) + o] = 0.0;
            } else {
                let t = time_of(d, s.step, n);
                var dh = dy[(b * s.seq + t) * s.dirs * O + d * O + o];
                if (s.step + 1u == n) {
                    dh += d_state[state];
                } else {
                    dh += acc[r][j];
                }
                dh_seq[dir_row(d, b, t, O) + o] = dh;
            }
        }
    }
}
