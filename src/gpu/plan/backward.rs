//! Backpropagation through time for one batch shape, on top of a [`ForwardPlan`] that saved its
//! activations.
//!
//! Top layer first: one `lstm_backward_step` dispatch per step, in reverse, then whole-sequence
//! GEMMs for `dh0`, `dW_ih`, `dW_hh` (two: steps `t ≥ 1` pair with `y_{t-1}`, step 0 with `h0`),
//! one column sum for both bias gradients, and `dgates · W_ih` for the gradient of the layer's
//! input (the layer below's `dy`, or `dx`).

use crate::error::Result;
use crate::gemm::{GemmSpec, MatrixLayout};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::{Dispatch, record_all};
use crate::gpu::kernels::column_sum::ColumnSum;
use crate::gpu::kernels::lstm_backward_step;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::layout::{LayerSlots, LstmSlots};
use crate::gpu::plan::forward::{Dims, ForwardPlan};
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;
use crate::lstm::{GradRequest, Upstream};

/// Backward for one `(B, T)`; gradients of the parameters land in the gradient arena given to
/// [`BackwardPlan::new`], laid out like the parameters.
pub(crate) struct BackwardPlan {
    dims: Dims,
    /// Per layer: gradient arriving at its outputs, `[B, T, H]`. The top one is the caller's
    /// `dy`; the others are written by the layer above.
    dy: Vec<wgpu::Buffer>,
    /// `[2, L, B, H]`: `(dh_n, dc_n)` on entry, `(dh0, dc0)` on exit.
    d_state: wgpu::Buffer,
    /// `dL/dx`, `[B, T, I]`.
    dx: wgpu::Buffer,
    /// Per layer, top first as recorded: the step dispatch and the dispatches after the sweep.
    steps: Vec<Dispatch>,
    after: Vec<Vec<Dispatch>>,
    /// The bottom layer's `dx` GEMM, recorded only when `dx` is asked for.
    dx_gemm: Dispatch,
}

/// What one layer's backward reads and writes.
struct LayerIo<'a> {
    l: usize,
    /// Whether the model has biases to learn.
    bias: bool,
    slots: &'a LayerSlots,
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    d_gates: &'a wgpu::Buffer,
}

impl BackwardPlan {
    /// Buffers and dispatches for the shape of `fwd` (which must keep its activations).
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        slots: &LstmSlots,
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        fwd: &ForwardPlan,
    ) -> Result<BackwardPlan> {
        use wgpu::BufferUsages as U;
        let dims = *fwd.dims();
        let rows = dims.batch * dims.seq;
        let dy = (0..dims.layers)
            .map(|_| gpu.storage("dy", rows * dims.hidden, U::COPY_DST))
            .collect::<Result<Vec<_>>>()?;
        let d_state = gpu.storage("dh/dc", 2 * dims.state_len(), U::COPY_DST | U::COPY_SRC)?;
        let d_gates = (0..dims.layers)
            .map(|_| gpu.storage("d_gates", rows * 4 * dims.hidden, U::empty()))
            .collect::<Result<Vec<_>>>()?;
        let dx = gpu.storage("dx", rows * dims.input, U::COPY_SRC)?;
        let io = |l: usize| LayerIo {
            l,
            bias: slots.config.bias,
            slots: &slots.layers[l],
            params,
            grads,
            d_gates: &d_gates[l],
        };
        let dx_gemm = input_gradient(gpu, counters, &dims, &io(0), &dx)?;
        let mut plan = BackwardPlan {
            dims,
            dy,
            d_state,
            dx,
            steps: Vec::new(),
            after: Vec::new(),
            dx_gemm,
        };
        for l in (0..dims.layers).rev() {
            let step = plan.step_dispatch(gpu, fwd, &io(l))?;
            let after = plan.after_sweep(gpu, counters, fwd, &io(l))?;
            plan.steps.push(step);
            plan.after.push(after);
        }
        Ok(plan)
    }

    fn step_dispatch(&self, gpu: &Gpu, fwd: &ForwardPlan, io: &LayerIo<'_>) -> Result<Dispatch> {
        let lb = fwd.layer(io.l);
        let buffers = [
            io.params,
            &lb.gates,
            &lb.c_seq,
            fwd.state0(),
            &self.dy[io.l],
            &self.d_state,
            io.d_gates,
        ];
        let work = lstm_backward_step::work(self.dims.batch, self.dims.hidden);
        let (batch, limits, tuning) = (self.dims.batch, gpu.limits(), gpu.tuning());
        let (kernel, _, _) = lstm_backward_step::variant(batch, limits, tuning);
        Ok(Dispatch::with_shared_uniform(
            gpu,
            (kernel, "backward step", work),
            fwd.step_binding(),
            (&buffers, &[]),
            lstm_backward_step::grid(batch, self.dims.hidden, limits, tuning)?,
        ))
    }

    /// The GEMMs and the column sum that follow layer `io.l`'s reverse sweep.
    fn after_sweep(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        fwd: &ForwardPlan,
        io: &LayerIo<'_>,
    ) -> Result<Vec<Dispatch>> {
        let Dims {
            batch,
            seq,
            hidden: h,
            ..
        } = self.dims;
        let (s, dg, grads) = (io.slots, io.d_gates, io.grads);
        let il = layer_input_size(&self.dims, io.l);
        let h_off = io.l * batch * h;
        let m = MatrixLayout::new;
        let run = |label, spec, a, b, c| {
            let call = Matmul {
                spec,
                a,
                b,
                bias: None,
                c,
            };
            Dispatch::new(gpu, counters, label, &call)
        };
        let mut list = Vec::new();
        // dh0 = dgates_0 · W_hh: rows b·T of dgates, W_hh stored transposed [H, 4H].
        let spec = GemmSpec::new(
            (batch, h, 4 * h),
            m(0, 4 * h).rows(1, seq),
            m(s.w_hh.offset, 4 * h).t(),
            m(h_off, h),
        );
        list.push(run("dh0", spec, dg, io.params, &self.d_state)?);
        // dW_ih = inputᵀ · dgates over all B·T rows.
        let spec = GemmSpec::new(
            (il, 4 * h, batch * seq),
            m(0, il).t(),
            m(0, 4 * h),
            m(s.w_ih.offset, 4 * h),
        );
        list.push(run("dW_ih", spec, fwd.layer_input(io.l), dg, grads)?);
        // dW_hh = Σ_t h_{t-1}ᵀ · dgates_t: rows (b, t ≥ 1) pair with y rows (b, t-1) ...
        if seq > 1 {
            let spec = GemmSpec::new(
                (h, 4 * h, batch * (seq - 1)),
                m(0, h).t().rows(seq - 1, seq),
                m(4 * h, 4 * h).rows(seq - 1, seq),
                m(s.w_hh.offset, 4 * h),
            );
            list.push(run("dW_hh", spec, &fwd.layer(io.l).y, dg, grads)?);
        }
        // ... and rows (b, 0) with h0.
        let spec = GemmSpec::new(
            (h, 4 * h, batch),
            m(h_off, h).t(),
            m(0, 4 * h).rows(1, seq),
            m(s.w_hh.offset, 4 * h),
        )
        .accumulating(seq > 1);
        list.push(run("dW_hh (h0)", spec, fwd.state0(), dg, grads)?);
        // db_ih = db_hh = Σ_rows dgates; a model without biases has none to learn, and their
        // slots in the (zero-initialised) gradient arena stay zero.
        if io.bias {
            let bias = ColumnSum {
                input: dg,
                in_off: 0,
                rows: batch * seq,
                cols: 4 * h,
                out: grads,
                out_offsets: [s.b_ih.offset, s.b_hh.offset],
            };
            list.push(Dispatch::new(gpu, counters, "bias gradients", &bias)?);
        }
        // The layer below's dy.
        if io.l > 0 {
            let dy_below = &self.dy[io.l - 1];
            list.push(input_gradient(gpu, counters, &self.dims, io, dy_below)?);
        }
        Ok(list)
    }

    /// Uploads the upstream gradients (checked by the caller); absent ones are cleared.
    pub(crate) fn load_upstream(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        encoder: &mut wgpu::CommandEncoder,
        up: &Upstream<f32>,
    ) {
        let top = &self.dy[self.dims.layers - 1];
        match &up.dy {
            Some(dy) => gpu.write_array(top, 0, dy.view(), counters),
            None => encoder.clear_buffer(top, 0, None),
        }
        let half = (self.dims.state_len() * 4) as u64;
        for (part, offset) in [(&up.dh_n, 0), (&up.dc_n, half)] {
            match part {
                Some(d) => gpu.write_array(&self.d_state, offset, d.view(), counters),
                None => encoder.clear_buffer(&self.d_state, offset, Some(half)),
            }
        }
    }

    /// Zeroes `dL/dh_n` and `dL/dc_n` (a loss on top then writes the part it feeds).
    pub(crate) fn clear_state_gradients(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.d_state, 0, None);
    }

    /// Layer `l`'s `dL/dh_n` `[B, H]`, for a loss on top to write.
    pub(crate) fn dh_n(&self, l: usize) -> Region<'_> {
        let n = self.dims.batch * self.dims.hidden;
        Region {
            buffer: &self.d_state,
            offset: l * n,
            len: n,
        }
    }

    /// Records backward through time for every layer (after `fwd` ran in the same or an earlier
    /// submission). With `want_dx`, also the bottom layer's `dx`.
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        counters: &Counters,
        fwd: &ForwardPlan,
        want_dx: bool,
    ) {
        for (i, (step, after)) in self.steps.iter().zip(&self.after).enumerate() {
            let l = self.dims.layers - 1 - i;
            for t in (0..self.dims.seq).rev() {
                step.record(gpu, pass, Some(fwd.step_offset(l, t)), counters);
            }
            record_all(gpu, pass, after, counters);
        }
        if want_dx {
            self.dx_gemm.record(gpu, pass, None, counters);
        }
    }

    /// Adds what `want` asks for to `plan`: `dx` `[B, T, I]`, then `dh0` and `dc0` `[L, B, H]`
    /// together, then the gradient arena `grads` (`arena_len` values).
    pub(crate) fn read_grads<'a>(
        &'a self,
        plan: &mut ReadPlan<'a>,
        want: GradRequest,
        grads: &'a wgpu::Buffer,
        arena_len: usize,
    ) {
        let d = &self.dims;
        if want.x {
            plan.add(Region::whole(&self.dx, d.batch * d.seq * d.input));
        }
        if want.state {
            plan.add(Region::whole(&self.d_state, 2 * d.state_len()));
        }
        if want.weights {
            plan.add(Region::whole(grads, arena_len));
        }
    }
}

/// Input size of layer `l`.
fn layer_input_size(d: &Dims, l: usize) -> usize {
    if l == 0 { d.input } else { d.hidden }
}

/// `d_input = dgates · W_ih` (`W_ih` stored transposed `[I_l, 4H]`) into `out` `[B, T, I_l]`.
fn input_gradient(
    gpu: &Gpu,
    counters: &Counters,
    d: &Dims,
    io: &LayerIo<'_>,
    out: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (h, il) = (d.hidden, layer_input_size(d, io.l));
    let spec = GemmSpec::new(
        (d.batch * d.seq, il, 4 * h),
        MatrixLayout::new(0, 4 * h),
        MatrixLayout::new(io.slots.w_ih.offset, 4 * h).t(),
        MatrixLayout::new(0, il),
    );
    let call = Matmul {
        spec,
        a: io.d_gates,
        b: io.params,
        bias: None,
        c: out,
    };
    Dispatch::new(gpu, counters, "input gradient", &call)
}
