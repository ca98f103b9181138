// What the step kernels (lstm_forward_step.wgsl, lstm_backward_step.wgsl,
// lstm_projection_step.wgsl, lstm_backward_hidden_step.wgsl) share: the per-step uniform, the
// tiling, and where each row of the batch stands in its sequence. Host twin: `StepParams` in
// src/gpu/kernels/lstm_step.rs, which also sets the tile sizes. This file is prepended to all.
//
// One uniform entry per (layer, step), selected with a dynamic offset, so nothing is written
// between steps. A dispatch runs every direction of its layer: direction d = workgroup_id.z
// (D = 2 when bidirectional), whose parameters sit `dir_params` vec4s after direction 0's.
//
// Sizes: H = hidden (units, the width of c and of the gates), O = out (the width of h: the
// projection's size, or H when there is none, so a layer is projected exactly when O < H), D =
// dirs, I = input (the layer's input width). Offsets, in elements:
//   h_off, c_off  this layer's h [D, B, O] and c [D, B, H] in [h (L·D·B·O) | c (L·D·B·H)] state
//                 buffers (h0/c0, h_n/c_n, dh/dc)
//   len_off       the batch's lengths [B] (u32 bits) in the state0 buffer, after h0 and c0
//   w_off, b_off  W_hh [O, H] vec4 and b_hh [H] vec4 of direction 0 in the parameter arena
//   wi_off, bi_off  W_ih [I, H] vec4 and b_ih [H] vec4 (vec4 units, as the last three)
//   wr_off        W_hr [O, H] f32 (PyTorch's layout), in f32 units; only when projected
//   dir_params    vec4s from direction 0's parameters to direction 1's (f32 offsets: 4x)
// `step` is the processing step s; `dh0` marks the extra backward dispatch after step 0 that
// only sends dgates_0 back through W_hh into dh0.
struct Step {
    batch: u32, seq: u32, hidden: u32, out: u32,
    step: u32, dirs: u32, save: u32, input: u32,
    h_off: u32, c_off: u32, len_off: u32, dh0: u32,
    w_off: u32, b_off: u32, wi_off: u32, bi_off: u32,
    wr_off: u32, dir_params: u32, pad0: u32, pad1: u32,
}

// A workgroup owns TU hidden units x TB batch rows with WG_X = TU by WG_Y invocations, each one
// unit and RB = TB / WG_Y rows (ly, ly + WG_Y, ...). The reduction is staged KC elements at a time
// in workgroup memory. TU, TB, KC, WG_X and WG_Y come from the descriptor.
const WG: u32 = WG_X * WG_Y;
const RB: u32 = TB / WG_Y;

// The direct tiles (one row of invocations) give each invocation RU columns of the tile (units,
// or outputs of a projection): j0, j0 + WG_X, ... Those past the last of `width` columns read
// a clamped copy of it (in range) and store nothing.
const RU: u32 = TU / WG_X;

fn tile_columns(j0: u32, width: u32) -> array<u32, RU> {
    var columns: array<u32, RU>;
    for (var j = 0u; j < RU; j++) {
        columns[j] = min(j0 + WG_X * j, width - 1u);
    }
    return columns;
}

// Where a row stands. Sequence b has n = lengths[b] steps (1 ≤ n ≤ T). Processing step s of the
// forward direction reads time s, of the reverse direction time n - 1 - s; for s ≥ n the row is
// finished: its state stays as it is, and time s (past its end) is padding, which the kernels
// zero where they would have written it. Twin: `cpu::general_lstm::time_of_step`.
fn seq_len(lengths_at: u32, b: u32) -> u32 {
    return bitcast<u32>(state0[lengths_at + b]);
}

fn time_of(d: u32, s: u32, n: u32) -> u32 {
    return select(n - 1u - s, s, d == 0u);
}

// Element offset of row b, time t, direction d in a [D, B, T, width] per-direction buffer.
fn dir_row(d: u32, b: u32, t: u32, width: u32) -> u32 {
    return ((d * s.batch + b) * s.seq + t) * width;
}
