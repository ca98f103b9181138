//! `shaders/lstm_backward_step.wgsl`: one backward timestep of one layer for the whole batch;
//! CPU twin [`crate::cpu::lstm_backward_step`]. Uniform and tiling: [`super::lstm_step`].
//!
//! Bindings: `params`, `gates`, `saved` (`c` first), `state0` (`c0` and the lengths), `dy`
//! (read), `d_state`, `d_gates`, `dh_seq` (read; projected layers), then the layer's weight
//! texture (read by the texel variants only; the others bind any texture).
//!
//! Four variants: [`DESC`] (entry `main`) stages `W_hh` and `dgates_next` through workgroup
//! memory; [`DIRECT`] (entry `main_direct`) reads them (or, in a projected layer, `W_hr` and
//! `dh_t`) straight from storage for tiles of 8 rows, 8 units per invocation, for the larger
//! batches a software adapter runs direct; [`NARROW`] is the same entry with 4 units per
//! invocation, for the few rows every adapter runs direct and a projected layer's batches on a
//! GPU; and [`SINGLE_ROW`] is that for a batch of one, whose tile is that one row. [`variant`]
//! picks by batch, [`Tuning`] and projection. [`SUBGROUP`] is [`DIRECT`] sharing its rows'
//! inputs through a subgroup of 8. [`DIRECT`] and [`SUBGROUP`] have texel twins
//! ([`DIRECT_TEXELS`], [`SUBGROUP_TEXELS`], constant `TEXELS = 1`) that read `W_hh` from the
//! layer's weight texture, which a `GpuLstm` on a software adapter keeps for its forward steps
//! (`crate::gpu::weight_texels`): the same rows of `W_hhᵀ`, fetched as texels. All run all
//! directions of a layer, one per workgroup layer in z.

use super::lstm_step::{self, PRELUDE, step_kernel};
use super::{Access, Kernel, KernelDesc, Work, shader_file};
use crate::error::Result;
use crate::gpu::tuning::Tuning;

/// The staged variant.
pub(crate) const DESC: KernelDesc = KernelDesc {
    constants: &[
        ("TU", lstm_step::TU),
        ("TB", lstm_step::TB),
        ("KC", lstm_step::KC),
        ("TEXELS", 0),
    ],
    textures: 1,
    written_textures: 0,
    ..STEP
};

const STEP: KernelDesc = step_kernel(
    "lstm_backward_step",
    &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_backward_step.wgsl"),
    ],
    &[
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Read,
    ],
);

/// Hidden units per workgroup of [`NARROW`] and [`SINGLE_ROW`].
const NARROW_UNITS: u32 = 64;
/// Batch rows per workgroup of [`NARROW`], every invocation computing all of them (the rows of
/// a tile past the batch's end cost no loads and no products: see the shader).
const NARROW_ROWS: u32 = 8;
/// Invocations per workgroup of [`NARROW`] and [`SINGLE_ROW`], one row of them, each owning
/// `64 / 16` units: the tile the direct step had on every adapter before [`DIRECT`] took a
/// software adapter's larger batches, kept for what a GPU runs direct. (Of 16 to 128 units by 2
/// to 8 rows, 64 x 4 was the fastest on a software adapter over batches of 8 to 128 rows, 2.2
/// times faster than the staged step at the reference size; once the step kept its
/// accumulators in registers, 64 x 8 took 8% less at the reference size and 18-19% less at B64
/// H256 and B32 H512; 128 x 8 was as fast at the reference size but slower at B8 H32, 32 x 8
/// and 16 rows slower.)
const NARROW_WG: [u32; 3] = [16, 1, 1];
const _: () = assert!(NARROW_UNITS.is_multiple_of(NARROW_WG[0]) && NARROW_WG[1] == 1);

/// Hidden units per workgroup of [`DIRECT`].
const DIRECT_UNITS: u32 = 64;
/// Batch rows per workgroup of [`DIRECT`] (as [`NARROW_ROWS`]).
const DIRECT_ROWS: u32 = 8;
/// Invocations per workgroup of [`DIRECT`], one row of them (one SIMD row on a software
/// adapter), each owning `64 / 8` units of all 8 rows: each weight loaded serves 8 rows, each
/// `dgates_next` element 8 units. A software adapter loads storage element by element, so
/// there the loads set the pace: once the step's loops unrolled (no forced loop bounding), a
/// step took 1.11-1.16 ms at the reference size against 1.46 with [`NARROW`]'s tile,
/// 1.9 ms against 2.5-2.6 at B64 H256 and 3.7 against 4.75 at B32 H512; 128 units by 16
/// invocations was as fast, 16 units per invocation slower.
const DIRECT_WG: [u32; 3] = [8, 1, 1];
const _: () = assert!(DIRECT_UNITS.is_multiple_of(DIRECT_WG[0]) && DIRECT_WG[1] == 1);

/// The variant that reads `W_hh` and `dgates_{t+1}` straight from storage, with no workgroup
/// memory and no barrier (entry `main_direct`; `KC` only sizes the staged tiles of `main`), for
/// batches of more than [`Tuning::SMALL_BATCH`] rows on an adapter that runs them direct by
/// choice (a software adapter).
pub(crate) const DIRECT: KernelDesc = KernelDesc {
    name: "lstm_backward_step_direct",
    entry: "main_direct",
    workgroup_size: DIRECT_WG,
    constants: &[
        ("TU", DIRECT_UNITS),
        ("TB", DIRECT_ROWS),
        ("KC", lstm_step::KC),
        ("TEXELS", 0),
    ],
    ..DESC
};

/// [`DIRECT`] with the rows' inputs shared through a subgroup of 8
/// (`shaders/lstm_backward_step_subgroup.wgsl`, entry `main_subgroup`): each lane loads one
/// row's `dgates_next` (or `dh_t`) and takes the other rows' from its neighbours. It serves
/// [`DIRECT`]'s batches, with [`DIRECT`]'s tile, on devices whose subgroups are exactly 8 wide
/// ([`Tuning::subgroups`]).
pub(crate) const SUBGROUP: KernelDesc = KernelDesc {
    name: "lstm_backward_step_subgroup",
    files: &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_backward_step.wgsl"),
        shader_file!("subgroup_rows.wgsl"),
        shader_file!("lstm_backward_step_subgroup.wgsl"),
    ],
    entry: "main_subgroup",
    subgroups: true,
    ..DIRECT
};

/// [`DIRECT`] reading `W_hh` from the layer's weight texture.
pub(crate) const DIRECT_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_backward_step_direct_texels",
    constants: &[
        ("TU", DIRECT_UNITS),
        ("TB", DIRECT_ROWS),
        ("KC", lstm_step::KC),
        ("TEXELS", 1),
    ],
    ..DIRECT
};

/// [`SUBGROUP`] reading `W_hh` from the layer's weight texture.
pub(crate) const SUBGROUP_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_backward_step_subgroup_texels",
    constants: &[
        ("TU", DIRECT_UNITS),
        ("TB", DIRECT_ROWS),
        ("KC", lstm_step::KC),
        ("TEXELS", 1),
    ],
    ..SUBGROUP
};

// `main_subgroup` gives each of its lanes one row of the tile, in one row of invocations.
const _: () = assert!(DIRECT_WG[0] == Tuning::SUBGROUP_WIDTH && DIRECT_ROWS == DIRECT_WG[0]);

/// [`DIRECT`] with 4 units per invocation, for 2 to [`Tuning::SMALL_BATCH`] rows on every
/// adapter and for a projected layer's larger batches on a GPU: a GPU runs these direct, and a
/// tile of 8 units per invocation would give it half the invocations for the same work.
pub(crate) const NARROW: KernelDesc = KernelDesc {
    name: "lstm_backward_step_narrow",
    workgroup_size: NARROW_WG,
    constants: &[
        ("TU", NARROW_UNITS),
        ("TB", NARROW_ROWS),
        ("KC", lstm_step::KC),
        ("TEXELS", 0),
    ],
    ..DIRECT
};

/// [`NARROW`] with a tile of one row, for a batch of one: the 8-row tile decides at every
/// `k`, for each of its rows, whether the row needs the product, which for a single row costs
/// more than the products. On a software adapter at B1 H128 (one layer, I32), a backward step
/// took 152-173 µs against 202-208 with the 8-row tile; at B4 one-row tiles were 30% slower
/// (each weight loaded once per row instead of once per tile), so only a batch of one takes it.
pub(crate) const SINGLE_ROW: KernelDesc = KernelDesc {
    name: "lstm_backward_step_single_row",
    constants: &[
        ("TU", NARROW_UNITS),
        ("TB", 1),
        ("KC", lstm_step::KC),
        ("TEXELS", 0),
    ],
    ..NARROW
};

/// The backward step for a batch of `batch` rows on a device with `limits` and `tuning`, and
/// its tile `(kernel, units, rows)` per workgroup: direct for the batches whose forward step
/// runs direct (where workgroup memory and barriers cost more than they save, or the staged
/// tile would be mostly padding), and for every `projected` layer (the staged entry sums only
/// the recurrent term), when its row tiles fit one grid dimension (a batch of one in a tile of
/// its own); else staged. Of the direct tiles, [`DIRECT`] serves the batches of more than
/// [`Tuning::SMALL_BATCH`] rows that the adapter runs direct by choice ([`SUBGROUP`] where
/// [`Tuning::subgroups`]; either one's texel twin where `texels`, a model that keeps its
/// weights in textures), [`NARROW`] the rest.
pub(crate) fn variant(
    batch: usize,
    projected: bool,
    limits: &wgpu::Limits,
    tuning: Tuning,
    texels: bool,
) -> (Kernel, u32, u32) {
    let max = limits.max_compute_workgroups_per_dimension as usize;
    let chosen = batch <= tuning.direct_step_max_batch;
    let direct = chosen || projected;
    let fits = |rows: u32| batch.div_ceil(rows as usize) <= max;
    if direct && batch == 1 {
        (Kernel::LstmBackwardStepSingleRow, NARROW_UNITS, 1)
    } else if chosen && batch > Tuning::SMALL_BATCH && fits(DIRECT_ROWS) {
        let kernel = match (tuning.subgroups, texels) {
            (true, true) => Kernel::LstmBackwardStepSubgroupTexels,
            (true, false) => Kernel::LstmBackwardStepSubgroup,
            (false, true) => Kernel::LstmBackwardStepDirectTexels,
            (false, false) => Kernel::LstmBackwardStepDirect,
        };
        (kernel, DIRECT_UNITS, DIRECT_ROWS)
    } else if direct && fits(NARROW_ROWS) {
        (Kernel::LstmBackwardStepNarrow, NARROW_UNITS, NARROW_ROWS)
    } else {
        (Kernel::LstmBackwardStep, lstm_step::TU, lstm_step::TB)
    }
}

/// Workgroups for a backward step of [`variant`]`(batch, projected, limits, tuning)` over
/// `hidden` units in `dirs` directions, or [`Error::DeviceLimit`] when either exceeds what one
/// grid dimension of the device holds.
///
/// [`Error::DeviceLimit`]: crate::Error::DeviceLimit
pub(crate) fn grid(
    (batch, hidden, dirs): (usize, usize, usize),
    projected: bool,
    limits: &wgpu::Limits,
    tuning: Tuning,
) -> Result<[u32; 3]> {
    // The texel twins have their storage variants' tiles.
    let (_, units, rows) = variant(batch, projected, limits, tuning, false);
    lstm_step::grid((batch, hidden, dirs), (units, rows), limits)
}

/// What one backward step does for `batch` rows, `hidden` units and `out` features of `h` in
/// `dirs` directions: `dgates_next · W_hh` (or `dh_t · W_hr`), ~20 operations per unit for the
/// gate derivatives; the weights, the saved gates, `c_t`, `c_prev`, `dy_t` and the carried
/// `dh`, `dc` read once, `dgates_t` and the new `dc` written.
pub(crate) fn work(batch: usize, hidden: usize, out: usize, dirs: usize) -> Work {
    let (b, h) = (batch, hidden);
    let one = Work::new(
        2 * b * 4 * h * out + 20 * b * h,
        4 * h * out + 4 * b * h + 5 * b * h + 6 * b * h,
    );
    Work {
        flop: one.flop * dirs as u64,
        bytes: one.bytes * dirs as u64,
    }
}
