//! Plans: for one batch shape, the buffers and prepared dispatches of a whole pass, made once and
//! reused by every call of that shape. Fields are private; owners talk to plans through methods.
//!
//! * [`forward::ForwardPlan`]: the LSTM's forward pass (input projections, one step dispatch per
//!   timestep and layer).
//! * [`backward::BackwardPlan`]: backpropagation through time on top of a forward plan.
//! * [`classifier::ClassifierPlan`]: the reference classifier's head and loss around both.
//! * [`update::UpdatePlan`]: gradient clipping and the optimizer update over the
//!   [`arenas::Arenas`] (parameters, gradients, moments) a trainer keeps on the GPU.

pub(crate) mod arenas;
pub(crate) mod backward;
pub(crate) mod classifier;
pub(crate) mod forward;
pub(crate) mod update;

/// Writes the masks' key of `dropout` (its pass) into dropout dispatches, each given with the
/// layer whose output it drops, over `len` elements: before a training pass is submitted.
pub(crate) fn write_dropout_keys<'a>(
    gpu: &crate::gpu::context::Gpu,
    counters: &crate::gpu::stats::Counters,
    dispatches: impl Iterator<Item = (usize, &'a crate::gpu::dispatch::Dispatch)>,
    len: usize,
    dropout: &crate::lstm::Dropout,
) -> crate::error::Result<()> {
    use crate::gpu::kernels::dropout::params;
    for (layer, d) in dispatches {
        d.write_params(gpu, counters, &params((len, 0, 0), dropout, layer)?);
    }
    Ok(())
}
