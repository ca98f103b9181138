//! The WGSL kernels in `shaders/`, compiled once per device, and the uniforms they read.
//!
//! Every kernel binds whole buffers and finds its tensors through element offsets in its
//! uniform, so one buffer (the parameter arena, a `[2, L, B, H]` state) can hold many tensors.

use bytemuck::{Pod, Zeroable};

use crate::gpu::stats::Counters;

const ACTIVATIONS: &str = include_str!("../../shaders/activations.wgsl");
const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");
const LSTM_STEP: &str = include_str!("../../shaders/lstm_step.wgsl");
const LSTM_FORWARD_STEP: &str = include_str!("../../shaders/lstm_forward_step.wgsl");
const LSTM_BACKWARD_STEP: &str = include_str!("../../shaders/lstm_backward_step.wgsl");
const COLUMN_SUM: &str = include_str!("../../shaders/column_sum.wgsl");
const CROSS_ENTROPY: &str = include_str!("../../shaders/cross_entropy.wgsl");
const GRAD_NORM: &str = include_str!("../../shaders/grad_norm.wgsl");
const ADAM: &str = include_str!("../../shaders/adam.wgsl");
const SGD: &str = include_str!("../../shaders/sgd.wgsl");

/// Every shader's full source as compiled (`activations.wgsl` and `lstm_step.wgsl` prepended
/// where used), by name.
pub fn shader_sources() -> Vec<(&'static str, String)> {
    vec![
        ("matmul", MATMUL.to_string()),
        (
            "lstm_forward_step",
            format!("{ACTIVATIONS}\n{LSTM_STEP}\n{LSTM_FORWARD_STEP}"),
        ),
        (
            "lstm_backward_step",
            format!("{ACTIVATIONS}\n{LSTM_STEP}\n{LSTM_BACKWARD_STEP}"),
        ),
        ("column_sum", COLUMN_SUM.to_string()),
        ("cross_entropy", CROSS_ENTROPY.to_string()),
        ("grad_norm", GRAD_NORM.to_string()),
        ("adam", ADAM.to_string()),
        ("sgd", SGD.to_string()),
    ]
}

/// Uniform of `matmul.wgsl` (see the shader for the meaning of each field).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub a_off: u32,
    pub lda: u32,
    pub a_group: u32,
    pub a_group_stride: u32,
    pub b_off: u32,
    pub ldb: u32,
    pub b_group: u32,
    pub b_group_stride: u32,
    pub c_off: u32,
    pub ldc: u32,
    pub bias_off: u32,
    pub pad: u32,
}

pub(crate) const TRANS_A: u32 = 1;
pub(crate) const TRANS_B: u32 = 2;
pub(crate) const BIAS: u32 = 4;
pub(crate) const ACCUMULATE: u32 = 8;
/// Row map that leaves row indices as they are.
pub(crate) const IDENTITY_GROUP: u32 = u32::MAX;

/// Uniform of the step kernels (`struct Step` in `lstm_step.wgsl`): one per layer and step,
/// selected with a dynamic offset.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct StepParams {
    pub batch: u32,
    pub seq: u32,
    pub hidden: u32,
    pub t: u32,
    /// Element offset of this layer's `h` in a `[2, L, B, H]` state buffer.
    pub h_off: u32,
    /// Element offset of this layer's `c` in a `[2, L, B, H]` state buffer.
    pub c_off: u32,
    /// Nonzero: keep `c_t` and the gates for backward.
    pub save: u32,
    /// vec4 offset of `W_hh` (gate-interleaved) in the parameter arena.
    pub w_off: u32,
    /// vec4 offset of `b_hh` in the parameter arena.
    pub b_off: u32,
    pub pad: [u32; 3],
}

/// Uniform of `column_sum.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct ColumnSumParams {
    pub rows: u32,
    pub cols: u32,
    pub in_off: u32,
    pub out_off0: u32,
    pub out_off1: u32,
    pub pad: [u32; 3],
}

/// Uniform of `cross_entropy.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct CrossEntropyParams {
    pub rows: u32,
    pub classes: u32,
    pub logits_off: u32,
    /// Nonzero: add to the metrics instead of overwriting them.
    pub accumulate: u32,
}

/// Uniform of `grad_norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct GradNormParams {
    pub len: u32,
    pub chunk: u32,
    pub groups: u32,
    pub max_norm: f32,
}

/// Uniform of `adam.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct AdamParams {
    pub len: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub bias_correction1: f32,
    pub bias_correction2_sqrt: f32,
    pub pad: u32,
}

/// Uniform of `sgd.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub(crate) struct SgdParams {
    pub len: u32,
    pub lr: f32,
    pub momentum: f32,
    pub pad: u32,
}

/// Which compiled pipeline a dispatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Matmul,
    LstmForwardStep,
    LstmBackwardStep,
    ColumnSum,
    CrossEntropy,
    GradNormPartial,
    GradNormFinish,
    Adam,
    Sgd,
}

/// One kernel: its bind group layout and pipeline.
pub(crate) struct Compiled {
    pub layout: wgpu::BindGroupLayout,
    pub pipeline: wgpu::ComputePipeline,
}

/// All pipelines of the crate, for one device.
pub(crate) struct Kernels {
    pub matmul: Compiled,
    pub lstm_forward_step: Compiled,
    pub lstm_backward_step: Compiled,
    pub column_sum: Compiled,
    pub cross_entropy: Compiled,
    pub grad_norm_partial: Compiled,
    pub grad_norm_finish: Compiled,
    pub adam: Compiled,
    pub sgd: Compiled,
}

/// Binding kinds, in binding order, after binding 0 (the uniform).
#[derive(Clone, Copy)]
enum Slot {
    Read,
    ReadWrite,
}

fn compile(
    device: &wgpu::Device,
    name: &str,
    source: &str,
    entry: &str,
    dynamic_uniform: bool,
    slots: &[Slot],
) -> Compiled {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic_uniform,
            min_binding_size: None,
        },
        count: None,
    }];
    for (i, slot) in slots.iter().enumerate() {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: i as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: matches!(slot, Slot::Read),
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(name),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    });
    Compiled { layout, pipeline }
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device) -> Kernels {
        use Slot::{Read, ReadWrite};
        let sources = shader_sources();
        let src = |name: &str| {
            sources
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| s.as_str())
                .unwrap_or_default()
        };
        let rw4 = [Read, Read, Read, ReadWrite];
        let step_fwd = [Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, ReadWrite];
        let step_bwd = [Read, Read, Read, Read, Read, ReadWrite, ReadWrite];
        let norm = [Read, ReadWrite, ReadWrite];
        Kernels {
            matmul: compile(device, "matmul", src("matmul"), "main", false, &rw4),
            lstm_forward_step: compile(
                device,
                "lstm_forward_step",
                src("lstm_forward_step"),
                "main",
                true,
                &step_fwd,
            ),
            lstm_backward_step: compile(
                device,
                "lstm_backward_step",
                src("lstm_backward_step"),
                "main",
                true,
                &step_bwd,
            ),
            column_sum: compile(
                device,
                "column_sum",
                src("column_sum"),
                "main",
                false,
                &[Read, ReadWrite],
            ),
            cross_entropy: compile(
                device,
                "cross_entropy",
                src("cross_entropy"),
                "main",
                false,
                &[Read, Read, ReadWrite, ReadWrite],
            ),
            grad_norm_partial: compile(
                device,
                "grad_norm",
                src("grad_norm"),
                "partial",
                false,
                &norm,
            ),
            grad_norm_finish: compile(
                device,
                "grad_norm",
                src("grad_norm"),
                "finish",
                false,
                &norm,
            ),
            adam: compile(
                device,
                "adam",
                src("adam"),
                "main",
                false,
                &[ReadWrite, Read, ReadWrite, ReadWrite, Read],
            ),
            sgd: compile(
                device,
                "sgd",
                src("sgd"),
                "main",
                false,
                &[ReadWrite, Read, ReadWrite, Read],
            ),
        }
    }

    pub(crate) fn get(&self, kernel: Kernel) -> &Compiled {
        match kernel {
            Kernel::Matmul => &self.matmul,
            Kernel::LstmForwardStep => &self.lstm_forward_step,
            Kernel::LstmBackwardStep => &self.lstm_backward_step,
            Kernel::ColumnSum => &self.column_sum,
            Kernel::CrossEntropy => &self.cross_entropy,
            Kernel::GradNormPartial => &self.grad_norm_partial,
            Kernel::GradNormFinish => &self.grad_norm_finish,
            Kernel::Adam => &self.adam,
            Kernel::Sgd => &self.sgd,
        }
    }
}

/// A dispatch prepared once per shape: pipeline, bind group (its uniform kept alive with it) and
/// grid. Recording it later costs no allocation.
pub(crate) struct Dispatch {
    pub kernel: Kernel,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
    pub _uniform: Option<wgpu::Buffer>,
}

impl Dispatch {
    /// Records this dispatch (with `dynamic_offset` for the step kernels) into `pass`.
    pub(crate) fn record(
        &self,
        kernels: &Kernels,
        pass: &mut wgpu::ComputePass<'_>,
        dynamic_offset: Option<u32>,
        counters: &Counters,
    ) {
        pass.set_pipeline(&kernels.get(self.kernel).pipeline);
        match dynamic_offset {
            Some(o) => pass.set_bind_group(0, &self.bind_group, &[o]),
            None => pass.set_bind_group(0, &self.bind_group, &[]),
        }
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
        counters.dispatch();
    }
}

/// Builds a bind group for `kernel` from a uniform binding and whole storage buffers.
pub(crate) fn bind(
    device: &wgpu::Device,
    kernels: &Kernels,
    kernel: Kernel,
    uniform: wgpu::BindingResource<'_>,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
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
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernels.get(kernel).layout,
        entries: &entries,
    })
}
