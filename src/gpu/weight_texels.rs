//! The weights of every layer as textures, for the step kernels' texel variants.
//!
//! Layer `l`'s texture is `rgba32float`, `H` texels wide and `D·(I_l + O)` rows high: for
//! direction `d`, row `d·(I_l + O) + k` (`k < I_l`) holds `W_ihᵀ[k, ·]`, row
//! `d·(I_l + O) + I_l + k` holds `W_hhᵀ[k, ·]` (`k < O`, the features of `h`), texel `u` of a row
//! the four gates (i, f, g, o) of unit `u`: the arena's gate-interleaved layout
//! (`src/gpu/layout.rs`), one matrix row per texture row. The kernels bind it as a read-only
//! storage texture (`texture_storage_2d<rgba32float, read>`). A software adapter loads its texels
//! several times as fast as the same `vec4`s from a storage buffer (`Gpu::measure_peak` measures
//! both), and a step kernel is bound by its weight loads there. It also loads them about twice
//! as fast as from the same texture bound for sampling: lavapipe (Mesa 22.3) compiles a sampled
//! `textureLoad` into a call to a fetch routine that looks up the mip level's stride and offset
//! lane by lane, a storage texture's load into a few inline instructions. A streaming step at
//! B1 I32 H128 on lavapipe, run inline on one thread (`LP_NUM_THREADS=0`, best of 20 calls of
//! 1000 steps, three alternating rounds): 26.2-28.1 ms against 51.1-52.0 sampled.
//!
//! The textures are a copy of the parameters: whoever writes the parameters writes the textures
//! too ([`WeightTexels::write`]). Models whose parameters change on the GPU (the trainers'
//! optimizer steps) keep reading the arena.

use crate::error::Result;
use crate::gpu::context::Gpu;
use crate::gpu::layout::LstmSlots;
use crate::gpu::stats::Counters;

/// One texture (and its view) per layer, as the module documentation lays them out.
pub(crate) struct WeightTexels {
    textures: Vec<wgpu::Texture>,
    views: Vec<wgpu::TextureView>,
}

impl WeightTexels {
    /// The textures for `slots`' layers (zero until [`Self::write`]), or `None` where `gpu`'s
    /// tuning keeps the weights in storage or a layer's texture would exceed the device's
    /// `max_texture_dimension_2d`.
    pub(crate) fn new(gpu: &Gpu, slots: &LstmSlots) -> Result<Option<WeightTexels>> {
        let c = slots.config;
        let max = gpu.limits().max_texture_dimension_2d as usize;
        let fits = (0..c.num_layers).all(|l| c.hidden_size <= max && rows(slots, l) <= max);
        if !gpu.tuning().weight_texels || !fits {
            return Ok(None);
        }
        let textures = (0..c.num_layers)
            .map(|l| gpu.texture_vec4("weight texels", (c.hidden_size, rows(slots, l)), None))
            .collect::<Result<Vec<_>>>()?;
        let views = textures
            .iter()
            .map(|t| t.create_view(&Default::default()))
            .collect();
        Ok(Some(WeightTexels { textures, views }))
    }

    /// Writes the weights of `arena` (the parameters as `slots` lays them out) into the
    /// textures; counted as uploads.
    pub(crate) fn write(&self, gpu: &Gpu, slots: &LstmSlots, arena: &[f32], counters: &Counters) {
        let c = &slots.config;
        let (h, o, dirs) = (c.hidden_size, c.output_size(), c.num_directions());
        for (ld, s) in slots.layers.iter().enumerate() {
            let (l, d) = (ld / dirs, ld % dirs);
            let texture = &self.textures[l];
            let input = c.layer_input_size(l);
            let base = d * (input + o);
            for (slot, first_row, rows) in [(s.w_ih, base, input), (s.w_hh, base + input, o)] {
                let values = slot.of(arena);
                let size = wgpu::Extent3d {
                    width: h as u32, // at most max_texture_dimension_2d, checked in `new`
                    height: rows as u32,
                    depth_or_array_layers: 1,
                };
                let target = wgpu::TexelCopyTextureInfo {
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: first_row as u32,
                        z: 0,
                    },
                    ..texture.as_image_copy()
                };
                let layout = wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(16 * h as u32),
                    rows_per_image: Some(rows as u32),
                };
                let bytes = bytemuck::cast_slice(values);
                gpu.queue().write_texture(target, bytes, layout, size);
                counters.upload(bytes.len() as u64);
            }
        }
    }

    /// Layer `l`'s texture.
    pub(crate) fn view(&self, l: usize) -> &wgpu::TextureView {
        &self.views[l]
    }
}

/// Rows of layer `l`'s texture: `D·(I_l + O)`.
fn rows(slots: &LstmSlots, l: usize) -> usize {
    let c = &slots.config;
    c.num_directions() * (c.layer_input_size(l) + c.output_size())
}
