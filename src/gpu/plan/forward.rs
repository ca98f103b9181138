//! The forward pass of every layer for one batch shape `(B, T)`: buffers and prepared
//! dispatches, made once and reused by every call of that shape.
//!
//! Per layer `l`: one GEMM per direction `xproj = input · W_ihᵀ + b_ih` over all `B·T` rows,
//! then per step one `lstm_forward_step` dispatch that runs every direction (direction in the
//! grid's z), and in a projected layer one `lstm_projection_step` dispatch after it: the
//! projection needs the whole row of `r = o ⊙ tanh c`, which the step's invocations (one per
//! hidden unit) finish independently, so the second dispatch is the barrier between them. The
//! direct step variants skip the GEMM: they compute `x_t · W_ihᵀ + b_ih` themselves (see
//! `lstm_forward_step::projects_input`). Sequences shorter than `T` cost nothing extra: each
//! kernel reads the batch's lengths (uploaded after `h0`/`c0`) and masks finished rows itself.
//! In a training plan with dropout, one `dropout` dispatch per lower layer takes its output to
//! the next layer's input.
//!
//! The step index travels as a dynamic offset into one buffer of per-(layer, step) uniforms,
//! shared with the backward plan, so nothing is written between steps. Given the model's weight
//! textures (`crate::gpu::weight_texels`), the direct steps run their texel variants, which read
//! the weights from there.

use crate::gpu::recording::Recording;
use ndarray::ArrayView3;

use crate::error::Result;
use crate::gemm::{GemmSpec, MatrixLayout};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::kernels::dropout::Dropout as DropoutCall;
use crate::gpu::kernels::lstm_step::StepParams;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::kernels::u32_of;
use crate::gpu::kernels::{lstm_forward_step, lstm_projection_step};
use crate::gpu::layout::LstmSlots;
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;
use crate::gpu::weight_texels::WeightTexels;
use crate::lstm::{Dropout, LstmState};

/// One layer's activations.
pub(super) struct LayerBuffers {
    /// `x · W_ihᵀ + b_ih` of every direction and row, `[D, B, T, H]` of gate vec4s (a 16-byte
    /// stand-in when the step kernel computes it).
    pub xproj: wgpu::Buffer,
    /// The layer's output at every step, `[B, T, D·O]`.
    pub y: wgpu::Buffer,
    /// With dropout in a training plan, below the top layer: `y` through the mask, the next
    /// layer's input, `[B, T, D·O]`.
    pub y_drop: Option<wgpu::Buffer>,
    /// `[c D·B·T·H | h_prev D·B·T·O | r D·B·T·H]` kept for backward (`r` in projected layers
    /// only); without `save`, `r` alone in projected layers, else a stand-in.
    pub saved: wgpu::Buffer,
    /// Gates of every step `[D, B, T, H]` vec4 (kept for backward; a stand-in otherwise).
    pub gates: wgpu::Buffer,
}

/// Sizes of one plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub seq: usize,
    pub input: usize,
    /// Hidden units `H`.
    pub hidden: usize,
    /// Features of `h`, `O` (the projection's size, or `H`).
    pub out: usize,
    /// Directions `D`.
    pub dirs: usize,
    pub layers: usize,
}

impl Dims {
    /// Elements of every layer's `h` state `[L·D, B, O]`.
    pub(crate) fn h_state_len(&self) -> usize {
        self.layers * self.dirs * self.batch * self.out
    }

    /// Elements of every layer's `c` state `[L·D, B, H]`.
    pub(crate) fn c_state_len(&self) -> usize {
        self.layers * self.dirs * self.batch * self.hidden
    }

    /// Elements of a `[h | c]` state.
    pub(crate) fn state_len(&self) -> usize {
        self.h_state_len() + self.c_state_len()
    }

    /// Features of a layer's output at each step, `D·O`.
    pub(crate) fn layer_out(&self) -> usize {
        self.dirs * self.out
    }

    /// Input features of layer `l`.
    pub(crate) fn layer_input(&self, l: usize) -> usize {
        if l == 0 { self.input } else { self.layer_out() }
    }

    /// Whether `h` is a projection (`O < H`).
    pub(crate) fn projected(&self) -> bool {
        self.out < self.hidden
    }

    /// Elements of one `[D, B, T, width]` per-direction sequence.
    pub(crate) fn per_dir(&self, width: usize) -> usize {
        self.dirs * self.batch * self.seq * width
    }

    /// Where `h_prev` starts in a saving plan's `saved` buffer.
    pub(crate) fn h_prev_at(&self) -> usize {
        self.per_dir(self.hidden)
    }

    /// Where `r` starts in the `saved` buffer of a plan that saves (`save`) or not.
    pub(crate) fn r_at(&self, save: bool) -> usize {
        if save {
            self.per_dir(self.hidden) + self.per_dir(self.out)
        } else {
            0
        }
    }
}

/// The forward pass for one `(B, T)`.
pub(crate) struct ForwardPlan {
    dims: Dims,
    /// Whether the steps keep what backward needs.
    save: bool,
    /// The input sequence `[B, T, I]`.
    x: wgpu::Buffer,
    /// `[h0 | c0 | lengths]`: `h0` `[L·D, B, O]`, `c0` `[L·D, B, H]`, then each sequence's
    /// length as `u32` bits.
    state0: wgpu::Buffer,
    /// The lengths `state0` holds now.
    lengths: Vec<u32>,
    /// `[h_n | c_n]`.
    state_n: wgpu::Buffer,
    layers: Vec<LayerBuffers>,
    /// One `StepParams` per (layer, step), then one per layer for backward's `dh0` dispatch, at
    /// `step_stride` bytes.
    step_uniforms: wgpu::Buffer,
    step_stride: u32,
    /// The two textures of `h` transposed that the tall steps write and read in turn (even
    /// steps write the first), shared by the layers; `None` for the other step kernels.
    h_transposed: Option<[wgpu::TextureView; 2]>,
    /// Per layer, the input projection GEMMs, one per direction (none when the step kernel
    /// projects its input).
    input_proj: Vec<Vec<Dispatch>>,
    steps: Vec<Dispatch>,
    /// Per layer, the projection after each step (projected layers).
    projections: Vec<Option<Dispatch>>,
    /// Per layer below the top, the dropout between it and the next (training plans with
    /// dropout).
    dropouts: Vec<Dispatch>,
}

/// What the forward steps read their weights from: the parameters, and the model's weight
/// textures where it keeps them (the texel variants then read those instead).
pub(crate) struct Weights<'a> {
    pub slots: &'a LstmSlots,
    pub params: &'a wgpu::Buffer,
    pub texels: Option<&'a WeightTexels>,
}

/// What a plan keeps and runs beyond inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    /// Keep the activations backward needs.
    pub save: bool,
    /// Run dropout between layers (training plans of a model with dropout and several layers).
    pub dropout: bool,
}

impl Mode {
    /// Inference: nothing kept, nothing dropped.
    pub(crate) const INFERENCE: Mode = Mode {
        save: false,
        dropout: false,
    };
}

impl ForwardPlan {
    /// Buffers and dispatches for `(batch, seq)` over `weights`, keeping and dropping what
    /// `mode` says.
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        weights: &Weights<'_>,
        (batch, seq): (usize, usize),
        mode: Mode,
    ) -> Result<ForwardPlan> {
        let slots = weights.slots;
        use wgpu::BufferUsages as U;
        let c = slots.config;
        let dims = Dims {
            batch,
            seq,
            input: c.input_size,
            hidden: c.hidden_size,
            out: c.output_size(),
            dirs: c.num_directions(),
            layers: c.num_layers,
        };
        // A whole number of vec4s: the step kernels read it four floats at a time.
        let x_len = (batch * seq * dims.input).next_multiple_of(4);
        let x = gpu.storage("x", x_len, U::COPY_DST)?;
        let state0 = gpu.storage("h0/c0/lengths", dims.state_len() + batch, U::COPY_DST)?;
        let state_n = gpu.storage("h_n/c_n", dims.state_len(), U::COPY_SRC)?;
        let shape = lstm_forward_step::Layers::of(&c);
        let (step_kernel, _, _) =
            lstm_forward_step::variant(batch, shape, gpu.limits(), gpu.tuning(), false);
        let project = !lstm_forward_step::projects_input(step_kernel);
        let xproj_len = match project {
            true => 4 * dims.per_dir(dims.hidden),
            false => 4,
        };
        let h_transposed = match lstm_forward_step::reads_h_transposed(step_kernel) {
            true => {
                let size = lstm_forward_step::h_transposed_size(batch, dims.out, dims.dirs);
                let view = || -> Result<wgpu::TextureView> {
                    let texture = gpu.texture_vec4("h transposed", size, None)?;
                    Ok(texture.create_view(&Default::default()))
                };
                Some([view()?, view()?])
            }
            false => None,
        };
        let dropout = mode.dropout && dims.layers > 1;
        let layers = (0..dims.layers)
            .map(|l| {
                layer_buffers(
                    gpu,
                    &dims,
                    mode.save,
                    xproj_len,
                    dropout && l + 1 < dims.layers,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let (step_uniforms, step_stride) = step_uniforms(gpu, counters, slots, &dims, mode.save)?;
        let lengths = vec![u32_of("sequence", seq)?; batch];
        gpu.write(
            &state0,
            (dims.state_len() * 4) as u64,
            bytemuck::cast_slice(&lengths),
            counters,
        );
        let mut plan = ForwardPlan {
            dims,
            save: mode.save,
            x,
            state0,
            lengths,
            state_n,
            layers,
            step_uniforms,
            step_stride,
            h_transposed,
            input_proj: Vec::new(),
            steps: Vec::new(),
            projections: Vec::new(),
            dropouts: Vec::new(),
        };
        plan.prepare_dispatches(gpu, counters, weights)?;
        Ok(plan)
    }

    /// Per layer: the input projection GEMMs, the step dispatch, the projection and the
    /// dropout.
    fn prepare_dispatches(
        &mut self,
        gpu: &Gpu,
        counters: &Counters,
        weights: &Weights<'_>,
    ) -> Result<()> {
        let (slots, params) = (weights.slots, weights.params);
        let d = self.dims;
        let (batch, seq, h) = (d.batch, d.seq, d.hidden);
        let texels = weights.texels.is_some();
        let layers = lstm_forward_step::Layers::of(&slots.config);
        let grid =
            lstm_forward_step::grid((batch, layers, d.dirs), gpu.limits(), gpu.tuning(), texels)?;
        let (step_kernel, _, _) =
            lstm_forward_step::variant(batch, layers, gpu.limits(), gpu.tuning(), texels);
        let step_kernel = match self.save {
            true => step_kernel,
            false => lstm_forward_step::for_inference(step_kernel),
        };
        let unread = match weights.texels {
            Some(_) => None,
            None => Some(gpu.unread_texels()?),
        };
        for l in 0..d.layers {
            let input = self.layer_input(l);
            let il = d.layer_input(l);
            let lb = &self.layers[l];
            let mut proj = Vec::new();
            if !lstm_forward_step::projects_input(step_kernel) {
                for dir in 0..d.dirs {
                    let s = slots.layer(l, dir);
                    let spec = GemmSpec {
                        m: batch * seq,
                        n: 4 * h,
                        k: il,
                        a: MatrixLayout::new(0, il),
                        b: MatrixLayout::new(s.w_ih.offset, 4 * h),
                        c: MatrixLayout::new(dir * batch * seq * 4 * h, 4 * h),
                        bias: Some(s.b_ih.offset),
                        accumulate: false,
                    };
                    let gemm = Matmul {
                        subgroups: gpu.tuning().subgroups,
                        spec,
                        a: input,
                        b: params,
                        bias: Some(params),
                        c: &lb.xproj,
                    };
                    proj.push(Dispatch::new(gpu, counters, "input projection", &gemm)?);
                }
            }
            let buffers = [
                &lb.xproj,
                params,
                &self.state0,
                &lb.y,
                &self.state_n,
                &lb.saved,
                &lb.gates,
                input,
            ];
            let texels = match (weights.texels, &unread) {
                (Some(t), _) => t.view(l),
                (None, Some(unread)) => unread,
                (None, None) => unreachable!("made above when the model keeps no textures"),
            };
            let work = lstm_forward_step::work(step_kernel, batch, (il, h, d.out), d.dirs);
            let (even, odd) = match &self.h_transposed {
                // Even steps write the first texture (and read the second), odd steps the other.
                Some([a, b]) => (vec![texels, b, a], vec![texels, a, b]),
                None => (vec![texels], vec![]),
            };
            let mut step = Dispatch::with_shared_uniform(
                gpu,
                (step_kernel, "forward step", work),
                self.step_binding(),
                (&buffers, &even),
                grid,
            )?;
            if !odd.is_empty() {
                step = step.with_odd_steps_textures(gpu, self.step_binding(), (&buffers, &odd))?;
            }
            let projection = match d.projected() {
                true => {
                    let buffers = [params, &self.state0, &lb.saved, &lb.y, &self.state_n];
                    let work = lstm_projection_step::work(batch, h, d.out, d.dirs);
                    let kernel = crate::gpu::kernels::Kernel::LstmProjectionStep;
                    Some(Dispatch::with_shared_uniform(
                        gpu,
                        (kernel, "projection step", work),
                        self.step_binding(),
                        (&buffers, &[]),
                        lstm_projection_step::grid((batch, d.out, d.dirs), gpu.limits())?,
                    )?)
                }
                false => None,
            };
            if let Some(y_drop) = &lb.y_drop {
                let call = DropoutCall {
                    input: &lb.y,
                    in_off: 0,
                    out: y_drop,
                    out_off: 0,
                    len: batch * seq * d.layer_out(),
                    // The key is written before each training pass (`write_dropout`).
                    dropout: Dropout::new(0.0, 0)?,
                    layer: l,
                };
                self.dropouts
                    .push(Dispatch::new(gpu, counters, "dropout", &call)?);
            }
            self.input_proj.push(proj);
            self.steps.push(step);
            self.projections.push(projection);
        }
        Ok(())
    }

    /// Whether this plan serves `(batch, seq)` in `mode`.
    pub(crate) fn fits(&self, batch: usize, seq: usize, mode: Mode) -> bool {
        let dropout = mode.dropout && self.dims.layers > 1;
        self.dims.batch == batch
            && self.dims.seq == seq
            && self.save == mode.save
            && self.dropouts.is_empty() != dropout
    }

    /// Whether the plan runs dropout between layers.
    pub(crate) fn drops(&self) -> bool {
        !self.dropouts.is_empty()
    }

    /// The plan's sizes.
    pub(crate) fn dims(&self) -> &Dims {
        &self.dims
    }

    /// Uploads `x` `[B, T, I]` (checked by the caller).
    pub(crate) fn upload_x(&self, gpu: &Gpu, counters: &Counters, x: ArrayView3<'_, f32>) {
        gpu.write_array(&self.x, 0, x, counters);
    }

    /// Makes the sequences of the next run `lengths` long (`None`: all `T`), uploading them only
    /// when they differ from those of the last run (checked by the caller: each in `1..=T`).
    pub(crate) fn set_lengths(
        &mut self,
        gpu: &Gpu,
        counters: &Counters,
        lengths: Option<&[usize]>,
    ) {
        let want: Vec<u32> = match lengths {
            // In range: checked against T, which fits a u32 (the uniforms hold it).
            Some(l) => l.iter().map(|&n| n as u32).collect(),
            None => vec![self.dims.seq as u32; self.dims.batch],
        };
        if want != self.lengths {
            let at = (self.dims.state_len() * 4) as u64;
            gpu.write(&self.state0, at, bytemuck::cast_slice(&want), counters);
            self.lengths = want;
        }
    }

    /// Writes the masks' key of `dropout` (its pass) into the dropout dispatches, before a
    /// training pass is submitted.
    pub(crate) fn write_dropout(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        dropout: &Dropout,
    ) -> Result<()> {
        let len = self.dims.batch * self.dims.seq * self.dims.layer_out();
        // Entry l drops layer l's output.
        super::write_dropout_keys(
            gpu,
            counters,
            self.dropouts.iter().enumerate(),
            len,
            dropout,
        )
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
                let half = (self.dims.h_state_len() * 4) as u64;
                gpu.write_array(&self.state0, 0, s.h.view(), counters);
                gpu.write_array(&self.state0, half, s.c.view(), counters);
            }
            None => self.clear_state(encoder),
        }
    }

    /// Records the forward pass of every layer.
    pub(crate) fn record(&self, gpu: &Gpu, pass: &mut Recording<'_>, counters: &Counters) {
        for l in 0..self.dims.layers {
            for proj in &self.input_proj[l] {
                proj.record(gpu, pass, None, counters);
            }
            for t in 0..self.dims.seq {
                let offset = self.step_offset(l, t);
                self.steps[l].record_step(gpu, pass, offset, t, counters);
                if let Some(p) = &self.projections[l] {
                    p.record(gpu, pass, Some(offset), counters);
                }
            }
            if let Some(d) = self.dropouts.get(l) {
                d.record(gpu, pass, None, counters);
            }
        }
    }

    /// Adds the outputs to `plan`: `y` `[B, T, D·O]`, then `h_n` and `c_n` together.
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

    /// Records a copy of a `[h | c]` state from byte `offset` of `from` into `h0`/`c0`.
    pub(crate) fn copy_state_in(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        from: &wgpu::Buffer,
        offset: u64,
    ) {
        let bytes = (self.dims.state_len() * 4) as u64;
        encoder.copy_buffer_to_buffer(from, offset, &self.state0, 0, bytes);
    }

    /// Records the zeroing of `h0`/`c0` (not of the lengths after them).
    pub(crate) fn clear_state(&self, encoder: &mut wgpu::CommandEncoder) {
        let bytes = (self.dims.state_len() * 4) as u64;
        encoder.clear_buffer(&self.state0, 0, Some(bytes));
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

    /// The top layer's output `y` `[B, T, D·O]`.
    pub(crate) fn y(&self) -> Region<'_> {
        let d = &self.dims;
        Region::whole(
            &self.layers[d.layers - 1].y,
            d.batch * d.seq * d.layer_out(),
        )
    }

    /// `h_n` then `c_n`.
    pub(crate) fn state_n(&self) -> Region<'_> {
        Region::whole(&self.state_n, self.dims.state_len())
    }

    /// `h_n` `[D, B, O]` of layer `l`'s directions.
    pub(crate) fn h_n(&self, l: usize) -> Region<'_> {
        let n = self.dims.dirs * self.dims.batch * self.dims.out;
        Region {
            buffer: &self.state_n,
            offset: l * n,
            len: n,
        }
    }

    /// Layer `l`'s input sequence: `x` for the first layer, the output of the one below (through
    /// its dropout in a plan with dropout) else.
    pub(super) fn layer_input(&self, l: usize) -> &wgpu::Buffer {
        if l == 0 {
            return &self.x;
        }
        let below = &self.layers[l - 1];
        below.y_drop.as_ref().unwrap_or(&below.y)
    }

    pub(super) fn layer(&self, l: usize) -> &LayerBuffers {
        &self.layers[l]
    }

    /// `[h0 | c0 | lengths]`.
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

    /// Dynamic offset of layer `l`'s `dh0` entry in the step uniforms.
    pub(super) fn dh0_offset(&self, l: usize) -> u32 {
        (self.dims.layers * self.dims.seq + l) as u32 * self.step_stride
    }
}

/// One layer's buffers; `xproj` of `xproj_len` floats (the input projection where a GEMM makes
/// it, else a placeholder), the saved activations only when
/// `save`, `y_drop` only when `drop`.
fn layer_buffers(
    gpu: &Gpu,
    d: &Dims,
    save: bool,
    xproj_len: usize,
    drop: bool,
) -> Result<LayerBuffers> {
    let rows_h = d.per_dir(d.hidden);
    let r_len = if d.projected() { rows_h } else { 0 };
    let saved_len = match save {
        true => rows_h + d.per_dir(d.out) + r_len,
        false => r_len.max(4),
    };
    let g_len = if save { 4 * rows_h } else { 4 };
    let none = wgpu::BufferUsages::empty();
    // A whole number of vec4s: the layer above reads it as its input, four floats at a time.
    let y_len = (d.batch * d.seq * d.layer_out()).next_multiple_of(4);
    Ok(LayerBuffers {
        xproj: gpu.storage("xproj", xproj_len, none)?,
        y: gpu.storage("y", y_len, wgpu::BufferUsages::COPY_SRC)?,
        y_drop: match drop {
            true => Some(gpu.storage("y through dropout", y_len, none)?),
            false => None,
        },
        saved: gpu.storage("saved activations", saved_len, none)?,
        gates: gpu.storage("gates", g_len, none)?,
    })
}

/// One `StepParams` per (layer, step), then one `dh0` entry per layer, each at a multiple of the
/// uniform offset alignment.
fn step_uniforms(
    gpu: &Gpu,
    counters: &Counters,
    slots: &LstmSlots,
    d: &Dims,
    save: bool,
) -> Result<(wgpu::Buffer, u32)> {
    let align = gpu.limits().min_uniform_buffer_offset_alignment.max(1);
    let stride = (std::mem::size_of::<StepParams>() as u32).div_ceil(align) * align;
    let entries = d.layers * d.seq + d.layers;
    let mut bytes = vec![0u8; entries * stride as usize];
    let per_layer_h = d.dirs * d.batch * d.out;
    let per_layer_c = d.dirs * d.batch * d.hidden;
    let what = "parameters";
    for l in 0..d.layers {
        let s = slots.layer(l, 0);
        let base = StepParams {
            batch: u32_of("batch", d.batch)?,
            seq: u32_of("sequence", d.seq)?,
            hidden: u32_of("hidden units", d.hidden)?,
            out: u32_of("projection", d.out)?,
            step: 0,
            dirs: u32_of("directions", d.dirs)?,
            save: save as u32,
            input: u32_of("input size", d.layer_input(l))?,
            h_off: u32_of("state", l * per_layer_h)?,
            c_off: u32_of("state", d.h_state_len() + l * per_layer_c)?,
            len_off: u32_of("state", d.state_len())?,
            dh0: 0,
            w_off: u32_of(what, s.w_hh.offset / 4)?,
            b_off: u32_of(what, s.b_hh.offset / 4)?,
            wi_off: u32_of(what, s.w_ih.offset / 4)?,
            bi_off: u32_of(what, s.b_ih.offset / 4)?,
            wr_off: u32_of(what, s.w_hr.map_or(0, |w| w.offset))?,
            dir_params: u32_of(what, slots.dir_stride(l) / 4)?,
            pad: [0; 2],
        };
        let entry = |index: usize, p: StepParams, bytes: &mut [u8]| {
            let at = index * stride as usize;
            bytes[at..at + std::mem::size_of::<StepParams>()]
                .copy_from_slice(bytemuck::bytes_of(&p));
        };
        for t in 0..d.seq {
            let p = StepParams {
                step: t as u32, // t < seq, checked just above
                ..base
            };
            entry(l * d.seq + t, p, &mut bytes);
        }
        entry(
            d.layers * d.seq + l,
            StepParams { dh0: 1, ..base },
            &mut bytes,
        );
    }
    u32_of("step uniforms", bytes.len())?;
    Ok((gpu.uniform("step params", &bytes, counters), stride))
}
