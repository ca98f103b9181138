//! Host side of `shaders/adam.wgsl` and `shaders/sgd.wgsl`: one dispatch updates the whole
//! parameter arena; the hyper-parameters (and Adam's bias corrections for the current step) are
//! rewritten into the uniform before each step.

use crate::gpu::context::Gpu;
use crate::gpu::kernels::{AdamParams, Dispatch, Kernel, SgdParams, bind};
use crate::gpu::stats::Counters;
use crate::optim::AdamConfig;
use crate::optim::Optimizer;

/// Invocations per workgroup of both kernels.
const WG: usize = 256;

/// A prepared optimizer update over an arena of `len` floats.
pub(crate) struct OptimizerDispatch {
    pub dispatch: Dispatch,
    uniform: wgpu::Buffer,
    optimizer: Optimizer,
    len: usize,
}

/// Grid for `len` invocations: wide in x, continuing in y past the per-dimension limit.
fn grid(gpu: &Gpu, len: usize) -> [u32; 3] {
    let groups = len.div_ceil(WG) as u32;
    let max = gpu.limits().max_compute_workgroups_per_dimension.max(1);
    [groups.min(max), groups.div_ceil(max), 1]
}

impl OptimizerDispatch {
    /// `moments` are the optimizer's state arenas ([`Optimizer::moment_names`] order), `clip`
    /// holds `(norm, scale)`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        optimizer: Optimizer,
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        moments: &[wgpu::Buffer],
        clip: &wgpu::Buffer,
        len: usize,
    ) -> Self {
        let (kernel, buffers): (Kernel, Vec<&wgpu::Buffer>) = match optimizer {
            Optimizer::Adam(_) => (
                Kernel::Adam,
                vec![params, grads, &moments[0], &moments[1], clip],
            ),
            Optimizer::Sgd { .. } => (Kernel::Sgd, vec![params, grads, &moments[0], clip]),
        };
        let uniform = gpu.uniform("optimizer", &[0u8; 32], counters);
        let bind_group = bind(
            gpu.device(),
            gpu.kernels(),
            kernel,
            uniform.as_entire_binding(),
            &buffers,
        );
        OptimizerDispatch {
            dispatch: Dispatch {
                kernel,
                bind_group,
                workgroups: grid(gpu, len),
                _uniform: None,
            },
            uniform,
            optimizer,
            len,
        }
    }

    /// Writes the uniform for optimizer step `step` (1-based).
    pub(crate) fn set_step(&self, gpu: &Gpu, counters: &Counters, step: u64) {
        match self.optimizer {
            Optimizer::Adam(a) => {
                let AdamConfig {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } = a;
                let (bc1, bc2_sqrt) = a.bias_corrections(step);
                let p = AdamParams {
                    len: self.len as u32,
                    lr,
                    beta1,
                    beta2,
                    eps,
                    bias_correction1: bc1,
                    bias_correction2_sqrt: bc2_sqrt,
                    pad: 0,
                };
                gpu.write(&self.uniform, 0, bytemuck::bytes_of(&p), counters);
            }
            Optimizer::Sgd { lr, momentum } => {
                let p = SgdParams {
                    len: self.len as u32,
                    lr,
                    momentum,
                    pad: 0,
                };
                gpu.write(&self.uniform, 0, bytemuck::bytes_of(&p), counters);
            }
        }
    }
}
