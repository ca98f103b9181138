//! How parameters sit in GPU memory: one flat "arena" buffer, gates interleaved.
//!
//! PyTorch stores `weight_ih` `[4H, K]` with the gate blocks i, f, g, o stacked by rows. The
//! kernels want the transpose with the four gates of a unit side by side, so one invocation reads
//! a unit's four weights as one `vec4` and the input projection is a plain `[M, K] · [K, 4H]`:
//!
//! ```text
//! gpu[(k·H + u)·4 + g] = torch[g·H + u, k]        matrices: [K, H, 4]  (= [K, 4H])
//! gpu[u·4 + g]         = torch[g·H + u]           biases:   [H, 4]
//! ```
//!
//! Gradients use the same layout in a second arena of the same shape, so an optimizer is one
//! elementwise pass over the whole arena.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// Where one tensor lives in an arena: `len` f32 values from element `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub offset: usize,
    pub len: usize,
}

/// Element alignment of every slot: 64 floats = 256 bytes, a multiple of every alignment the
/// kernels or buffer copies need.
const SLOT_ALIGN: usize = 64;

/// Hands out slots in an arena being laid out.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArenaLayout {
    pub len: usize,
}

impl ArenaLayout {
    pub(crate) fn alloc(&mut self, len: usize) -> Slot {
        let offset = self.len.div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        self.len = offset + len;
        Slot { offset, len }
    }
}

/// One LSTM layer's slots.
#[derive(Debug, Clone)]
pub(crate) struct LayerSlots {
    /// `[I_l, H, 4]`
    pub w_ih: Slot,
    /// `[H, H, 4]`
    pub w_hh: Slot,
    /// `[H, 4]`
    pub b_ih: Slot,
    /// `[H, 4]`
    pub b_hh: Slot,
}

/// Slots of every layer of an LSTM.
#[derive(Debug, Clone)]
pub(crate) struct LstmSlots {
    pub config: LstmConfig,
    pub layers: Vec<LayerSlots>,
}

impl LstmSlots {
    pub(crate) fn new(config: LstmConfig, arena: &mut ArenaLayout) -> Self {
        let h = config.hidden_size;
        let layers = (0..config.num_layers)
            .map(|l| LayerSlots {
                w_ih: arena.alloc(config.layer_input_size(l) * 4 * h),
                w_hh: arena.alloc(h * 4 * h),
                b_ih: arena.alloc(4 * h),
                b_hh: arena.alloc(4 * h),
            })
            .collect();
        LstmSlots { config, layers }
    }

    /// Writes `weights` into an arena image.
    pub(crate) fn pack(&self, weights: &LstmWeights<f32>, arena: &mut [f32]) {
        let h = self.config.hidden_size;
        for (s, w) in self.layers.iter().zip(weights.layers()) {
            interleave_matrix(
                w.weight_ih.view(),
                h,
                &mut arena[s.w_ih.offset..][..s.w_ih.len],
            );
            interleave_matrix(
                w.weight_hh.view(),
                h,
                &mut arena[s.w_hh.offset..][..s.w_hh.len],
            );
            interleave_bias(
                w.bias_ih.view(),
                h,
                &mut arena[s.b_ih.offset..][..s.b_ih.len],
            );
            interleave_bias(
                w.bias_hh.view(),
                h,
                &mut arena[s.b_hh.offset..][..s.b_hh.len],
            );
        }
    }

    /// Reads per-layer tensors (weights or gradients) back from an arena image.
    pub(crate) fn unpack(&self, arena: &[f32]) -> Vec<LayerWeights<f32>> {
        let h = self.config.hidden_size;
        self.layers
            .iter()
            .enumerate()
            .map(|(l, s)| LayerWeights {
                weight_ih: deinterleave_matrix(
                    &arena[s.w_ih.offset..][..s.w_ih.len],
                    h,
                    self.config.layer_input_size(l),
                ),
                weight_hh: deinterleave_matrix(&arena[s.w_hh.offset..][..s.w_hh.len], h, h),
                bias_ih: deinterleave_bias(&arena[s.b_ih.offset..][..s.b_ih.len], h),
                bias_hh: deinterleave_bias(&arena[s.b_hh.offset..][..s.b_hh.len], h),
            })
            .collect()
    }
}

/// PyTorch `[4H, K]` → `[K, H, 4]`.
pub(crate) fn interleave_matrix(w: ArrayView2<'_, f32>, hidden: usize, out: &mut [f32]) {
    let k_count = w.ncols();
    for g in 0..4 {
        for u in 0..hidden {
            for k in 0..k_count {
                out[(k * hidden + u) * 4 + g] = w[[g * hidden + u, k]];
            }
        }
    }
}

/// `[K, H, 4]` → PyTorch `[4H, K]`.
pub(crate) fn deinterleave_matrix(data: &[f32], hidden: usize, k_count: usize) -> Array2<f32> {
    Array2::from_shape_fn((4 * hidden, k_count), |(row, k)| {
        let (g, u) = (row / hidden, row % hidden);
        data[(k * hidden + u) * 4 + g]
    })
}

/// PyTorch `[4H]` → `[H, 4]`.
pub(crate) fn interleave_bias(b: ArrayView1<'_, f32>, hidden: usize, out: &mut [f32]) {
    for g in 0..4 {
        for u in 0..hidden {
            out[u * 4 + g] = b[g * hidden + u];
        }
    }
}

/// `[H, 4]` → PyTorch `[4H]`.
pub(crate) fn deinterleave_bias(data: &[f32], hidden: usize) -> Array1<f32> {
    Array1::from_shape_fn(4 * hidden, |row| {
        let (g, u) = (row / hidden, row % hidden);
        data[u * 4 + g]
    })
}
