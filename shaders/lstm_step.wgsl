// What the two step kernels (lstm_forward_step.wgsl, lstm_backward_step.wgsl) share: the
// per-step uniform and the tiling. Host twin: `StepParams` in src/gpu/kernels/lstm_step.rs, which
// also sets the tile sizes. This file is prepended to both.
//
// One uniform entry per (layer, step), selected with a dynamic offset, so nothing is written
// between steps. Offsets are in elements: h_off/c_off into [2, L, B, H] state buffers, w_off
// and b_off (W_hh, b_hh), wi_off and bi_off (W_ih, b_ih), in vec4 units, into the parameter
// arena. `input` is the layer's input size (only the forward step's direct entry, main_direct,
// reads it and the W_ih/b_ih offsets).

struct Step {
    batch: u32, seq: u32, hidden: u32, t: u32,
    h_off: u32, c_off: u32, save: u32, w_off: u32,
    b_off: u32, input: u32, wi_off: u32, bi_off: u32,
}

// A workgroup owns TU hidden units x TB batch rows with WG_X = TU by WG_Y invocations, each one
// unit and RB = TB / WG_Y rows (ly, ly + WG_Y, ...). The reduction is staged KC elements at a time
// in workgroup memory. TU, TB, KC, WG_X and WG_Y come from the descriptor.
const WG: u32 = WG_X * WG_Y;
const RB: u32 = TB / WG_Y;
