// The direct backward step of lstm_backward_step.wgsl (`main_direct`) with the rows' inputs
// shared through the subgroup. CPU twin: src/cpu/lstm_backward_step.rs, as for
// lstm_backward_step.wgsl, which comes first and provides the bindings, `next_of` and `finish`.
//
// A workgroup is one subgroup of 8 invocations (the host runs this kernel only on devices whose
// subgroups are exactly 8 wide: src/gpu/tuning.rs) and owns TU units of TB = 8 rows; invocation
// `lid.x` owns units lid.x, lid.x + 8, ... (RU of them) of all 8 rows, as in `main_direct`. There
// every invocation loads all 8 rows' dgates_next[b, k] (or dh_t[b, k]) itself; here lane s of
// the subgroup loads row s's only, and every invocation takes the other 7 from the lanes that
// loaded them (`shared_rows`, subgroup_rows.wgsl). The sums are `main_direct`'s, in the same
// order, so the step has its bits.

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main_subgroup(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    s = step;
    let d = wg.z;
    let u0 = wg.x * TU + lid.x;
    let b0 = wg.y * TB;
    let H = s.hidden;
    let O = s.out;
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let units = tile_columns(u0, H);
    // Which rows need the product, as in `main_direct` (the same for every lane).
    var needs: array<bool, TB>;
    var needed = false;
    for (var r = 0u; r < TB; r++) {
        let next = next_of(d, min(b0 + r, s.batch - 1u));
        needs[r] = b0 + r < s.batch && select(next.has, s.step < next.n, O < H);
        needed = needed || needs[r];
    }
    // This lane's row, where it reads dgates_next (or dh_t): in range even where the row needs
    // nothing (its value is then not used).
    let b_mine = min(b0 + lane, s.batch - 1u);
    let next_mine = next_of(d, b_mine);
    var acc: array<array<f32, RU>, TB>;
    if (!needed) {
        // Nothing to sum.
    } else if (O < H) {
        // Projected: dr = dh_t · W_hr, W_hr [O, H] as f32 in the arena (4 per vec4).
        let w_hr = s.wr_off + 4u * d * s.dir_params;
        let dh_at = dir_row(d, b_mine, time_of(d, s.step, next_mine.n), O);
        for (var k = 0u; k < O; k++) {
            var w: array<f32, RU>;
            for (var j = 0u; j < RU; j++) {
                let at = w_hr + k * H + units[j];
                w[j] = params[at / 4u][at % 4u];
            }
            let dh = shared_rows(dh_seq[dh_at + k]);
            for (var r = 0u; r < TB; r++) {
                if (needs[r]) {
                    for (var j = 0u; j < RU; j++) {
                        acc[r][j] = fma(dh[r], w[j], acc[r][j]);
                    }
                }
            }
        }
    } else {
        // Recurrent term dgates_next · W_hh.
        let dg_at = dir_row(d, b_mine, next_mine.t, H);
        for (var k = 0u; k < H; k++) {
            var w: array<vec4<f32>, RU>;
            for (var j = 0u; j < RU; j++) {
                w[j] = w_hh_t(d, units[j], k);
            }
            let dg = shared_rows4(d_gates[dg_at + k]);
            for (var r = 0u; r < TB; r++) {
                if (needs[r]) {
                    for (var j = 0u; j < RU; j++) {
                        acc[r][j] += dot(dg[r], w[j]);
                    }
                }
            }
        }
    }
    finish_tile(d, u0, b0, acc);
}
