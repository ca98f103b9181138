// The direct forward step of lstm_forward_step.wgsl (`main_direct`) with the rows' inputs shared
// through the subgroup. CPU twin: src/cpu/lstm_forward_step.rs, as for lstm_forward_step.wgsl,
// which comes first and provides the bindings, `finish`, `products` and the weight loads.
//
// A workgroup is one subgroup of 8 invocations (the host runs this kernel only on devices whose
// subgroups are exactly 8 wide: src/gpu/tuning.rs) and owns TU units of TB = 8 rows; invocation
// `lid.x` owns units lid.x, lid.x + 8, ... (RU of them) of all 8 rows, as in `main_direct`. The
// rows are the same for every invocation, so in `main_direct` each of them loads all 8 rows'
// x_t[b, k] and h_prev[b, k] itself; here lane s of the subgroup loads row s's only, and every
// invocation takes the other 7 from the lanes that loaded them (`shared_rows`,
// subgroup_rows.wgsl). A software adapter pays per load and per lane, and a broadcast is a
// register shuffle. The sums are `main_direct`'s, in the same order, so the step has its bits.

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
    // Indices clamped into the matrix: the edge invocations compute a copy and store nothing.
    let units = tile_columns(u0, H);
    var rows: array<Row, RB>;
    var any_running = false;
    for (var r = 0u; r < RB; r++) {
        rows[r] = row_at(d, min(b0 + r, s.batch - 1u));
        any_running = any_running || rows[r].running;
    }
    // This lane's row b0 + lane, where it reads x_t and h_prev.
    let b_mine = min(b0 + lane, s.batch - 1u);
    let row_mine = row_at(d, b_mine);
    let x_at = (b_mine * s.seq + row_mine.t) * s.input;
    let h_at = h_prev_at(d, b_mine, row_mine);
    var acc: array<array<vec4<f32>, RU>, RB>;
    // The rows are the workgroup's, so this branch is the same for every lane.
    if (any_running) {
        for (var k = 0u; k < s.input; k++) {
            var w: array<vec4<f32>, RU>;
            for (var j = 0u; j < RU; j++) {
                w[j] = w_ih(d, k, units[j]);
            }
            products(&acc, shared_rows(input_at(x_at + k)), w);
        }
        // h_prev from `state0` at the first step, from `y` after, each in a loop of its own (see
        // `main_direct`).
        if (s.step == 0u) {
            for (var k = 0u; k < s.out; k++) {
                products(&acc, shared_rows(state0[h_at + k]), w_hh_row(d, k, units));
            }
        } else {
            for (var k = 0u; k < s.out; k++) {
                products(&acc, shared_rows(y[h_at + k]), w_hh_row(d, k, units));
            }
        }
    }
    finish_tile(d, u0, b0, units, rows, acc);
}
