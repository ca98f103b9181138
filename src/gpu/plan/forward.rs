//! The forward pass of every layer for one batch shape `(B, T)`: buffers and prepared
//! dispatches, made once and reused by every call of that shape.
//!
//! Per layer `l`: one GEMM `xproj = input · W_ihᵀ + b_ih` over all `B·T` rows, then one
//! `lstm_forward_step` dispatch per step. The direct step variants skip the GEMM: they compute
//! `x_t · W_ihᵀ + b_ih` themselves (see `lstm_forward_step::projects_input`). The step index
//! travels as a dynamic offset into one buffer of per-(layer, step) uniforms, shared with the
//! backward plan, so nothing is written between steps. Given the model's weight textures
//! (`crate::gpu::weight_texels`), the direct steps run their texel variants, which read the
//! weights from there.

use ndarray::ArrayView3;

use crate::error::Result;
use crate::gemm::{GemmSpec, MatrixLayout};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::kernels::lstm_forward_step;
use crate::gpu::kernels::lstm_step::StepParams;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::kernels::u32_of;
use crate::gpu::layout::LstmSlots;
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;
use crate::gpu::weight_texels::WeightTexels;
use crate::lstm::LstmState;

/// One layer's activations.
pub(super) struct LayerBuffers {
    /// `x · W_ihᵀ + b_ih` for every row, `[B, T, H]` of gate vec4s (a 16-byte stand-in when the
    /// step kernel computes it).
    pub xproj: wgpu::Buffer,
    /// Hidden state of every step, `[B, T, H]`.
    pub y: wgpu::Buffer,
    /// `c_t` of every step `[B, T, H]` (kept for backward; a 16-byte stand-in otherwise).
    pub c_seq: wgpu::Buffer,
    /// Gates of every step `[B, T, H]` vec4 (kept for backward; a stand-in otherwise).
    pub gates: wgpu::Buffer,
}

/// Sizes of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
}

impl Dims {
    /// Elements of a `[L, B, H]` state.
    pub(crate) fn state_len(&self) -> usize {
        self.layers * self.batch * self.hidden
    }
}

/// The forward pass for one `(B, T)`.
pub(crate) struct ForwardPlan {
    dims: Dims,
    /// The input sequence `[B, T, I]`.
    x: wgpu::Buffer,
    /// `[2, L, B, H]`: h0 then c0.
    state0: wgpu::Buffer,
    /// `[2, L, B, H]`: h_n then c_n.
    state_n: wgpu::Buffer,
    layers: Vec<LayerBuffers>,
    /// One `StepParams` per (layer, step) at `step_stride` bytes.
    step_uniforms: wgpu::Buffer,
    step_stride: u32,
    /// Per layer, the input projection GEMM (none when the step kernel projects its input).
    input_proj: Vec<Option<Dispatch>>,
    steps: Vec<Dispatch>,
}

/// What the forward steps read their weights from: the parameters, and the model's weight
/// textures where it keeps them (the texel variants then read those instead).
pub(crate) struct Weights<'a> {
    pub slots: &'a LstmSlots,
    pub params: &'a wgpu::Buffer,
    pub texels: Option<&'a WeightTexels>,
}

impl ForwardPlan {
    /// Buffers and dispatches for `(batch, seq)` over `weights`. With `save`, the steps keep
    /// `c_t` and the gates for a backward plan.
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        weights: &Weights<'_>,
        (batch, seq): (usize, usize),
        save: bool,
    ) -> Result<ForwardPlan> {
        let slots = weights.slots;
        use wgpu::BufferUsages as U;
        let c = slots.config;
        let dims = Dims {
            batch,
            seq,
            input: c.input_size,
            hidden: c.hidden_size,
            layers: c.num_layers,
        };
        let x = gpu.storage("x", batch * seq * dims.input, U::COPY_DST)?;
        let state0 = gpu.storage("h0/c0", 2 * dims.state_len(), U::COPY_DST)?;
        let state_n = gpu.storage("h_n/c_n", 2 * dims.state_len(), U::COPY_SRC)?;
        let (step_kernel, _, _) = lstm_forward_step::variant(batch, gpu.limits(), gpu.tuning());
        let project = !lstm_forward_step::projects_input(step_kernel);
        let layers = (0..dims.layers)
            .map(|_| layer_buffers(gpu, &dims, save, project))
            .collect::<Result<Vec<_>>>()?;
        let (step_uniforms, step_stride) = step_uniforms(gpu, counters, slots, &dims, save)?;
        let mut plan = ForwardPlan {
            dims,
            x,
            state0,
            state_n,
            layers,
            step_uniforms,
            step_stride,
            input_proj: Vec::new(),
            steps: Vec::new(),
        };
        plan.prepare_dispatches(gpu, counters, weights)?;
        Ok(plan)
    }

    /// Per layer: the input projection GEMM and the step dispatch.
    fn prepare_dispatches(
        &mut self,
        gpu: &Gpu,
        counters: &Counters,
        weights: &Weights<'_>,
    ) -> Result<()> {
        let (slots, params) = (weights.slots, weights.params);
        let Dims {
            batch,
            seq,
            hidden: h,
            ..
        } = self.dims;
        let grid = lstm_forward_step::grid(batch, h, gpu.limits(), gpu.tuning())?;
        let (mut step_kernel, _, _) = lstm_forward_step::variant(batch, gpu.limits(), gpu.tuning());
        if weights.texels.is_some() {
            step_kernel = lstm_forward_step::with_texels(step_kernel);
        }
        let unread = match weights.texels {
            Some(_) => None,
            None => Some(gpu.unread_texels()?),
        };
        for (l, s) in slots.layers.iter().enumerate() {
            let input = self.layer_input(l);
            let il = slots.config.layer_input_size(l);
            let lb = &self.layers[l];
            let proj = if lstm_forward_step::projects_input(step_kernel) {
                None
            } else {
                let spec = GemmSpec {
                    m: batch * seq,
                    n: 4 * h,
                    k: il,
                    a: MatrixLayout::new(0, il),
                    b: MatrixLayout::new(s.w_ih.offset, 4 * h),
                    c: MatrixLayout::new(0, 4 * h),
                    bias: Some(s.b_ih.offset),
                    accumulate: false,
                };
                let gemm = Matmul {
                    spec,
                    a: input,
                    b: params,
                    bias: Some(params),
                    c: &lb.xproj,
                };
                Some(Dispatch::new(gpu, counters, "input projection", &gemm)?)
            };
            let buffers = [
                &lb.xproj,
                params,
                &self.state0,
                &lb.y,
                &self.state_n,
                &lb.c_seq,
                &lb.gates,
                input,
            ];
            let texels = match (weights.texels, &unread) {
                (Some(t), _) => t.view(l),
                (None, Some(unread)) => unread,
                (None, None) => unreachable!("made above when the model keeps no textures"),
            };
            let work = lstm_forward_step::work(step_kernel, batch, il, h);
            let step = Dispatch::with_shared_uniform(
                gpu,
                (step_kernel, "forward step", work),
                self.step_binding(),
                (&buffers, &[texels]),
                grid,
            );
            self.input_proj.push(proj);
            self.steps.push(step);
        }
        Ok(())
    }

    /// Whether this plan serves `(batch, seq)`.
    pub(crate) fn fits(&self, batch: usize, seq: usize) -> bool {
        self.dims.batch == batch && self.dims.seq == seq
    }

    /// The plan's sizes.
    pub(crate) fn dims(&self) -> &Dims {
        &self.dims
    }

    /// Uploads `x` `[B, T, I]` (checked by the caller).
    pub(crate) fn upload_x(&self, gpu: &Gpu, counters: &Counters, x: ArrayView3<'_, f32>) {
        gpu.write_array(&self.x, 0, x, counters);
    }

    /// Uploads `x` and `h0`/`c0` (checked by the caller), or clears the state when `None`.
    pub(crate) fn load_inputs(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) {
        self.upload_x(gpu, counters, x);
        match state {
            Some(s) => {
                let half = (self.dims.state_len() * 4) as u64;
                gpu.write_array(&self.state0, 0, s.h.view(), counters);
                gpu.write_array(&self.state0, half, s.c.view(), counters);
            }
            None => encoder.clear_buffer(&self.state0, 0, None),
        }
    }

    /// Records the forward pass of every layer.
    pub(crate) fn record(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>, counters: &Counters) {
        for (l, (proj, step)) in self.input_proj.iter().zip(&self.steps).enumerate() {
            if let Some(proj) = proj {
                proj.record(gpu, pass, None, counters);
            }
            for t in 0..self.dims.seq {
                step.record(gpu, pass, Some(self.step_offset(l, t)), counters);
            }
        }
    }

    /// Adds the outputs to `plan`: `y` `[B, T, H]`, then `h_n` and `c_n` `[L, B, H]` together.
    pub(crate) fn read_outputs<'a>(&'a self, plan: &mut ReadPlan<'a>) {
        plan.add(self.y());
        plan.add(self.state_n());
    }

    /// Records a copy of `x` `[B, T, I]` from byte `offset` of `from` (a caller's buffer) into
    /// the plan's input.
    pub(crate) fn copy_x_in(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        from: &wgpu::Buffer,
        offset: u64,
    ) {
        let d = &self.dims;
        let bytes = (d.batch * d.seq * d.input * 4) as u64;
        encoder.copy_buffer_to_buffer(from, offset, &self.x, 0, bytes);
    }

    /// Records a copy of a state `[2, L, B, H]` (`h` then `c`) from byte `offset` of `from`
    /// into `h0`/`c0`.
    pub(crate) fn copy_state_in(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        from: &wgpu::Buffer,
        offset: u64,
    ) {
        let bytes = (2 * self.dims.state_len() * 4) as u64;
        encoder.copy_buffer_to_buffer(from, offset, &self.state0, 0, bytes);
    }

    /// Records the zeroing of `h0`/`c0`.
    pub(crate) fn clear_state(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.state0, 0, None);
    }

    /// Records a copy of `region` (one of this plan's) to byte `offset` of `to`.
    pub(crate) fn copy_out(
        encoder: &mut wgpu::CommandEncoder,
        region: Region<'_>,
        to: &wgpu::Buffer,
        offset: u64,
    ) {
        let (at, bytes) = (region.offset as u64 * 4, region.len as u64 * 4);
        encoder.copy_buffer_to_buffer(region.buffer, at, to, offset, bytes);
    }

    /// The top layer's output `y` `[B, T, H]`.
    pub(crate) fn y(&self) -> Region<'_> {
        let d = &self.dims;
        Region::whole(&self.layers[d.layers - 1].y, d.batch * d.seq * d.hidden)
    }

    /// `h_n` then `c_n`, `[2, L, B, H]`.
    pub(crate) fn state_n(&self) -> Region<'_> {
        Region::whole(&self.state_n, 2 * self.dims.state_len())
    }

    /// Layer `l`'s `h_n`, `[B, H]`.
    pub(crate) fn h_n(&self, l: usize) -> Region<'_> {
        let n = self.dims.batch * self.dims.hidden;
        Region {
            buffer: &self.state_n,
            offset: l * n,
            len: n,
        }
    }

    /// Layer `l`'s input sequence: `x` for the first layer, the output of the one below else.
    pub(super) fn layer_input(&self, l: usize) -> &wgpu::Buffer {
        if l == 0 {
            &self.x
        } else {
            &self.layers[l - 1].y
        }
    }

    pub(super) fn layer(&self, l: usize) -> &LayerBuffers {
        &self.layers[l]
    }

    /// `[2, L, B, H]`: h0 then c0.
    pub(super) fn state0(&self) -> &wgpu::Buffer {
        &self.state0
    }

    /// One entry of the step uniforms, selected per dispatch with [`Self::step_offset`].
    pub(super) fn step_binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.step_uniforms,
            offset: 0,
            size: wgpu::BufferSize::new(std::mem::size_of::<StepParams>() as u64),
        })
    }

    /// Dynamic offset of layer `l`, step `t` in the step uniforms.
    pub(super) fn step_offset(&self, l: usize, t: usize) -> u32 {
        // In range: `step_uniforms` checked that the whole buffer's size fits a u32.
        (l * self.dims.seq + t) as u32 * self.step_stride
    }
}

/// One layer's buffers; `xproj` only when `project` (the GEMM fills it), `c_seq` and `gates`
/// only when `save`.
fn layer_buffers(gpu: &Gpu, d: &Dims, save: bool, project: bool) -> Result<LayerBuffers> {
    let rows_h = d.batch * d.seq * d.hidden;
    let (c_len, g_len) = if save { (rows_h, 4 * rows_h) } else { (4, 4) };
    let xproj_len = if project { 4 * rows_h } else { 4 };
    let none = wgpu::BufferUsages::empty();
    Ok(LayerBuffers {
        xproj: gpu.storage("xproj", xproj_len, none)?,
        y: gpu.storage("y", rows_h, wgpu::BufferUsages::COPY_SRC)?,
        c_seq: gpu.storage("c_seq", c_len, none)?,
        gates: gpu.storage("gates", g_len, none)?,
    })
}

/// One `StepParams` per (layer, step), each at a multiple of the uniform offset alignment.
fn step_uniforms(
    gpu: &Gpu,
    counters: &Counters,
    slots: &LstmSlots,
    d: &Dims,
    save: bool,
) -> Result<(wgpu::Buffer, u32)> {
    let align = gpu.limits().min_uniform_buffer_offset_alignment.max(1);
    let stride = (std::mem::size_of::<StepParams>() as u32).div_ceil(align) * align;
    let mut bytes = vec![0u8; (d.layers * d.seq).max(1) * stride as usize];
    let state = d.state_len();
    for (l, s) in slots.layers.iter().enumerate() {
        for t in 0..d.seq {
            let p = StepParams {
                batch: u32_of("batch", d.batch)?,
                seq: u32_of("sequence", d.seq)?,
                hidden: u32_of("hidden units", d.hidden)?,
                t: t as u32, // t < seq, checked just above
                h_off: u32_of("state", l * d.batch * d.hidden)?,
                c_off: u32_of("state", state + l * d.batch * d.hidden)?,
                save: save as u32,
                w_off: u32_of("parameters", s.w_hh.offset / 4)?,
                b_off: u32_of("parameters", s.b_hh.offset / 4)?,
                input: u32_of("input size", slots.config.layer_input_size(l))?,
                wi_off: u32_of("parameters", s.w_ih.offset / 4)?,
                bi_off: u32_of("parameters", s.b_ih.offset / 4)?,
            };
            let at = (l * d.seq + t) * stride as usize;
            bytes[at..at + std::mem::size_of::<StepParams>()]
                .copy_from_slice(bytemuck::bytes_of(&p));
        }
    }
    u32_of("step uniforms", bytes.len())?;
    Ok((gpu.uniform("step params", &bytes, counters), stride))
}
