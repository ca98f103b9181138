//! Backpropagation through time for one batch shape, on top of a [`ForwardPlan`] that saved its
//! activations.
//!
//! Top layer first. Per step, in reverse: in a projected layer one `lstm_backward_hidden_step`
//! dispatch (the gradient on `h`, which the step needs whole to send through `W_hr`), then one
//! `lstm_backward_step` dispatch for every direction. After step 0 one more dispatch sends the
//! first step's gate gradients back into `dh0`. Then per direction whole-sequence GEMMs for
//! `dW_ih`, `dW_hh` (over the `h_prev` the forward kept) and `dW_hr`, one column sum for both
//! bias gradients, and `Σ_d dgates_d · W_ih_d` for the gradient of the layer's input (through
//! the lower layer's dropout in a plan with dropout: the layer below's `dy`, or `dx`).

use crate::error::Result;
use crate::gemm::{GemmSpec, MatrixLayout};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::{Dispatch, record_all};
use crate::gpu::kernels::column_sum::ColumnSum;
use crate::gpu::kernels::dropout::Dropout as DropoutCall;
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::kernels::{Kernel, lstm_backward_hidden_step, lstm_backward_step};
use crate::gpu::layout::LstmSlots;
use crate::gpu::plan::forward::{Dims, ForwardPlan};
use crate::gpu::readback::ReadPlan;
use crate::gpu::recording::Recording;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;
use crate::gpu::weight_texels::WeightTexels;
use crate::lstm::{Dropout, GradRequest, Upstream};

/// Backward for one `(B, T)`; gradients of the parameters land in the gradient arena given to
/// [`BackwardPlan::new`], laid out like the parameters.
pub(crate) struct BackwardPlan {
    dims: Dims,
    /// Per layer: gradient arriving at its outputs, `[B, T, D·O]`. The top one is the caller's
    /// `dy`; the others are written by the layer above.
    dy: Vec<wgpu::Buffer>,
    /// `[dh | dc]`: `(dh_n, dc_n)` on entry, `(dh0, dc0)` on exit.
    d_state: wgpu::Buffer,
    /// `dL/dx`, `[B, T, I]`.
    dx: wgpu::Buffer,
    /// Per layer, top first as recorded: the dispatches of each step (the hidden step of a
    /// projected layer, then the step), the `dh0` dispatch, and those after the sweep.
    steps: Vec<Vec<Dispatch>>,
    dh0: Vec<Dispatch>,
    after: Vec<Vec<Dispatch>>,
    /// Per layer above the bottom, top first: the dropout of the gradient on its input.
    dropouts: Vec<Option<Dispatch>>,
    /// The bottom layer's `dx` GEMMs (one per direction), recorded only when `dx` is asked for.
    dx_gemms: Vec<Dispatch>,
}

/// What one layer's backward reads and writes.
struct LayerIo<'a> {
    l: usize,
    slots: &'a LstmSlots,
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    d_gates: &'a wgpu::Buffer,
    dh_seq: &'a wgpu::Buffer,
    /// The layer's weight texture, which the step's texel variants read, or an unread one
    /// where the model keeps none.
    texels: &'a wgpu::TextureView,
    /// Whether `texels` holds the layer's weights.
    has_texels: bool,
}

impl BackwardPlan {
    /// Buffers and dispatches for the shape of `fwd` (which must keep its activations); where
    /// the model keeps its weights in textures (`texels`), the steps read `W_hh` from them.
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        (slots, params, texels): (&LstmSlots, &wgpu::Buffer, Option<&WeightTexels>),
        grads: &wgpu::Buffer,
        fwd: &ForwardPlan,
    ) -> Result<BackwardPlan> {
        use wgpu::BufferUsages as U;
        let dims = *fwd.dims();
        let rows = dims.batch * dims.seq;
        let dy = (0..dims.layers)
            .map(|_| gpu.storage("dy", rows * dims.layer_out(), U::COPY_DST))
            .collect::<Result<Vec<_>>>()?;
        let d_state = gpu.storage("dh/dc", dims.state_len(), U::COPY_DST | U::COPY_SRC)?;
        let d_gates = (0..dims.layers)
            .map(|_| gpu.storage("d_gates", 4 * dims.per_dir(dims.hidden), U::empty()))
            .collect::<Result<Vec<_>>>()?;
        let dh_len = match dims.projected() {
            true => dims.per_dir(dims.out),
            false => 4,
        };
        let dh_seq = (0..dims.layers)
            .map(|_| gpu.storage("dh", dh_len, U::empty()))
            .collect::<Result<Vec<_>>>()?;
        // The gradient on a layer's dropped input, before the dropout's backward.
        let d_dropped = match fwd.drops() {
            true => {
                Some(gpu.storage("d(y through dropout)", rows * dims.layer_out(), U::empty())?)
            }
            false => None,
        };
        let dx = gpu.storage("dx", rows * dims.input, U::COPY_SRC)?;
        let unread = match texels {
            Some(_) => None,
            None => Some(gpu.unread_texels()?),
        };
        let io = |l: usize| LayerIo {
            l,
            slots,
            params,
            grads,
            d_gates: &d_gates[l],
            dh_seq: &dh_seq[l],
            texels: match (texels, &unread) {
                (Some(t), _) => t.view(l),
                (None, Some(unread)) => unread,
                (None, None) => unreachable!("made above when the model keeps no textures"),
            },
            has_texels: texels.is_some(),
        };
        let dx_gemms = input_gradient(gpu, counters, &dims, &io(0), &dx)?;
        let mut plan = BackwardPlan {
            dims,
            dy,
            d_state,
            dx,
            steps: Vec::new(),
            dh0: Vec::new(),
            after: Vec::new(),
            dropouts: Vec::new(),
            dx_gemms,
        };
        for l in (0..dims.layers).rev() {
            let (steps, dh0) = plan.step_dispatches(gpu, fwd, &io(l))?;
            let mut after = plan.weight_gradients(gpu, counters, fwd, &io(l))?;
            let mut dropout = None;
            if l > 0 {
                // The layer below's dy, through its dropout when the plan has one.
                let target = d_dropped.as_ref().unwrap_or(&plan.dy[l - 1]);
                after.extend(input_gradient(gpu, counters, &dims, &io(l), target)?);
                if let Some(d_dropped) = &d_dropped {
                    let call = DropoutCall {
                        input: d_dropped,
                        in_off: 0,
                        out: &plan.dy[l - 1],
                        out_off: 0,
                        len: rows * dims.layer_out(),
                        // The key is written before each training pass (`write_dropout`).
                        dropout: Dropout::new(0.0, 0)?,
                        layer: l - 1,
                    };
                    dropout = Some(Dispatch::new(gpu, counters, "dropout backward", &call)?);
                }
            }
            plan.steps.push(steps);
            plan.dh0.push(dh0);
            plan.after.push(after);
            plan.dropouts.push(dropout);
        }
        Ok(plan)
    }

    /// Layer `io.l`'s dispatches of one step (in order), and its `dh0` dispatch.
    fn step_dispatches(
        &self,
        gpu: &Gpu,
        fwd: &ForwardPlan,
        io: &LayerIo<'_>,
    ) -> Result<(Vec<Dispatch>, Dispatch)> {
        let d = self.dims;
        let lb = fwd.layer(io.l);
        let (limits, tuning) = (gpu.limits(), gpu.tuning());
        let buffers = [
            io.params,
            &lb.gates,
            &lb.saved,
            fwd.state0(),
            &self.dy[io.l],
            &self.d_state,
            io.d_gates,
            io.dh_seq,
        ];
        let work = lstm_backward_step::work(d.batch, d.hidden, d.out, d.dirs);
        let projected = d.projected();
        let (kernel, _, _) =
            lstm_backward_step::variant(d.batch, projected, limits, tuning, io.has_texels);
        let texels = io.texels;
        let step = Dispatch::with_shared_uniform(
            gpu,
            (kernel, "backward step", work),
            fwd.step_binding(),
            (&buffers, &[texels]),
            lstm_backward_step::grid((d.batch, d.hidden, d.dirs), projected, limits, tuning)?,
        )?;
        if !projected {
            let dh0 = Dispatch::with_shared_uniform(
                gpu,
                (kernel, "dh0", work),
                fwd.step_binding(),
                (&buffers, &[texels]),
                lstm_backward_step::grid((d.batch, d.hidden, d.dirs), false, limits, tuning)?,
            )?;
            return Ok((vec![step], dh0));
        }
        let buffers = [
            io.params,
            fwd.state0(),
            &self.dy[io.l],
            io.d_gates,
            &self.d_state,
            io.dh_seq,
        ];
        let hidden = |label| -> Result<Dispatch> {
            Dispatch::with_shared_uniform(
                gpu,
                (
                    Kernel::LstmBackwardHiddenStep,
                    label,
                    lstm_backward_hidden_step::work(d.batch, d.hidden, d.out, d.dirs),
                ),
                fwd.step_binding(),
                (&buffers, &[]),
                lstm_backward_hidden_step::grid((d.batch, d.out, d.dirs), limits)?,
            )
        };
        Ok((vec![hidden("backward hidden step")?, step], hidden("dh0")?))
    }

    /// The weight-gradient GEMMs and the column sums that follow layer `io.l`'s reverse sweep,
    /// per direction.
    fn weight_gradients(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        fwd: &ForwardPlan,
        io: &LayerIo<'_>,
    ) -> Result<Vec<Dispatch>> {
        let d = self.dims;
        let (rows, h, o) = (d.batch * d.seq, d.hidden, d.out);
        let il = d.layer_input(io.l);
        let saved = &fwd.layer(io.l).saved;
        let m = MatrixLayout::new;
        let run = |label, spec, a, b, c| {
            let call = Matmul {
                subgroups: gpu.tuning().subgroups,
                spec,
                a,
                b,
                bias: None,
                c,
            };
            Dispatch::new(gpu, counters, label, &call)
        };
        let mut list = Vec::new();
        for dir in 0..d.dirs {
            let s = io.slots.layer(io.l, dir);
            let dg = m(dir * rows * 4 * h, 4 * h);
            // dW_ih = inputᵀ · dgates over all B·T rows (padding rows have zero dgates).
            let spec = GemmSpec::new((il, 4 * h, rows), m(0, il).t(), dg, m(s.w_ih.offset, 4 * h));
            let input = fwd.layer_input(io.l);
            list.push(run("dW_ih", spec, input, io.d_gates, io.grads)?);
            // dW_hh = h_prevᵀ · dgates, with the h_prev each step read.
            let h_prev = m(d.h_prev_at() + dir * rows * o, o).t();
            let spec = GemmSpec::new((o, 4 * h, rows), h_prev, dg, m(s.w_hh.offset, 4 * h));
            list.push(run("dW_hh", spec, saved, io.d_gates, io.grads)?);
            // db_ih = db_hh = Σ_rows dgates; a model without biases has none to learn, and
            // their slots in the (zero-initialised) gradient arena stay zero.
            if io.slots.config.bias {
                let bias = ColumnSum {
                    input: io.d_gates,
                    in_off: dir * rows * 4 * h,
                    rows,
                    cols: 4 * h,
                    out: io.grads,
                    out_offsets: [s.b_ih.offset, s.b_hh.offset],
                };
                list.push(Dispatch::new(gpu, counters, "bias gradients", &bias)?);
            }
            // dW_hr = dhᵀ · r.
            if let Some(w_hr) = s.w_hr {
                let dh = m(dir * rows * o, o).t();
                let r = m(d.r_at(true) + dir * rows * h, h);
                let spec = GemmSpec::new((o, h, rows), dh, r, m(w_hr.offset, h));
                list.push(run("dW_hr", spec, io.dh_seq, saved, io.grads)?);
            }
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
        let h_bytes = (self.dims.h_state_len() * 4) as u64;
        let c_bytes = (self.dims.c_state_len() * 4) as u64;
        for (part, offset, bytes) in [(&up.dh_n, 0, h_bytes), (&up.dc_n, h_bytes, c_bytes)] {
            match part {
                Some(d) => gpu.write_array(&self.d_state, offset, d.view(), counters),
                None => encoder.clear_buffer(&self.d_state, offset, Some(bytes)),
            }
        }
    }

    /// Zeroes `dL/dh_n` and `dL/dc_n` (a loss on top then writes the part it feeds).
    pub(crate) fn clear_state_gradients(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.d_state, 0, None);
    }

    /// `dL/dh_n` `[D, B, O]` of layer `l`'s directions, for a loss on top to write.
    pub(crate) fn dh_n(&self, l: usize) -> Region<'_> {
        let n = self.dims.dirs * self.dims.batch * self.dims.out;
        Region {
            buffer: &self.d_state,
            offset: l * n,
            len: n,
        }
    }

    /// Writes the masks' key of `dropout` (its pass, the forward's) into the dropout
    /// dispatches, before a training pass is submitted.
    pub(crate) fn write_dropout(
        &self,
        gpu: &Gpu,
        counters: &Counters,
        dropout: &Dropout,
    ) -> Result<()> {
        let len = self.dims.batch * self.dims.seq * self.dims.layer_out();
        // Top first: entry i belongs to layer L-1-i, and drops layer L-2-i's output.
        let below = |i: usize| self.dims.layers - 2 - i;
        let list = self.dropouts.iter().enumerate();
        let dispatches = list.filter_map(|(i, d)| d.as_ref().map(|d| (below(i), d)));
        super::write_dropout_keys(gpu, counters, dispatches, len, dropout)
    }

    /// Records backward through time for every layer (after `fwd` ran in the same or an earlier
    /// submission). With `want_dx`, also the bottom layer's `dx`.
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        pass: &mut Recording<'_>,
        counters: &Counters,
        fwd: &ForwardPlan,
        want_dx: bool,
    ) {
        for (i, steps) in self.steps.iter().enumerate() {
            let l = self.dims.layers - 1 - i;
            for t in (0..self.dims.seq).rev() {
                for step in steps {
                    step.record(gpu, pass, Some(fwd.step_offset(l, t)), counters);
                }
            }
            self.dh0[i].record(gpu, pass, Some(fwd.dh0_offset(l)), counters);
            record_all(gpu, pass, &self.after[i], counters);
            if let Some(d) = &self.dropouts[i] {
                d.record(gpu, pass, None, counters);
            }
        }
        if want_dx {
            record_all(gpu, pass, &self.dx_gemms, counters);
        }
    }

    /// Adds what `want` asks for to `plan`: `dx` `[B, T, I]`, then `dh0` and `dc0` together,
    /// then the gradient arena `grads` (`arena_len` values).
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
            plan.add(Region::whole(&self.d_state, d.state_len()));
        }
        if want.weights {
            plan.add(Region::whole(grads, arena_len));
        }
    }
}

/// `d_input = Σ_d dgates_d · W_ih_d` (`W_ih` stored transposed `[I_l, 4H]`) into `out`
/// `[B, T, I_l]`: one GEMM per direction, the second adding to the first.
fn input_gradient(
    gpu: &Gpu,
    counters: &Counters,
    d: &Dims,
    io: &LayerIo<'_>,
    out: &wgpu::Buffer,
) -> Result<Vec<Dispatch>> {
    let (h, il, rows) = (d.hidden, d.layer_input(io.l), d.batch * d.seq);
    (0..d.dirs)
        .map(|dir| {
            let spec = GemmSpec::new(
                (rows, il, 4 * h),
                MatrixLayout::new(dir * rows * 4 * h, 4 * h),
                MatrixLayout::new(io.slots.layer(io.l, dir).w_ih.offset, 4 * h).t(),
                MatrixLayout::new(0, il),
            )
            .accumulating(dir > 0);
            let call = Matmul {
                subgroups: gpu.tuning().subgroups,
                spec,
                a: io.d_gates,
                b: io.params,
                bias: None,
                c: out,
            };
            Dispatch::new(gpu, counters, "input gradient", &call)
        })
        .collect()
}
