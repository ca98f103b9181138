//! Which kernel variant serves a call where several compute the same thing, by the kind of
//! adapter.
//!
//! The forward step comes in two kinds (`shaders/lstm_forward_step.wgsl`):
//!
//! * the staged step shares each weight of a chunk through workgroup memory with a tile of 16
//!   batch rows, behind a barrier, and takes its input projection from one GEMM over the whole
//!   sequence;
//! * the direct steps read the weights straight from storage, with no workgroup memory and no
//!   barrier, each invocation reusing what it loads over a few units and rows, and compute the
//!   step's input projection themselves.
//!
//! Below a few rows the staged tile is mostly padding, so the direct step serves every adapter.
//! Above, a GPU's workgroup memory and barriers are cheap and the staging pays. A software
//! adapter (lavapipe, WARP) runs barriers as switches between the workgroup's invocations and
//! loads each lane's values one by one, so there the direct step serves every batch.
//!
//! The backward step (`shaders/lstm_backward_step.wgsl`) has the same two kinds and follows the
//! same choice: it runs direct exactly for the batches whose forward step does (and for every
//! projected layer). Its direct tile is wider (8 units per invocation instead of 4) only for the
//! batches of more than [`Tuning::SMALL_BATCH`] rows that the adapter runs direct by choice, as
//! the forward step's is: tiles tuned to a software adapter's lane-by-lane loads never take away
//! a GPU's invocations.
//!
//! The direct forward steps also come in texel variants, which read the weights from one texture
//! per layer instead of the parameter buffer (`src/gpu/weight_texels.rs`). A software adapter
//! loads a storage buffer lane by lane and a read-only storage texture several times as fast,
//! so there the models whose weights are written from the host (`GpuLstm`, its streams) use
//! them. Their direct backward steps read `W_hh` from the same textures (the same rows of
//! `W_hhᵀ`, fetched by unit instead of by input). On a GPU both go through caches at similar
//! rates, and the extra copy of the weights is not worth it until a measurement says otherwise.
//!
//! The weight gradients' GEMM and the direct forward and backward steps have subgroup variants
//! (`shaders/matmul_subgroup.wgsl`, `shaders/lstm_forward_step_subgroup.wgsl`,
//! `shaders/lstm_backward_step_subgroup.wgsl`), written for subgroups of exactly 8 invocations:
//! a device runs them where its adapter offers [`wgpu::Features::SUBGROUP`] and reports 8 as
//! both its smallest and its largest subgroup (lavapipe with 256-bit vectors). A software
//! adapter runs one lane of a subgroup per element of a vector register, so a value one lane
//! loaded reaches the others through a register shuffle, where loading it in every lane costs a
//! load per lane: the reference classifier's `dW_hh` took 40% less time, its forward and
//! backward steps 10-20% less. The forward step has a tall subgroup variant for batches of 32
//! rows and more (`shaders/lstm_forward_step_tall.wgsl`): one unit of 32 rows per lane, where
//! each weight it loads serves four times the rows, with `h_{t-1}` read from a transposed copy.
//! GPUs with wider subgroups keep the variants without subgroups until ones are written and
//! measured for them.

/// Which variants a [`crate::gpu::Gpu`] runs; [`Tuning::for_device_type`] chooses from the
/// adapter, and [`crate::gpu::Gpu::with_tuning`] overrides it (to compare variants, or to test
/// on one adapter the choices made for another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The largest batch whose forward step runs direct (and computes its own input
    /// projection), and whose backward step runs direct; larger batches run the staged steps
    /// (forward after a projection GEMM). At least
    /// [`Tuning::SMALL_BATCH`] on every adapter the crate chooses for.
    pub direct_step_max_batch: usize,
    /// Whether a `GpuLstm` keeps a copy of its weights in textures, which its direct forward
    /// and backward steps read instead of the parameter buffer (see the module comment).
    pub weight_texels: bool,
    /// Whether the weight gradients' GEMM and the direct steps share rows through subgroups of
    /// 8 (see the module comment). A device whose subgroups are not exactly 8 wide ignores it
    /// ([`crate::gpu::Gpu::with_tuning`]).
    pub subgroups: bool,
}

impl Tuning {
    /// The batches every adapter runs direct: at most this many rows (see the module comment).
    pub const SMALL_BATCH: usize = 4;

    /// The subgroup width the subgroup kernels are written for.
    pub const SUBGROUP_WIDTH: u32 = 8;

    /// The tuning for an adapter of type `device_type`: a software adapter
    /// ([`wgpu::DeviceType::Cpu`]) runs every batch direct, with the weights in textures; any
    /// other runs only small batches direct, with the weights in storage. Neither uses
    /// subgroups ([`Tuning::for_adapter`] adds them where the adapter has them).
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Tuning {
        let software = device_type == wgpu::DeviceType::Cpu;
        Tuning {
            direct_step_max_batch: match software {
                true => usize::MAX,
                false => Tuning::SMALL_BATCH,
            },
            weight_texels: software,
            subgroups: false,
        }
    }

    /// The tuning for an adapter described by `info` whose device has `features`:
    /// [`Tuning::for_device_type`], with [`Tuning::subgroups`] where the device has
    /// [`wgpu::Features::SUBGROUP`] and its subgroups are [`Tuning::SUBGROUP_WIDTH`] wide.
    pub fn for_adapter(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Tuning {
        Tuning {
            subgroups: subgroups_of_width(info, features),
            ..Tuning::for_device_type(info.device_type)
        }
    }
}

/// Whether a device with `features`, of the adapter `info` describes, runs subgroups of exactly
/// [`Tuning::SUBGROUP_WIDTH`] invocations.
pub(crate) fn subgroups_of_width(info: &wgpu::AdapterInfo, features: wgpu::Features) -> bool {
    features.contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == Tuning::SUBGROUP_WIDTH
        && info.subgroup_max_size == Tuning::SUBGROUP_WIDTH
}
