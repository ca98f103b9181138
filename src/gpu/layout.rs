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
//! A projected layer's `weight_hr` `[O, H]` keeps PyTorch's layout. Each layer's directions are
//! laid out one after the other with the same slots, so direction 1's tensors sit a fixed
//! distance after direction 0's ([`LstmSlots::dir_stride`]) and a kernel running both finds
//! them from one offset.
//!
//! Gradients use the same layout in a second arena of the same shape, so an optimizer is one
//! elementwise pass over the whole arena.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::weights::{LayerWeights, LstmConfig, LstmWeights};

/// Where one tensor lives in an arena: `len` f32 values from element `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArenaSlot {
    pub offset: usize,
    pub len: usize,
}

impl ArenaSlot {
    /// The slot's values in an arena image.
    pub(crate) fn of(self, arena: &[f32]) -> &[f32] {
        &arena[self.offset..][..self.len]
    }

    /// The slot's values in an arena image, mutable.
    pub(crate) fn of_mut(self, arena: &mut [f32]) -> &mut [f32] {
        &mut arena[self.offset..][..self.len]
    }
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
    pub(crate) fn alloc(&mut self, len: usize) -> ArenaSlot {
        let offset = self.len.div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        self.len = offset + len;
        ArenaSlot { offset, len }
    }
}

/// One direction of one LSTM layer: its slots.
#[derive(Debug, Clone)]
pub(crate) struct LayerSlots {
    /// `[I_l, H, 4]`
    pub w_ih: ArenaSlot,
    /// `[O, H, 4]`
    pub w_hh: ArenaSlot,
    /// `[H, 4]`
    pub b_ih: ArenaSlot,
    /// `[H, 4]`
    pub b_hh: ArenaSlot,
    /// `[O, H]` (PyTorch's layout), in projected layers.
    pub w_hr: Option<ArenaSlot>,
}

/// Slots of every layer and direction of an LSTM, index `l·D + d` (as
/// [`LstmWeights::layers`]).
#[derive(Debug, Clone)]
pub(crate) struct LstmSlots {
    pub config: LstmConfig,
    pub layers: Vec<LayerSlots>,
}

impl LstmSlots {
    pub(crate) fn new(config: LstmConfig, arena: &mut ArenaLayout) -> Self {
        let (h, o) = (config.hidden_size, config.output_size());
        let dirs = config.num_directions();
        let layers = (0..config.num_layers * dirs)
            .map(|ld| LayerSlots {
                w_ih: arena.alloc(config.layer_input_size(ld / dirs) * 4 * h),
                w_hh: arena.alloc(o * 4 * h),
                b_ih: arena.alloc(4 * h),
                b_hh: arena.alloc(4 * h),
                w_hr: (config.proj_size > 0).then(|| arena.alloc(o * h)),
            })
            .collect();
        LstmSlots { config, layers }
    }

    /// Direction `d` of layer `l`.
    pub(crate) fn layer(&self, l: usize, d: usize) -> &LayerSlots {
        &self.layers[l * self.config.num_directions() + d]
    }

    /// Elements from layer `l`'s direction-0 slots to its direction-1 slots (0 with one
    /// direction): the same for every tensor, as each direction's slots are allocated alike
    /// from an aligned start.
    pub(crate) fn dir_stride(&self, l: usize) -> usize {
        if self.config.num_directions() == 1 {
            return 0;
        }
        let (a, b) = (self.layer(l, 0), self.layer(l, 1));
        let stride = b.w_ih.offset - a.w_ih.offset;
        debug_assert!(
            [(a.w_hh, b.w_hh), (a.b_ih, b.b_ih), (a.b_hh, b.b_hh)]
                .iter()
                .all(|(x, y)| y.offset - x.offset == stride)
        );
        stride
    }

    /// Writes `weights` into an arena image.
    pub(crate) fn pack(&self, weights: &LstmWeights<f32>, arena: &mut [f32]) {
        let h = self.config.hidden_size;
        for (s, w) in self.layers.iter().zip(weights.layers()) {
            for (slot, matrix) in [(s.w_ih, &w.weight_ih), (s.w_hh, &w.weight_hh)] {
                interleave_matrix(matrix.view(), h, slot.of_mut(arena));
            }
            for (slot, bias) in [(s.b_ih, &w.bias_ih), (s.b_hh, &w.bias_hh)] {
                interleave_bias(bias.view(), h, slot.of_mut(arena));
            }
            if let (Some(slot), Some(w_hr)) = (s.w_hr, &w.weight_hr) {
                let out = slot.of_mut(arena);
                for (o, v) in out.iter_mut().zip(w_hr.iter()) {
                    *o = *v;
                }
            }
        }
    }

    /// Reads per-layer tensors (weights or gradients) back from an arena image.
    pub(crate) fn unpack(&self, arena: &[f32]) -> Vec<LayerWeights<f32>> {
        let c = &self.config;
        let (h, o, dirs) = (c.hidden_size, c.output_size(), c.num_directions());
        self.layers
            .iter()
            .enumerate()
            .map(|(ld, s)| LayerWeights {
                weight_ih: deinterleave_matrix(s.w_ih.of(arena), h, c.layer_input_size(ld / dirs)),
                weight_hh: deinterleave_matrix(s.w_hh.of(arena), h, o),
                bias_ih: deinterleave_bias(s.b_ih.of(arena), h),
                bias_hh: deinterleave_bias(s.b_hh.of(arena), h),
                weight_hr: s.w_hr.map(|slot| {
                    Array2::from_shape_vec((o, h), slot.of(arena).to_vec())
                        .expect("a projection slot holds [O, H]")
                }),
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
