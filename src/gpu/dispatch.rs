//! Dispatches prepared once per shape: a kernel's pipeline, its bind group (with the uniform it
//! reads kept alive beside it) and its grid. Recording one later costs no allocation.

use crate::error::Result;
use crate::gpu::context::Gpu;
use crate::gpu::kernels::{Call, Kernel, Work};
use crate::gpu::recording::Recording;
use crate::gpu::stats::Counters;

/// One prepared dispatch.
pub(crate) struct Dispatch {
    kernel: Kernel,
    /// What the dispatch is for (a profile's rows, errors, debuggers).
    label: &'static str,
    /// What it computes and moves (a profile's rates).
    work: Work,
    bind_group: wgpu::BindGroup,
    /// The bind group of odd steps, where they bind other textures than even ones
    /// ([`Dispatch::with_odd_steps_textures`]).
    odd_steps: Option<wgpu::BindGroup>,
    workgroups: [u32; 3],
    /// The dispatch's own uniform (absent when it reads a shared one with a dynamic offset).
    uniform: Option<wgpu::Buffer>,
}

impl Dispatch {
    /// Prepares `call`: writes its uniform into a buffer of its own, binds its buffers, computes
    /// its grid. `label` names it in errors and debuggers.
    pub(crate) fn new<C: Call>(
        gpu: &Gpu,
        counters: &Counters,
        label: &'static str,
        call: &C,
    ) -> Result<Dispatch> {
        let params = call.params()?;
        let workgroups = call.grid(gpu.limits())?;
        let kernel = call.kernel(gpu.limits());
        let uniform = gpu.uniform(label, bytemuck::bytes_of(&params), counters);
        let resources = (&call.buffers()[..], &call.textures()[..]);
        let bind_group = bind(gpu, kernel, uniform.as_entire_binding(), resources)?;
        Ok(Dispatch {
            kernel,
            label,
            work: call.work(),
            bind_group,
            odd_steps: None,
            workgroups,
            uniform: Some(uniform),
        })
    }

    /// Prepares a dispatch of `kernel` that reads a shared uniform buffer at a dynamic offset
    /// (given to [`Dispatch::record`]); `uniform` binds one entry of it, `buffers` and then
    /// `textures` the rest. `label` and `work` as for [`Dispatch::new`], where the call reports
    /// its own work. Fails where the kernel, compiled now if nothing has needed it before, does
    /// not compile ([`crate::gpu::kernels`]).
    pub(crate) fn with_shared_uniform(
        gpu: &Gpu,
        (kernel, label, work): (Kernel, &'static str, Work),
        uniform: wgpu::BindingResource<'_>,
        (buffers, textures): (&[&wgpu::Buffer], &[&wgpu::TextureView]),
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        Ok(Dispatch {
            kernel,
            label,
            work,
            bind_group: bind(gpu, kernel, uniform, (buffers, textures))?,
            odd_steps: None,
            workgroups,
            uniform: None,
        })
    }

    /// This step dispatch with a second bind group for odd steps ([`Dispatch::record_step`]):
    /// `uniform` and `buffers` as given to [`Dispatch::with_shared_uniform`], `textures` in
    /// place of its textures. For kernels whose steps read a texture the step before wrote: even
    /// steps write one texture and read the other, odd steps the other way round.
    pub(crate) fn with_odd_steps_textures(
        self,
        gpu: &Gpu,
        uniform: wgpu::BindingResource<'_>,
        (buffers, textures): (&[&wgpu::Buffer], &[&wgpu::TextureView]),
    ) -> Result<Dispatch> {
        Ok(Dispatch {
            odd_steps: Some(bind(gpu, self.kernel, uniform, (buffers, textures))?),
            ..self
        })
    }

    /// Rewrites the dispatch's own uniform (for parameters that change between submissions,
    /// such as an optimizer's step). Lands before the next submit.
    pub(crate) fn write_params<P: bytemuck::Pod>(&self, gpu: &Gpu, counters: &Counters, p: &P) {
        debug_assert_eq!(std::mem::size_of::<P>(), self.kernel.desc().uniform_size);
        if let Some(u) = &self.uniform {
            gpu.write(u, 0, bytemuck::bytes_of(p), counters);
        }
    }

    /// Records this dispatch (with `dynamic_offset` for a shared uniform) into `pass`.
    pub(crate) fn record(
        &self,
        gpu: &Gpu,
        pass: &mut Recording<'_>,
        dynamic_offset: Option<u32>,
        counters: &Counters,
    ) {
        self.record_with(gpu, pass, &self.bind_group, dynamic_offset, counters);
    }

    /// Records step `step` of a step dispatch (at `dynamic_offset` in its shared uniform), with
    /// the odd steps' bind group where it has one and `step` is odd.
    pub(crate) fn record_step(
        &self,
        gpu: &Gpu,
        pass: &mut Recording<'_>,
        dynamic_offset: u32,
        step: usize,
        counters: &Counters,
    ) {
        let group = match (&self.odd_steps, step % 2) {
            (Some(odd), 1) => odd,
            _ => &self.bind_group,
        };
        self.record_with(gpu, pass, group, Some(dynamic_offset), counters);
    }

    fn record_with(
        &self,
        gpu: &Gpu,
        pass: &mut Recording<'_>,
        group: &wgpu::BindGroup,
        dynamic_offset: Option<u32>,
        counters: &Counters,
    ) {
        gpu.kernels().count_dispatch(self.kernel);
        let pipeline = &gpu.kernels().prepared(self.kernel).pipeline;
        let offsets = match &dynamic_offset {
            Some(o) => std::slice::from_ref(o),
            None => &[],
        };
        let [x, y, z] = self.workgroups;
        let profiled = (self.kernel, self.label, self.work);
        let device_queue = (gpu.device(), gpu.queue());
        gpu.profiler().around(device_queue, pass, profiled, |pass| {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, offsets);
            pass.dispatch_workgroups(x, y, z)
        });
        counters.dispatch();
    }
}

/// Records every dispatch of `list`, in order, each with its own uniform.
pub(crate) fn record_all(
    gpu: &Gpu,
    pass: &mut Recording<'_>,
    list: &[Dispatch],
    counters: &Counters,
) {
    for d in list {
        d.record(gpu, pass, None, counters);
    }
}

/// A bind group for `kernel` (compiled now if nothing has needed it before): the uniform at
/// binding 0, then whole storage buffers in order, then the texture views (the read-only ones,
/// then the written ones).
fn bind(
    gpu: &Gpu,
    kernel: Kernel,
    uniform: wgpu::BindingResource<'_>,
    (buffers, textures): (&[&wgpu::Buffer], &[&wgpu::TextureView]),
) -> Result<wgpu::BindGroup> {
    let layout = &gpu.kernel(kernel)?.layout;
    let desc = kernel.desc();
    debug_assert_eq!(buffers.len(), desc.storage.len(), "{kernel:?}");
    let all_textures = desc.textures + desc.written_textures;
    debug_assert_eq!(textures.len(), all_textures as usize, "{kernel:?}");
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: uniform,
    }];
    for (i, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.as_entire_binding(),
        });
    }
    for (i, t) in textures.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: (buffers.len() + 1 + i) as u32,
            resource: wgpu::BindingResource::TextureView(t),
        });
    }
    Ok(gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(kernel.desc().name),
        layout,
        entries: &entries,
    }))
}
