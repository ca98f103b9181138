//! Everything an LSTM needs on the GPU for one batch shape `(B, T)`: buffers, prepared dispatches
//! and their uniforms, made once and reused by every call of that shape.
//!
//! Forward, per layer `l`: one GEMM `xproj = input · W_ihᵀ + b_ih` over all `B·T` rows, then one
//! `lstm_forward_step` dispatch per step (the step index travels as a dynamic uniform offset, so
//! nothing is written between steps).
//!
//! Backward, top layer first: one `lstm_backward_step` dispatch per step, in reverse, then
//! whole-sequence GEMMs for `dh0`, `dW_ih`, `dW_hh` (two: steps `t ≥ 1` pair with `y_{t-1}`, step
//! 0 with `h0`), one column sum for both bias gradients, and `dgates · W_ih` for the gradient of
//! the layer's input (the layer below's `dy`, or `dx`).

use ndarray::ArrayView3;

use crate::error::Result;
use crate::gpu::column_sum;
use crate::gpu::context::Gpu;
use crate::gpu::kernels::{Dispatch, Kernel, StepParams, bind};
use crate::gpu::layout::LstmSlots;
use crate::gpu::matmul::{Gemm, Operand};
use crate::gpu::stats::Counters;
use crate::lstm::{LstmState, Upstream};

/// Per-layer buffers.
pub(crate) struct LayerBuffers {
    /// `x · W_ihᵀ + b_ih` for every row, `[B, T, H]` of gate vec4s.
    pub xproj: wgpu::Buffer,
    /// Hidden state of every step, `[B, T, H]`.
    pub y: wgpu::Buffer,
    /// `c_t` of every step `[B, T, H]` (training; a 16-byte stand-in otherwise).
    pub c_seq: wgpu::Buffer,
    /// Gates of every step `[B, T, H]` vec4 (training; a stand-in otherwise).
    pub gates: wgpu::Buffer,
}

/// Buffers and dispatches that only training needs.
pub(crate) struct Backward {
    /// Per layer: gradient arriving at its outputs, `[B, T, H]`. The top one is the caller's
    /// `dy`; the others are written by the layer above.
    pub dy: Vec<wgpu::Buffer>,
    /// `[2, L, B, H]`: `(dh_n, dc_n)` on entry, `(dh0, dc0)` on exit.
    pub d_state: wgpu::Buffer,
    /// `dL/dx`, `[B, T, I]`.
    pub dx: wgpu::Buffer,
    /// Per layer, top first as recorded: the step dispatch and the GEMMs after the sweep.
    steps: Vec<Dispatch>,
    after: Vec<Vec<Dispatch>>,
    /// The bottom layer's `dx` GEMM, recorded only when `dx` is asked for.
    dx_gemm: Dispatch,
}

/// Buffers and prepared dispatches for one `(B, T)`.
pub(crate) struct Workspace {
    pub batch: usize,
    pub seq: usize,
    pub slots: LstmSlots,
    /// The input sequence `[B, T, I]`.
    pub x: wgpu::Buffer,
    /// `[2, L, B, H]`: h0 then c0.
    pub state0: wgpu::Buffer,
    /// `[2, L, B, H]`: h_n then c_n.
    pub state_n: wgpu::Buffer,
    pub layers: Vec<LayerBuffers>,
    /// One `StepParams` per (layer, step) at `step_stride` bytes.
    _step_uniforms: wgpu::Buffer,
    step_stride: u32,
    input_proj: Vec<Dispatch>,
    steps: Vec<Dispatch>,
    pub backward: Option<Backward>,
    /// Staging for readback, large enough for everything this workspace can return (absent
    /// when the owner reads back through buffers of its own).
    pub staging: Option<wgpu::Buffer>,
}

impl Workspace {
    /// Builds the workspace. With `grads` (an arena laid out like `params`) it can also run
    /// backward, and keeps the forward activations that needs. With `readback` it gets a staging
    /// buffer for everything it can return.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        slots: &LstmSlots,
        params: &wgpu::Buffer,
        grads: Option<&wgpu::Buffer>,
        grads_len: usize,
        batch: usize,
        seq: usize,
        readback: bool,
    ) -> Result<Workspace> {
        use wgpu::BufferUsages as U;
        let config = slots.config;
        let (h, l_count) = (config.hidden_size, config.num_layers);
        let train = grads.is_some();
        let rows = batch * seq;
        let state_len = 2 * l_count * batch * h;

        let x = gpu.storage("x", rows * config.input_size, U::COPY_DST)?;
        let state0 = gpu.storage("h0/c0", state_len, U::COPY_DST)?;
        let state_n = gpu.storage("h_n/c_n", state_len, U::COPY_SRC)?;
        let mut layers = Vec::with_capacity(l_count);
        for _ in 0..l_count {
            let (c_len, g_len) = if train {
                (rows * h, rows * 4 * h)
            } else {
                (4, 4)
            };
            layers.push(LayerBuffers {
                xproj: gpu.storage("xproj", rows * 4 * h, U::empty())?,
                y: gpu.storage("y", rows * h, U::COPY_SRC)?,
                c_seq: gpu.storage("c_seq", c_len, U::empty())?,
                gates: gpu.storage("gates", g_len, U::empty())?,
            });
        }

        // Step uniforms: one entry per (layer, step), shared by forward and backward.
        let align = gpu.limits().min_uniform_buffer_offset_alignment.max(1);
        let step_stride = (std::mem::size_of::<StepParams>() as u32).div_ceil(align) * align;
        let mut bytes = vec![0u8; (l_count * seq).max(1) * step_stride as usize];
        for l in 0..l_count {
            for t in 0..seq {
                let p = StepParams {
                    batch: batch as u32,
                    seq: seq as u32,
                    hidden: h as u32,
                    t: t as u32,
                    h_off: (l * batch * h) as u32,
                    c_off: ((l_count + l) * batch * h) as u32,
                    save: train as u32,
                    w_off: (slots.layers[l].w_hh.offset / 4) as u32,
                    b_off: (slots.layers[l].b_hh.offset / 4) as u32,
                    pad: [0; 3],
                };
                let at = (l * seq + t) * step_stride as usize;
                bytes[at..at + std::mem::size_of::<StepParams>()]
                    .copy_from_slice(bytemuck::bytes_of(&p));
            }
        }
        let step_uniforms = gpu.uniform("step params", &bytes, counters);
        let step_binding = || {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &step_uniforms,
                offset: 0,
                size: wgpu::BufferSize::new(std::mem::size_of::<StepParams>() as u64),
            })
        };
        let step_groups = [(h as u32).div_ceil(16), (batch as u32).div_ceil(16), 1];

        let mut input_proj = Vec::with_capacity(l_count);
        let mut steps = Vec::with_capacity(l_count);
        for l in 0..l_count {
            let s = &slots.layers[l];
            let input = if l == 0 { &x } else { &layers[l - 1].y };
            let il = config.layer_input_size(l);
            input_proj.push(
                Gemm {
                    m: rows,
                    n: 4 * h,
                    k: il,
                    a: Operand::new(input, 0, il),
                    b: Operand::new(params, s.w_ih.offset, 4 * h),
                    bias: Some((params, s.b_ih.offset)),
                    c: (&layers[l].xproj, 0, 4 * h),
                    accumulate: false,
                }
                .prepare(gpu, "input projection", counters)?,
            );
            let lb = &layers[l];
            steps.push(Dispatch {
                kernel: Kernel::LstmForwardStep,
                bind_group: bind(
                    gpu.device(),
                    gpu.kernels(),
                    Kernel::LstmForwardStep,
                    step_binding(),
                    &[
                        &lb.xproj, params, &state0, &lb.y, &state_n, &lb.c_seq, &lb.gates,
                    ],
                ),
                workgroups: step_groups,
                _uniform: None,
            });
        }

        let backward = match grads {
            None => None,
            Some(grads) => {
                let dy = (0..l_count)
                    .map(|_| gpu.storage("dy", rows * h, U::COPY_DST))
                    .collect::<Result<Vec<_>>>()?;
                let d_state = gpu.storage("dh/dc", state_len, U::COPY_DST | U::COPY_SRC)?;
                let d_gates = (0..l_count)
                    .map(|_| gpu.storage("d_gates", rows * 4 * h, U::empty()))
                    .collect::<Result<Vec<_>>>()?;
                let dx = gpu.storage("dx", rows * config.input_size, U::COPY_SRC)?;
                let mut bsteps = Vec::with_capacity(l_count);
                let mut after = Vec::with_capacity(l_count);
                for l in (0..l_count).rev() {
                    let s = &slots.layers[l];
                    let lb = &layers[l];
                    let dg = &d_gates[l];
                    let il = config.layer_input_size(l);
                    let input = if l == 0 { &x } else { &layers[l - 1].y };
                    let h_off = l * batch * h;
                    bsteps.push(Dispatch {
                        kernel: Kernel::LstmBackwardStep,
                        bind_group: bind(
                            gpu.device(),
                            gpu.kernels(),
                            Kernel::LstmBackwardStep,
                            step_binding(),
                            &[params, &lb.gates, &lb.c_seq, &state0, &dy[l], &d_state, dg],
                        ),
                        workgroups: step_groups,
                        _uniform: None,
                    });
                    let mut list = Vec::new();
                    // dh0 = dgates_0 · W_hh: rows b·T of dgates, W_hh stored transposed [H, 4H].
                    list.push(
                        Gemm {
                            m: batch,
                            n: h,
                            k: 4 * h,
                            a: Operand::new(dg, 0, 4 * h).rows(1, seq),
                            b: Operand::new(params, s.w_hh.offset, 4 * h).t(),
                            bias: None,
                            c: (&d_state, h_off, h),
                            accumulate: false,
                        }
                        .prepare(gpu, "dh0", counters)?,
                    );
                    // dW_ih = inputᵀ · dgates over all B·T rows.
                    list.push(
                        Gemm {
                            m: il,
                            n: 4 * h,
                            k: rows,
                            a: Operand::new(input, 0, il).t(),
                            b: Operand::new(dg, 0, 4 * h),
                            bias: None,
                            c: (grads, s.w_ih.offset, 4 * h),
                            accumulate: false,
                        }
                        .prepare(gpu, "dW_ih", counters)?,
                    );
                    // dW_hh = Σ_t h_{t-1}ᵀ · dgates_t: rows (b, t ≥ 1) pair with y rows (b, t-1) ...
                    if seq > 1 {
                        list.push(
                            Gemm {
                                m: h,
                                n: 4 * h,
                                k: batch * (seq - 1),
                                a: Operand::new(&lb.y, 0, h).t().rows(seq - 1, seq),
                                b: Operand::new(dg, 4 * h, 4 * h).rows(seq - 1, seq),
                                bias: None,
                                c: (grads, s.w_hh.offset, 4 * h),
                                accumulate: false,
                            }
                            .prepare(gpu, "dW_hh", counters)?,
                        );
                    }
                    // ... and rows (b, 0) with h0.
                    list.push(
                        Gemm {
                            m: h,
                            n: 4 * h,
                            k: batch,
                            a: Operand::new(&state0, h_off, h).t(),
                            b: Operand::new(dg, 0, 4 * h).rows(1, seq),
                            bias: None,
                            c: (grads, s.w_hh.offset, 4 * h),
                            accumulate: seq > 1,
                        }
                        .prepare(gpu, "dW_hh (h0)", counters)?,
                    );
                    // db_ih = db_hh = Σ_rows dgates.
                    list.push(column_sum::prepare(
                        gpu,
                        counters,
                        dg,
                        0,
                        rows,
                        4 * h,
                        grads,
                        [s.b_ih.offset, s.b_hh.offset],
                    )?);
                    // The layer below's dy = dgates · W_ih (W_ih stored transposed [I_l, 4H]).
                    if l > 0 {
                        list.push(
                            Gemm {
                                m: rows,
                                n: il,
                                k: 4 * h,
                                a: Operand::new(dg, 0, 4 * h),
                                b: Operand::new(params, s.w_ih.offset, 4 * h).t(),
                                bias: None,
                                c: (&dy[l - 1], 0, il),
                                accumulate: false,
                            }
                            .prepare(
                                gpu,
                                "dy of the layer below",
                                counters,
                            )?,
                        );
                    }
                    after.push(list);
                }
                let s0 = &slots.layers[0];
                let dx_gemm = Gemm {
                    m: rows,
                    n: config.input_size,
                    k: 4 * h,
                    a: Operand::new(&d_gates[0], 0, 4 * h),
                    b: Operand::new(params, s0.w_ih.offset, 4 * h).t(),
                    bias: None,
                    c: (&dx, 0, config.input_size),
                    accumulate: false,
                }
                .prepare(gpu, "dx", counters)?;
                Some(Backward {
                    dy,
                    d_state,
                    dx,
                    steps: bsteps,
                    after,
                    dx_gemm,
                })
            }
        };

        let mut staging_len = rows * h + state_len;
        if train {
            staging_len += rows * config.input_size + state_len + grads_len;
        }
        let staging = match readback {
            true => Some(gpu.staging("readback", staging_len)?),
            false => None,
        };
        Ok(Workspace {
            batch,
            seq,
            slots: slots.clone(),
            x,
            state0,
            state_n,
            layers,
            _step_uniforms: step_uniforms,
            step_stride,
            input_proj,
            steps,
            backward,
            staging,
        })
    }

    /// Whether this workspace serves `(batch, seq)` (and, if `train`, can run backward).
    pub(crate) fn fits(&self, batch: usize, seq: usize) -> bool {
        self.batch == batch && self.seq == seq
    }

    /// Element count of a `[2, L, B, H]` state.
    pub(crate) fn state_len(&self) -> usize {
        2 * self.slots.config.num_layers * self.batch * self.slots.config.hidden_size
    }

    /// Top layer's output buffer `[B, T, H]`.
    pub(crate) fn y_top(&self) -> &wgpu::Buffer {
        &self.layers[self.layers.len() - 1].y
    }

    /// Uploads `x` `[B, T, I]` (checked by the caller) and `h0`/`c0` (or clears them).
    pub(crate) fn load_inputs(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        x: ArrayView3<'_, f32>,
        state: Option<&LstmState<f32>>,
    ) {
        let x = x.as_standard_layout();
        gpu.write(
            &self.x,
            0,
            bytemuck::cast_slice(x.as_slice().unwrap_or(&[])),
            counters,
        );
        match state {
            Some(s) => {
                let h = s.h.as_standard_layout();
                let c = s.c.as_standard_layout();
                let half = (self.state_len() / 2 * 4) as u64;
                gpu.write(
                    &self.state0,
                    0,
                    bytemuck::cast_slice(h.as_slice().unwrap_or(&[])),
                    counters,
                );
                gpu.write(
                    &self.state0,
                    half,
                    bytemuck::cast_slice(c.as_slice().unwrap_or(&[])),
                    counters,
                );
            }
            None => encoder.clear_buffer(&self.state0, 0, None),
        }
    }

    /// Uploads the upstream gradients (checked by the caller); absent ones are cleared.
    pub(crate) fn load_upstream(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        up: &Upstream<f32>,
    ) {
        let Some(bw) = &self.backward else { return };
        let top = &bw.dy[bw.dy.len() - 1];
        match &up.dy {
            Some(dy) => {
                let dy = dy.as_standard_layout();
                gpu.write(
                    top,
                    0,
                    bytemuck::cast_slice(dy.as_slice().unwrap_or(&[])),
                    counters,
                );
            }
            None => encoder.clear_buffer(top, 0, None),
        }
        let half = (self.state_len() / 2 * 4) as u64;
        for (part, offset) in [(&up.dh_n, 0), (&up.dc_n, half)] {
            match part {
                Some(d) => {
                    let d = d.as_standard_layout();
                    gpu.write(
                        &bw.d_state,
                        offset,
                        bytemuck::cast_slice(d.as_slice().unwrap_or(&[])),
                        counters,
                    );
                }
                None => encoder.clear_buffer(&bw.d_state, offset, Some(half)),
            }
        }
    }

    /// Records the forward pass of every layer.
    pub(crate) fn record_forward(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        counters: &Counters,
    ) {
        let kernels = gpu.kernels();
        for (l, (proj, step)) in self.input_proj.iter().zip(&self.steps).enumerate() {
            proj.record(kernels, pass, None, counters);
            for t in 0..self.seq {
                let offset = (l * self.seq + t) as u32 * self.step_stride;
                step.record(kernels, pass, Some(offset), counters);
            }
        }
    }

    /// Records backward through time for every layer (after [`Workspace::record_forward`] in the
    /// same or an earlier submission). With `want_dx`, also the bottom layer's `dx`.
    pub(crate) fn record_backward(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        counters: &Counters,
        want_dx: bool,
    ) {
        let Some(bw) = &self.backward else { return };
        let kernels = gpu.kernels();
        let l_count = self.layers.len();
        for (i, (step, after)) in bw.steps.iter().zip(&bw.after).enumerate() {
            let l = l_count - 1 - i;
            for t in (0..self.seq).rev() {
                let offset = (l * self.seq + t) as u32 * self.step_stride;
                step.record(kernels, pass, Some(offset), counters);
            }
            for d in after {
                d.record(kernels, pass, None, counters);
            }
        }
        if want_dx {
            bw.dx_gemm.record(kernels, pass, None, counters);
        }
    }
}
