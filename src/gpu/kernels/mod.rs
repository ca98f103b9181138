//! One descriptor per kernel: everything about a WGSL kernel in one place.
//!
//! A kernel's module here holds its [`KernelDesc`] (shader files, entry point, workgroup size,
//! tile constants, uniform size, storage bindings), the Rust twin of its uniform (`Params`), and
//! the call struct that fills that uniform, lists the buffers in binding order and computes the
//! dispatch grid (`Call`). Tile and workgroup sizes are written once, in Rust: they are rendered
//! as WGSL `const`s in front of the shader ([`KernelDesc::source`]), and the grids use the same
//! values. A test (`tests/kernel_reflection.rs`) parses every shader with naga and checks its
//! bindings, uniform size and workgroup size against the descriptor.
//!
//! Every kernel binds whole buffers and finds its tensors through element offsets in its uniform,
//! so one buffer (the parameter arena, a `[2, L, B, H]` state) can hold many tensors. Binding 0 is
//! always the uniform; bindings 1.. are storage buffers, then the textures, if any.
//!
//! Adding a kernel: write `shaders/NAME.wgsl`, its CPU twin `src/cpu/NAME.rs`, a module here with
//! its descriptor, `Params` and call, an entry in [`Kernel`], and its test against the twin.

pub(crate) mod adam;
pub(crate) mod arena_update;
pub(crate) mod column_sum;
pub(crate) mod cross_entropy;
pub(crate) mod dropout;
pub(crate) mod grad_norm;
pub(crate) mod lstm_backward_hidden_step;
pub(crate) mod lstm_backward_step;
pub(crate) mod lstm_forward_step;
pub(crate) mod lstm_projection_step;
pub(crate) mod lstm_step;
pub(crate) mod matmul;
pub(crate) mod peak;
pub(crate) mod sgd;

use crate::error::{Error, Result};
use crate::gpu::error_scope;

/// A shader file: its name in `shaders/` and its text (embedded at compile time).
pub type ShaderFile = (&'static str, &'static str);

/// Embeds `shaders/$name` as a [`ShaderFile`]; a missing file is a compile error.
macro_rules! shader_file {
    ($name:literal) => {
        ($name, include_str!(concat!("../../../shaders/", $name)))
    };
}
pub(crate) use shader_file;

/// How a kernel accesses one storage binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

/// Everything the host needs to know about one kernel (one entry point of a shader).
#[derive(Debug, Clone, Copy)]
pub struct KernelDesc {
    /// Name of the kernel (a pipeline label).
    pub name: &'static str,
    /// The shader files concatenated, preludes first; the last one is the kernel's own file.
    pub files: &'static [ShaderFile],
    /// The entry point.
    pub entry: &'static str,
    /// Invocations per workgroup, rendered as `WG_X`, `WG_Y`, `WG_Z`.
    pub workgroup_size: [u32; 3],
    /// Further `u32` constants (tile sizes, flag bits) rendered in front of the shader.
    pub constants: &'static [(&'static str, u32)],
    /// Size in bytes of the uniform at binding 0 (`size_of` of the kernel's `Params`).
    pub uniform_size: usize,
    /// Whether the uniform is bound with a dynamic offset (one entry per step).
    pub dynamic_offset: bool,
    /// The storage bindings 1.. in order.
    pub storage: &'static [Access],
    /// Textures bound after the storage bindings: read-only storage textures
    /// (`texture_storage_2d<rgba32float, read>`), read with `textureLoad`.
    pub textures: u32,
    /// Textures bound after those: write-only storage textures
    /// (`texture_storage_2d<rgba32float, write>`), written with `textureStore`.
    pub written_textures: u32,
    /// Whether the kernel uses subgroup operations: it compiles only on a device with
    /// [`wgpu::Features::SUBGROUP`], and runs only where [`crate::gpu::Tuning`] chooses it.
    pub subgroups: bool,
}

impl KernelDesc {
    /// The kernel's own shader file name (e.g. `matmul.wgsl`).
    pub fn shader(&self) -> &'static str {
        self.files.last().map_or("", |f| f.0)
    }

    /// The WGSL compiled for this kernel: the constants, then every file in order.
    pub fn source(&self) -> String {
        let mut s = format!(
            "// Constants of kernel `{}`, set by its descriptor in src/gpu/kernels/.\n",
            self.name
        );
        let [x, y, z] = self.workgroup_size;
        let named = [("WG_X", x), ("WG_Y", y), ("WG_Z", z)];
        for (name, value) in named.iter().chain(self.constants) {
            s.push_str(&format!("const {name}: u32 = {value}u;\n"));
        }
        for (file, text) in self.files {
            s.push_str(&format!("\n// ---- shaders/{file}\n{text}"));
        }
        s
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        self.workgroup_size.iter().product()
    }
}

/// Which compiled pipeline a dispatch uses. [`Kernel::ALL`] lists every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `C = op(A) · op(B) (+ bias) (+ C)`, staged through workgroup memory.
    Matmul,
    /// The same product for few rows, read straight from storage.
    MatmulDirect,
    /// The same product for a long `K` (the weight gradients), register-blocked and read
    /// straight from storage.
    MatmulBlocked,
    /// [`Kernel::MatmulBlocked`] reading four floats per load, for the weight gradients'
    /// layout with aligned rows.
    MatmulBlockedVec4,
    /// [`Kernel::MatmulBlockedVec4`] sharing the rows of `A` through a subgroup of 8 (devices
    /// with [`crate::gpu::Tuning::subgroups`] only).
    MatmulSubgroup,
    /// [`Kernel::MatmulSubgroup`] with 64 rows per tile, for products of more than one column
    /// tile (devices with [`crate::gpu::Tuning::subgroups`] only).
    MatmulSubgroupTall,
    /// A GEMM whose operands both run along `K` (backward's input gradient), the rows of `A`
    /// shared through a subgroup of 8 (devices with [`crate::gpu::Tuning::subgroups`] only).
    MatmulSubgroupNt,
    /// One forward timestep of one layer.
    LstmForwardStep,
    /// One forward timestep of one layer, for a batch of a few rows, read straight from
    /// storage (with the step's input projection).
    LstmForwardStepSmallBatch,
    /// One forward timestep of one layer, read straight from storage (with the step's input
    /// projection), 8 batch rows per invocation.
    LstmForwardStepDirect,
    /// [`Kernel::LstmForwardStepSmallBatch`] with the weights read from textures.
    LstmForwardStepSmallBatchTexels,
    /// [`Kernel::LstmForwardStepDirect`] with the weights read from textures.
    LstmForwardStepDirectTexels,
    /// [`Kernel::LstmForwardStepDirect`] with the rows' inputs shared through a subgroup of 8
    /// (devices with [`crate::gpu::Tuning::subgroups`] only).
    LstmForwardStepSubgroup,
    /// [`Kernel::LstmForwardStepSubgroup`] with the weights read from textures.
    LstmForwardStepSubgroupTexels,
    /// [`Kernel::LstmForwardStepSubgroup`] with 4 units per invocation, for layers of at most
    /// 32 units.
    LstmForwardStepSubgroupNarrow,
    /// [`Kernel::LstmForwardStepSubgroupNarrow`] with the weights read from textures.
    LstmForwardStepSubgroupNarrowTexels,
    /// [`Kernel::LstmForwardStepSubgroup`] with a tile of 32 rows by 8 units, reading `h_{t-1}`
    /// transposed (devices with [`crate::gpu::Tuning::subgroups`] only).
    LstmForwardStepTall,
    /// [`Kernel::LstmForwardStepTall`] reading the weights from textures (devices with
    /// [`crate::gpu::Tuning::subgroups`] only).
    LstmForwardStepTallTexels,
    /// [`Kernel::LstmForwardStepTall`] for inference passes: without the code that saves what
    /// backward reads (devices with [`crate::gpu::Tuning::subgroups`] only).
    LstmForwardStepTallInference,
    /// [`Kernel::LstmForwardStepTallInference`] reading the weights from textures (devices
    /// with [`crate::gpu::Tuning::subgroups`] only).
    LstmForwardStepTallInferenceTexels,
    /// One backward timestep of one layer.
    LstmBackwardStep,
    /// One backward timestep of one layer, read straight from storage, 8 units of 8 batch rows
    /// per invocation (a software adapter's batches of more than 4 rows).
    LstmBackwardStepDirect,
    /// [`Kernel::LstmBackwardStepDirect`] with the rows' inputs shared through a subgroup of 8
    /// (devices with [`crate::gpu::Tuning::subgroups`] only).
    LstmBackwardStepSubgroup,
    /// [`Kernel::LstmBackwardStepDirect`] reading `W_hh` from the layer's weight texture.
    LstmBackwardStepDirectTexels,
    /// [`Kernel::LstmBackwardStepSubgroup`] reading `W_hh` from the layer's weight texture.
    LstmBackwardStepSubgroupTexels,
    /// [`Kernel::LstmBackwardStepDirect`] with 4 units per invocation (2 to 4 rows, and a
    /// projected layer's batches on a GPU).
    LstmBackwardStepNarrow,
    /// [`Kernel::LstmBackwardStepNarrow`] for a batch of one row.
    LstmBackwardStepSingleRow,
    /// The projection `h = r · W_hrᵀ` of one forward timestep of a projected layer.
    LstmProjectionStep,
    /// The gradient on `h` of one backward timestep of a projected layer.
    LstmBackwardHiddenStep,
    /// Inverted dropout between layers (forward and backward).
    Dropout,
    /// Column sums (the bias gradients).
    ColumnSum,
    /// Softmax cross-entropy, its gradient and the batch metrics.
    CrossEntropy,
    /// Per-workgroup sums of squared gradients.
    GradNormPartial,
    /// The global norm and clipping factor from the partial sums.
    GradNormFinish,
    /// One Adam update over the arena.
    Adam,
    /// One SGD update over the arena.
    Sgd,
    /// The peak probe's independent FMA chains (arithmetic throughput).
    PeakFma,
    /// The peak probe's vec4 copy (memory bandwidth).
    PeakCopy,
    /// The peak probe's empty kernel (the cost of a dispatch).
    PeakEmpty,
    /// The peak probe's sums of loads from storage (the rate of a kernel's storage loads).
    PeakLoadStorage,
    /// The peak probe's sums of loads from a texture (the rate of a kernel's texel loads).
    PeakLoadTexture,
}

impl Kernel {
    /// Every kernel of the crate.
    pub const ALL: [Kernel; 41] = [
        Kernel::Matmul,
        Kernel::MatmulDirect,
        Kernel::MatmulBlocked,
        Kernel::MatmulBlockedVec4,
        Kernel::MatmulSubgroup,
        Kernel::MatmulSubgroupTall,
        Kernel::MatmulSubgroupNt,
        Kernel::LstmForwardStep,
        Kernel::LstmForwardStepSmallBatch,
        Kernel::LstmForwardStepDirect,
        Kernel::LstmForwardStepSmallBatchTexels,
        Kernel::LstmForwardStepDirectTexels,
        Kernel::LstmForwardStepSubgroup,
        Kernel::LstmForwardStepSubgroupTexels,
        Kernel::LstmForwardStepSubgroupNarrow,
        Kernel::LstmForwardStepSubgroupNarrowTexels,
        Kernel::LstmForwardStepTall,
        Kernel::LstmForwardStepTallTexels,
        Kernel::LstmForwardStepTallInference,
        Kernel::LstmForwardStepTallInferenceTexels,
        Kernel::LstmBackwardStep,
        Kernel::LstmBackwardStepDirect,
        Kernel::LstmBackwardStepSubgroup,
        Kernel::LstmBackwardStepDirectTexels,
        Kernel::LstmBackwardStepSubgroupTexels,
        Kernel::LstmBackwardStepNarrow,
        Kernel::LstmBackwardStepSingleRow,
        Kernel::LstmProjectionStep,
        Kernel::LstmBackwardHiddenStep,
        Kernel::Dropout,
        Kernel::ColumnSum,
        Kernel::CrossEntropy,
        Kernel::GradNormPartial,
        Kernel::GradNormFinish,
        Kernel::Adam,
        Kernel::Sgd,
        Kernel::PeakFma,
        Kernel::PeakCopy,
        Kernel::PeakEmpty,
        Kernel::PeakLoadStorage,
        Kernel::PeakLoadTexture,
    ];

    /// The variant of the matrix product that computes `spec` (by its rows, row maps and
    /// alignment) on `gpu` (by its limits and [`crate::gpu::Tuning::subgroups`]).
    pub fn for_gemm(spec: &crate::gemm::GemmSpec, gpu: &crate::gpu::Gpu) -> Kernel {
        matmul::variant(spec, gpu.limits(), gpu.tuning().subgroups)
    }

    /// The variant of the forward step that serves a batch of `batch` rows of an unprojected
    /// one-direction layer of `hidden` units, whose input is no wider or a multiple of 4 wide, of a
    /// [`crate::gpu::GpuLstm`] on `gpu` (by its limits and [`crate::gpu::Gpu::tuning`]): with
    /// [`crate::gpu::Tuning::weight_texels`], the texel twin of a direct variant (for a model
    /// whose layers fit the device's textures, `I + H` and `H` at most
    /// `max_texture_dimension_2d`). The trainers' models always read their weights from storage.
    /// A training pass runs this kernel; an inference pass its [`Kernel::for_inference`].
    pub fn for_forward_step(batch: usize, hidden: usize, gpu: &crate::gpu::Gpu) -> Kernel {
        let texels = gpu.tuning().weight_texels;
        let layers = lstm_forward_step::Layers {
            hidden,
            wide_unaligned_input: false,
            projected: false,
            dirs: 1,
        };
        lstm_forward_step::variant(batch, layers, gpu.limits(), gpu.tuning(), texels).0
    }

    /// The variant an inference pass ([`crate::Lstm::forward`]) runs in place of this forward
    /// step, which [`Kernel::for_forward_step`] names for a pass of either kind: the tall steps
    /// have twins without the code that saves what backward reads
    /// ([`Kernel::LstmForwardStepTallInference`]); every other kernel is its own.
    pub fn for_inference(self) -> Kernel {
        lstm_forward_step::for_inference(self)
    }

    /// The variant of the backward step that serves a batch of `batch` rows of an unprojected
    /// layer of a [`crate::gpu::GpuLstm`] on `gpu` (by its limits and
    /// [`crate::gpu::Gpu::tuning`]): with [`crate::gpu::Tuning::weight_texels`], the texel twin
    /// of a direct variant that has one (the model's weight textures serve its backward steps
    /// too). The trainers' models read storage. Projected layers always run a direct one:
    /// [`Kernel::LstmBackwardStepSingleRow`] for a batch of one,
    /// [`Kernel::LstmBackwardStepDirect`] (or its subgroup or texel twin) for more than 4 rows
    /// where the adapter runs those direct anyway (a software one), else
    /// [`Kernel::LstmBackwardStepNarrow`].
    pub fn for_backward_step(batch: usize, gpu: &crate::gpu::Gpu) -> Kernel {
        let texels = gpu.tuning().weight_texels;
        lstm_backward_step::variant(batch, false, gpu.limits(), gpu.tuning(), texels).0
    }

    /// The kernel's descriptor.
    pub fn desc(self) -> &'static KernelDesc {
        match self {
            Kernel::Matmul => &matmul::DESC,
            Kernel::MatmulDirect => &matmul::DIRECT,
            Kernel::MatmulBlocked => &matmul::BLOCKED,
            Kernel::MatmulBlockedVec4 => &matmul::BLOCKED_VEC4,
            Kernel::MatmulSubgroup => &matmul::SUBGROUP,
            Kernel::MatmulSubgroupTall => &matmul::SUBGROUP_TALL,
            Kernel::MatmulSubgroupNt => &matmul::SUBGROUP_NT,
            Kernel::LstmForwardStep => &lstm_forward_step::DESC,
            Kernel::LstmForwardStepSmallBatch => &lstm_forward_step::SMALL_BATCH,
            Kernel::LstmForwardStepDirect => &lstm_forward_step::DIRECT,
            Kernel::LstmForwardStepSmallBatchTexels => &lstm_forward_step::SMALL_BATCH_TEXELS,
            Kernel::LstmForwardStepDirectTexels => &lstm_forward_step::DIRECT_TEXELS,
            Kernel::LstmForwardStepSubgroup => &lstm_forward_step::SUBGROUP,
            Kernel::LstmForwardStepSubgroupTexels => &lstm_forward_step::SUBGROUP_TEXELS,
            Kernel::LstmForwardStepSubgroupNarrow => &lstm_forward_step::SUBGROUP_NARROW,
            Kernel::LstmForwardStepSubgroupNarrowTexels => {
                &lstm_forward_step::SUBGROUP_NARROW_TEXELS
            }
            Kernel::LstmForwardStepTall => &lstm_forward_step::TALL,
            Kernel::LstmForwardStepTallTexels => &lstm_forward_step::TALL_TEXELS,
            Kernel::LstmForwardStepTallInference => &lstm_forward_step::TALL_INFERENCE,
            Kernel::LstmForwardStepTallInferenceTexels => &lstm_forward_step::TALL_INFERENCE_TEXELS,
            Kernel::LstmBackwardStep => &lstm_backward_step::DESC,
            Kernel::LstmBackwardStepDirect => &lstm_backward_step::DIRECT,
            Kernel::LstmBackwardStepSubgroup => &lstm_backward_step::SUBGROUP,
            Kernel::LstmBackwardStepDirectTexels => &lstm_backward_step::DIRECT_TEXELS,
            Kernel::LstmBackwardStepSubgroupTexels => &lstm_backward_step::SUBGROUP_TEXELS,
            Kernel::LstmBackwardStepNarrow => &lstm_backward_step::NARROW,
            Kernel::LstmBackwardStepSingleRow => &lstm_backward_step::SINGLE_ROW,
            Kernel::LstmProjectionStep => &lstm_projection_step::DESC,
            Kernel::LstmBackwardHiddenStep => &lstm_backward_hidden_step::DESC,
            Kernel::Dropout => &dropout::DESC,
            Kernel::ColumnSum => &column_sum::DESC,
            Kernel::CrossEntropy => &cross_entropy::DESC,
            Kernel::GradNormPartial => &grad_norm::PARTIAL,
            Kernel::GradNormFinish => &grad_norm::FINISH,
            Kernel::Adam => &adam::DESC,
            Kernel::Sgd => &sgd::DESC,
            Kernel::PeakFma => &peak::FMA,
            Kernel::PeakCopy => &peak::COPY,
            Kernel::PeakEmpty => &peak::EMPTY,
            Kernel::PeakLoadStorage => &peak::LOAD_STORAGE,
            Kernel::PeakLoadTexture => &peak::LOAD_TEXTURE,
        }
    }
}

/// Every shader's full source as compiled, one per shader file (named by its stem), for tools
/// that check or translate the WGSL.
pub fn shader_sources() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for k in Kernel::ALL {
        let d = k.desc();
        let stem = d.shader().trim_end_matches(".wgsl");
        if !out.iter().any(|(n, _)| *n == stem) {
            out.push((stem, d.source()));
        }
    }
    out
}

/// What one dispatch of a kernel needs from its caller: the uniform's contents, the buffers in
/// binding order and the grid. Each kernel's module implements it for its call struct.
pub(crate) trait Call {
    /// The uniform of binding 0 (`Pod`, exactly [`KernelDesc::uniform_size`] bytes).
    type Params: bytemuck::Pod;
    /// The kernel this call dispatches on a device with `limits` (a variant whose grid would not
    /// fit them gives way to one whose grid does).
    fn kernel(&self, limits: &wgpu::Limits) -> Kernel;
    /// The uniform's contents (an error when a size does not fit the kernel's `u32` indices).
    fn params(&self) -> Result<Self::Params>;
    /// Storage buffers for bindings 1.., in order.
    fn buffers(&self) -> Vec<&wgpu::Buffer>;
    /// Texture views for the bindings after the buffers, in order (none for most kernels).
    fn textures(&self) -> Vec<&wgpu::TextureView> {
        Vec::new()
    }
    /// Workgroups in x, y, z.
    fn grid(&self, limits: &wgpu::Limits) -> Result<[u32; 3]>;
    /// The arithmetic and memory traffic of the dispatch (for the profiler's rates).
    fn work(&self) -> Work;
}

/// What one dispatch computes and moves, as a profile reads it: `flop` counts a multiply-add as
/// 2 (elementwise functions as the few operations they take), `bytes` the global memory the
/// kernel must read and write at least (every operand once), whatever its caches do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Floating-point operations.
    pub flop: u64,
    /// Bytes read plus bytes written.
    pub bytes: u64,
}

impl Work {
    /// `flop` operations over `floats` 4-byte values read or written.
    pub(crate) fn new(flop: usize, floats: usize) -> Work {
        Work {
            flop: flop as u64,
            bytes: 4 * floats as u64,
        }
    }
}

/// `v` as a `u32` index or size for a kernel, or [`Error::DeviceLimit`] naming `what`.
pub(crate) fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::DeviceLimit {
        tensor: what.to_string(),
        bytes: v as u64 * 4,
        limit_name: "u32 element index",
        limit: u32::MAX as u64 * 4,
    })
}

/// A 1-D grid of `invocations` threads in workgroups of `wg`, continuing in y past the
/// per-dimension limit (the kernel folds `gid.y` back into its index).
pub(crate) fn grid_1d(invocations: usize, wg: u32, limits: &wgpu::Limits) -> Result<[u32; 3]> {
    let groups = u32_of("grid", invocations.div_ceil(wg as usize))?;
    let max = limits.max_compute_workgroups_per_dimension.max(1);
    let y = within_limit(groups.div_ceil(max), limits)?;
    Ok([groups.clamp(1, max), y.max(1), 1])
}

/// A grid of `invocations` threads along x in workgroups of `wg`.
pub(crate) fn grid_x(invocations: usize, wg: u32, limits: &wgpu::Limits) -> Result<[u32; 3]> {
    let groups = u32_of("grid", invocations.div_ceil(wg as usize))?;
    Ok([within_limit(groups, limits)?.max(1), 1, 1])
}

/// `groups`, or [`Error::DeviceLimit`] when one grid dimension cannot hold that many.
pub(crate) fn within_limit(groups: u32, limits: &wgpu::Limits) -> Result<u32> {
    let max = limits.max_compute_workgroups_per_dimension;
    if groups > max {
        return Err(Error::DeviceLimit {
            tensor: "grid".into(),
            bytes: groups as u64,
            limit_name: "max_compute_workgroups_per_dimension",
            limit: max as u64,
        });
    }
    Ok(groups)
}

/// One kernel compiled for a device: its bind group layout and pipeline.
pub(crate) struct Compiled {
    pub layout: wgpu::BindGroupLayout,
    pub pipeline: wgpu::ComputePipeline,
}

fn buffer_entry(
    binding: u32,
    ty: wgpu::BufferBindingType,
    dynamic: bool,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: dynamic,
            min_binding_size: None,
        },
        count: None,
    }
}

fn compile(device: &wgpu::Device, desc: &KernelDesc) -> Compiled {
    // Bounds checks stay; the loop counter wgpu would add to every loop (so that a shader cannot
    // hang the device) goes. It keeps a compiler from seeing a loop's trip count: lavapipe then
    // leaves the tile loops over rows and units rolled, which moves their accumulators out of
    // registers. At B128 T28 I28 H128 on lavapipe that costs the forward 1.38x (84 -> 61 ms)
    // and a training step 1.2x (220 -> 182 ms).
    let mut checks = wgpu::ShaderRuntimeChecks::checked();
    checks.force_loop_bounding = false;
    // SAFETY: every loop in shaders/ counts up by a positive constant (or WG_X) to a bound
    // below 2^31 (a size that fits a buffer within the device's limits, checked before any
    // dispatch), or halves a positive count, so each one ends; the bounds checks that make
    // out-of-range accesses safe are kept.
    let module = unsafe {
        device.create_shader_module_trusted(
            wgpu::ShaderModuleDescriptor {
                label: Some(desc.name),
                source: wgpu::ShaderSource::Wgsl(desc.source().into()),
            },
            checks,
        )
    };
    let uniform = wgpu::BufferBindingType::Uniform;
    let mut entries = vec![buffer_entry(0, uniform, desc.dynamic_offset)];
    for (i, access) in desc.storage.iter().enumerate() {
        let read_only = *access == Access::Read;
        let ty = wgpu::BufferBindingType::Storage { read_only };
        entries.push(buffer_entry(i as u32 + 1, ty, false));
    }
    for i in 0..desc.textures + desc.written_textures {
        let access = match i < desc.textures {
            true => wgpu::StorageTextureAccess::ReadOnly,
            false => wgpu::StorageTextureAccess::WriteOnly,
        };
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: desc.storage.len() as u32 + 1 + i,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::StorageTexture {
                access,
                format: wgpu::TextureFormat::Rgba32Float,
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            count: None,
        });
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(desc.name),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(desc.name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(desc.name),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(desc.entry),
        compilation_options: Default::default(),
        cache: None,
    });
    Compiled { layout, pipeline }
}

/// The crate's kernels on one device, indexed by [`Kernel`]: each compiled when a call first
/// prepares a dispatch of it ([`Kernels::get`]), or all at once ([`Kernels::compile_all`]); the
/// kernels that use subgroups only where the device runs them.
pub(crate) struct Kernels {
    device: wgpu::Device,
    /// Whether the subgroup kernels may be compiled ([`crate::gpu::Tuning::subgroups`]: the
    /// device can run them and its tuning may choose them).
    subgroups: bool,
    compiled: Vec<std::sync::OnceLock<Compiled>>,
    /// Dispatches recorded of each kernel, by the same index.
    dispatches: Vec<std::sync::atomic::AtomicU64>,
}

impl Kernels {
    /// The kernels of `device`, none compiled yet: compiling all 40 or so up front took
    /// lavapipe (two cores, two threads) 420-470 ms, where a first forward pass needs one or
    /// two of them.
    pub(crate) fn new(device: &wgpu::Device, subgroups: bool) -> Kernels {
        Kernels {
            device: device.clone(),
            subgroups,
            compiled: Kernel::ALL.iter().map(|_| Default::default()).collect(),
            dispatches: Kernel::ALL.iter().map(|_| Default::default()).collect(),
        }
    }

    /// Whether this device may run `kernel`.
    fn runs(&self, kernel: Kernel) -> bool {
        self.subgroups || !kernel.desc().subgroups
    }

    /// `kernel` compiled, compiling it now if no call has needed it before. A kernel that uses
    /// subgroups on a device that does not run them (which [`crate::gpu::Gpu::with_tuning`]
    /// keeps any call from choosing) is [`Error::Config`]; a kernel the device rejects is
    /// [`Error::Gpu`] (context "compiling a kernel").
    pub(crate) fn get(&self, kernel: Kernel) -> Result<&Compiled> {
        // `Kernel::ALL` lists the variants in declaration order (tested below), so a kernel's
        // discriminant is its index in `compiled`.
        let cell = &self.compiled[kernel as usize];
        if let Some(c) = cell.get() {
            return Ok(c);
        }
        if !self.runs(kernel) {
            return Err(Error::config(
                "kernel",
                format!("{kernel:?} uses subgroups, which this device does not run"),
            ));
        }
        let device = &self.device;
        let c = error_scope::catch(device, "compiling a kernel", || {
            compile(device, kernel.desc())
        })?;
        // Another thread may have compiled it meanwhile: either serves.
        let _ = cell.set(c);
        Ok(cell.get().expect("set just above, or by another thread"))
    }

    /// `kernel` compiled, for a dispatch prepared with [`Kernels::get`].
    pub(crate) fn prepared(&self, kernel: Kernel) -> &Compiled {
        self.compiled[kernel as usize]
            .get()
            .expect("a dispatch is prepared only with its kernel compiled (Kernels::get)")
    }

    /// Compiles every kernel this device runs that is not compiled yet, on up to `threads`
    /// threads at once, each taking the next kernel not yet taken. A driver compiles one
    /// pipeline on one thread: on lavapipe, with two cores, compiling them all took 200-210 ms
    /// this way against 350 on one thread (when there were fewer). The first error of any
    /// thread is the result, as [`Kernels::get`] gives it.
    pub(crate) fn compile_all(&self, threads: usize) -> Result<()> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let compile_some = || -> Result<()> {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&k) = Kernel::ALL.get(i) else {
                    return Ok(());
                };
                if self.runs(k) {
                    self.get(k)?;
                }
            }
        };
        let parts: Vec<Result<()>> = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads.max(1))
                .map(|_| scope.spawn(compile_some))
                .collect();
            let mut parts = vec![compile_some()];
            for h in helpers {
                // A panic inside wgpu on a helper thread is re-raised here, as it would have
                // been on one thread.
                parts.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            parts
        });
        parts.into_iter().collect()
    }

    /// The kernels compiled so far, in [`Kernel::ALL`]'s order.
    pub(crate) fn compiled(&self) -> Vec<Kernel> {
        Kernel::ALL
            .iter()
            .zip(&self.compiled)
            .filter(|(_, c)| c.get().is_some())
            .map(|(&k, _)| k)
            .collect()
    }

    /// Counts one dispatch of `kernel` recorded.
    pub(crate) fn count_dispatch(&self, kernel: Kernel) {
        self.dispatches[kernel as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Every kernel dispatched at least once, with its dispatches, in [`Kernel::ALL`]'s order.
    pub(crate) fn dispatched(&self) -> Vec<(Kernel, u64)> {
        Kernel::ALL
            .iter()
            .zip(&self.dispatches)
            .map(|(&k, n)| (k, n.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_all_lists_every_variant_in_declaration_order() {
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
    }
}
