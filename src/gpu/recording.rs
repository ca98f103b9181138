//! A compute pass being recorded into a command encoder, which a profile may split around a
//! dispatch.
//!
//! Every call records its dispatches into one compute pass of one encoder and submits once. A
//! [`crate::gpu::Gpu::profile`] on a device without timestamps inside passes needs more: each
//! dispatch in a pass of its own, with timestamps at the pass's beginning and end, or submitted
//! on its own and timed on the CPU ([`crate::gpu::profile::ProfileTiming`]). So the host layer
//! records through a [`Recording`], which holds the encoder as well as the pass: the profiler
//! can end the pass, record or submit what it needs, and the next dispatch begins a new pass.

/// The compute pass being recorded into `encoder` (none between passes: the next
/// [`Recording::pass`] begins one).
pub(crate) struct Recording<'e> {
    encoder: &'e mut wgpu::CommandEncoder,
    /// Holds the encoder's lock (wgpu's, at run time) while it lives: dropped to record into
    /// the encoder itself.
    pass: Option<wgpu::ComputePass<'static>>,
}

impl<'e> Recording<'e> {
    /// Begins a compute pass in `encoder`; it ends when the recording is dropped.
    pub(crate) fn begin(encoder: &'e mut wgpu::CommandEncoder) -> Recording<'e> {
        let pass = begin_pass(encoder);
        Recording {
            encoder,
            pass: Some(pass),
        }
    }

    /// The pass to record into: the current one, or a new one after [`Recording::encoder`].
    pub(crate) fn pass(&mut self) -> &mut wgpu::ComputePass<'static> {
        let encoder = &mut *self.encoder;
        self.pass.get_or_insert_with(|| begin_pass(encoder))
    }

    /// Ends the current pass and hands out the encoder, to record between passes (a pass of
    /// the profiler's own) or to swap for a fresh one (to submit what is recorded so far).
    pub(crate) fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder
    }
}

fn begin_pass(encoder: &mut wgpu::CommandEncoder) -> wgpu::ComputePass<'static> {
    encoder
        .begin_compute_pass(&Default::default())
        .forget_lifetime()
}
