// Column sums of a row-major [rows, cols] matrix, written to two places. CPU twin:
// src/cpu/column_sum.rs.
//
//   out[out_off0 + n] = out[out_off1 + n] = Σ_r input[in_off + r · cols + n]
//
// The LSTM's bias gradients: db_ih = db_hh = Σ over all T·B rows of dgates. One invocation per
// column adds its rows in a fixed order (four interleaved partial sums), so the result is the same
// bit for bit on every run.

struct Params {
    rows: u32, cols: u32, in_off: u32, out_off0: u32,
    out_off1: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG_X, WG_Y, WG_Z)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.cols) {
        return;
    }
    var acc = vec4<f32>(0.0);
    var r = 0u;
    for (; r + 4u <= p.rows; r += 4u) {
        let at = p.in_off + r * p.cols + n;
        acc += vec4<f32>(input[at], input[at + p.cols], input[at + 2u * p.cols], input[at + 3u * p.cols]);
    }
    for (; r < p.rows; r++) {
        acc.x += input[p.in_off + r * p.cols + n];
    }
    let total = (acc.x + acc.y) + (acc.z + acc.w);
    out[p.out_off0 + n] = total;
    out[p.out_off1 + n] = total;
}
