//! `shaders/lstm_forward_step.wgsl`: one forward timestep of one layer for the whole batch; CPU
//! twin [`crate::cpu::lstm_forward_step`]. Uniform: [`super::lstm_step`].
//!
//! The variants of the kernel, chosen by the batch size and the device's [`Tuning`]
//! ([`variant`]; `crate::gpu::tuning` says why):
//!
//! * [`DESC`] (entry `main`) stages `h_{t-1}` and `W_hh` in workgroup memory, a tile of
//!   [`lstm_step::TU`] units by [`lstm_step::TB`] rows at a time (the tiling it shares with the
//!   backward step), after a GEMM has made the input projection of the whole sequence;
//! * [`SMALL_BATCH`] and [`DIRECT`] (entry `main_direct`) read weights, inputs and `h_{t-1}`
//!   straight from storage and compute the step's input projection `x_t · W_ihᵀ + b_ih`
//!   themselves, so their forward pass has no projection GEMM ([`projects_input`]).
//!   [`SMALL_BATCH`], for at most [`Tuning::SMALL_BATCH`] rows, gives each invocation 2 units
//!   of one row; [`DIRECT`], for larger batches, 8 units of 8 rows, so that each weight it
//!   loads serves 8 rows.
//!
//! Where the device's subgroups are 8 wide ([`Tuning::subgroups`]), [`SUBGROUP`] (entry
//! `main_subgroup`, `shaders/lstm_forward_step_subgroup.wgsl`) takes [`DIRECT`]'s batches with
//! its tile: each of the 8 invocations loads one row's `x_t` and `h_{t-1}` and hands them to the
//! others (`subgroupBroadcast`), instead of every invocation loading all 8 rows; for layers of
//! at most 32 units, [`SUBGROUP_NARROW`] does the same with 4 units per invocation. Batches of
//! at least 32 rows of unprojected layers whose inputs are a multiple of 4 wide or no wider than
//! the layer ([`Layers`]) take [`TALL`] (entry `main_tall`,
//! `shaders/lstm_forward_step_tall.wgsl`): 32 rows by 8 units, one unit per invocation, so that
//! each weight loaded serves 32 rows; it reads `h_{t-1}` from a copy transposed to `[O, B]` (a
//! texel holds 4 rows) that each step writes into a texture for the next ([`h_transposed_size`];
//! even steps write one of two and read the other, odd steps the other way round). Its
//! inference passes run [`TALL_INFERENCE`] ([`for_inference`]), the same step compiled without
//! the code that saves what backward reads (constant `SAVES = 0`; `PROJECTS = 0` drops the
//! projected layers' stores from every tall variant).
//!
//! Each direct variant has a texel twin ([`SMALL_BATCH_TEXELS`], [`DIRECT_TEXELS`],
//! [`SUBGROUP_TEXELS`], [`SUBGROUP_NARROW_TEXELS`], [`TALL_TEXELS`], constant `TEXELS = 1`)
//! that reads `W_ihᵀ` and `W_hhᵀ` from the layer's weight texture instead of `params` (chosen
//! by [`variant`]; `crate::gpu::weight_texels`). Only software adapters run the texel twins,
//! and the small-batch one has a tile of its own for them: 8 units per invocation instead of 2.
//!
//! Bindings: `xproj` (read; the staged variant's input projection, unread by the others),
//! `params` (read), `state0` (read; `h0`, `c0` and the lengths), `y`, `state_n`, `saved` (`c`,
//! `h_prev`, `r`), `gates`, `input` (read; the layer's input `[B, T, I]` as vec4s, read by the
//! direct variants only), then the weight texture (read by the texel variants only; the others
//! bind any texture), and in the tall variants the textures of `h` transposed that the step
//! reads and writes. Every variant runs all directions of a layer, one per workgroup layer in z.

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
        ("SAVES", 1),
        ("PROJECTS", 1),
    ],
    textures: 1,
    written_textures: 0,
    ..STEP
};

const STEP: KernelDesc = step_kernel(
    "lstm_forward_step",
    &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_forward_step.wgsl"),
    ],
    &[
        // `xproj`
        Access::Read,
        Access::Read,
        Access::Read,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::ReadWrite,
        Access::Read,
    ],
);

/// The tile of a direct variant: `units` by `rows` per workgroup of `invocations` in x, each
/// invocation owning `units / invocations` units of all `rows` rows.
struct DirectTile {
    units: u32,
    rows: u32,
    invocations: u32,
}

impl DirectTile {
    /// The shader constants of a variant with this tile, reading the weights from the layer's
    /// texture where `texels` (`KC` only sizes the staged tiles of `main`), for every layer and
    /// pass.
    const fn constants(&self, texels: bool) -> [(&'static str, u32); 6] {
        self.constants_for(texels, true, true)
    }

    /// [`DirectTile::constants`] of a variant that serves projected layers or not (`projects`)
    /// and saves what backward reads where the pass asks, or never (`saves`).
    const fn constants_for(
        &self,
        texels: bool,
        projects: bool,
        saves: bool,
    ) -> [(&'static str, u32); 6] {
        [
            ("TU", self.units),
            ("TB", self.rows),
            ("KC", lstm_step::KC),
            ("TEXELS", texels as u32),
            ("SAVES", saves as u32),
            ("PROJECTS", projects as u32),
        ]
    }
}

const SMALL_TILE: DirectTile = DirectTile {
    units: 64,
    rows: 1,
    invocations: 32,
};
/// 8 units by 8 rows per invocation, 8 invocations (one SIMD row on a software adapter): each
/// weight loaded serves 8 rows, each `h_prev` or `x_t` element 8 units. A software adapter loads
/// storage element by element, so there the loads, not the multiply-adds, set the pace: once
/// the step kernels' loops unrolled (no forced loop bounding), this tile took 1.1 ms a step at
/// the reference size against 1.7 for 2 units by 8 rows in 16 invocations, 1.9 ms against 3.2-3.8
/// at B64 H256 and 6.9 against 11.1-11.5 at B32 H512; 4 units by 8 rows and 8 units by 4 or 6
/// were in between, and 16 units (or 16 rows) per invocation 4-5 times slower.
const DIRECT_TILE: DirectTile = DirectTile {
    units: 64,
    rows: 8,
    invocations: 8,
};
/// The small-batch tile of the texel variant, which only software adapters run: 8 units per
/// invocation, so that the loop over `k` (a uniform load of `x_t` or `h_prev`, the loop's own
/// bookkeeping) is paid once per 8 weight loads rather than per 2. On a software adapter at
/// I32 H128, one layer, against [`SMALL_TILE`]: a 1-step streaming call 178-180 µs against
/// 210-214; a step of 4 rows 245-354 µs against 297-378; a 1-row step at I64 H512 670-720 µs
/// against 975-981; a 1-row step inside a long call unchanged (118-131 µs either way). 64
/// units by 8 invocations and 32 by 8 were in between.
const SMALL_TEXELS_TILE: DirectTile = DirectTile {
    units: 128,
    rows: 1,
    invocations: 16,
};
const _: () = assert!(
    SMALL_TILE.units.is_multiple_of(SMALL_TILE.invocations)
        && SMALL_TEXELS_TILE
            .units
            .is_multiple_of(SMALL_TEXELS_TILE.invocations)
        && DIRECT_TILE.units.is_multiple_of(DIRECT_TILE.invocations)
);

/// The direct variant for at most [`Tuning::SMALL_BATCH`] rows: a workgroup per row (`KC`
/// only sizes the staged tiles of `main`).
pub(crate) const SMALL_BATCH: KernelDesc = KernelDesc {
    name: "lstm_forward_step_small_batch",
    entry: "main_direct",
    workgroup_size: [SMALL_TILE.invocations, 1, 1],
    constants: &SMALL_TILE.constants(false),
    ..DESC
};

/// [`SMALL_BATCH`] reading the weights from the layer's texture, with its own tile.
pub(crate) const SMALL_BATCH_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_small_batch_texels",
    workgroup_size: [SMALL_TEXELS_TILE.invocations, 1, 1],
    constants: &SMALL_TEXELS_TILE.constants(true),
    ..SMALL_BATCH
};

/// The direct variant for larger batches, 8 rows per invocation.
pub(crate) const DIRECT: KernelDesc = KernelDesc {
    name: "lstm_forward_step_direct",
    constants: &DIRECT_TILE.constants(false),
    workgroup_size: [DIRECT_TILE.invocations, 1, 1],
    ..SMALL_BATCH
};

/// [`DIRECT`] reading the weights from the layer's texture.
pub(crate) const DIRECT_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_direct_texels",
    constants: &DIRECT_TILE.constants(true),
    ..DIRECT
};

/// The tile of the subgroup variants: [`DIRECT_TILE`]'s 64 units by 8 rows, one lane per row
/// loading its inputs. On a software adapter with 8-wide subgroups, the reference forward pass
/// (best of 20, two runs): 27-29 ms, against 31-33 for 32 units by 8 rows, 30-31 for 16 by 16,
/// 35-37 for 8 by 16, and 33-37 for [`DIRECT_TEXELS`]'s tile without subgroups; 32 rows, or 16
/// rows of 4 or more units per invocation, took 5 to 15 times as long.
const SUBGROUP_TILE: DirectTile = DirectTile {
    units: 64,
    rows: 8,
    invocations: crate::gpu::Tuning::SUBGROUP_WIDTH,
};
// `main_subgroup` gives each of its 8 lanes one row, in one row of invocations.
const _: () = assert!(
    SUBGROUP_TILE.invocations == 8
        && SUBGROUP_TILE.rows == 8
        && SUBGROUP_TILE
            .units
            .is_multiple_of(SUBGROUP_TILE.invocations)
);

/// The tile of the narrow subgroup variants, for layers of at most 32 units: 32 units by 8 rows,
/// each invocation owning 4 units, where [`SUBGROUP_TILE`]'s 8 units per invocation would leave
/// half of them clamped copies of the layer's last unit (computed, never stored). On a software
/// adapter with 8-wide subgroups, the small forward pass (B8 T28 I28 H32, best of 20, six
/// alternating runs): 1.18-1.26 ms against 1.47-1.55 with [`SUBGROUP_TILE`]. Wider layers keep
/// [`SUBGROUP_TILE`]: the reference forward pass took 31-33 ms with this tile against 27-29.
const SUBGROUP_NARROW_TILE: DirectTile = DirectTile {
    units: 32,
    rows: 8,
    invocations: crate::gpu::Tuning::SUBGROUP_WIDTH,
};
const _: () = assert!(
    SUBGROUP_NARROW_TILE.invocations == 8
        && SUBGROUP_NARROW_TILE.rows == 8
        && SUBGROUP_NARROW_TILE
            .units
            .is_multiple_of(SUBGROUP_NARROW_TILE.invocations)
);

/// [`DIRECT`] with the rows' inputs shared through a subgroup of 8
/// (`shaders/lstm_forward_step_subgroup.wgsl`, entry `main_subgroup`), for devices whose
/// subgroups are exactly 8 wide ([`Tuning::subgroups`]).
pub(crate) const SUBGROUP: KernelDesc = KernelDesc {
    name: "lstm_forward_step_subgroup",
    files: &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_forward_step.wgsl"),
        shader_file!("subgroup_rows.wgsl"),
        shader_file!("lstm_forward_step_subgroup.wgsl"),
    ],
    entry: "main_subgroup",
    workgroup_size: [SUBGROUP_TILE.invocations, 1, 1],
    constants: &SUBGROUP_TILE.constants(false),
    subgroups: true,
    ..DESC
};

/// [`SUBGROUP`] reading the weights from the layer's texture.
pub(crate) const SUBGROUP_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_subgroup_texels",
    constants: &SUBGROUP_TILE.constants(true),
    ..SUBGROUP
};

/// [`SUBGROUP`] with [`SUBGROUP_NARROW_TILE`], for layers of at most 32 units.
pub(crate) const SUBGROUP_NARROW: KernelDesc = KernelDesc {
    name: "lstm_forward_step_subgroup_narrow",
    constants: &SUBGROUP_NARROW_TILE.constants(false),
    ..SUBGROUP
};

/// [`SUBGROUP_NARROW`] reading the weights from the layer's texture.
pub(crate) const SUBGROUP_NARROW_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_subgroup_narrow_texels",
    constants: &SUBGROUP_NARROW_TILE.constants(true),
    ..SUBGROUP
};

/// The tile of the tall variants: 32 rows by 8 units, one unit per lane, so that each weight
/// loaded serves 32 rows. On a software adapter with 8-wide subgroups, the products alone of
/// the reference step (28 dispatches, best of 15, two runs) took 13.5 ms against 17.1-17.4 for
/// [`SUBGROUP_TILE`]'s, with `h_prev` read a vec4 of 4 rows at a time (14.3 ms from storage,
/// 13.5 from a texture); 32 or 64 rows of 2 units, or 64 rows of one, took 10-15 times as long
/// (their accumulators, one array of 64 vec4s, compile to memory). 64 rows with the accumulators
/// in two arrays of 32 made the products alone 8% faster but the whole reference step no faster
/// (best of 20, six alternating runs: 23.7 against 23.5 ms).
const TALL_TILE: DirectTile = DirectTile {
    units: 8,
    rows: 32,
    invocations: crate::gpu::Tuning::SUBGROUP_WIDTH,
};
// `main_tall` gives each lane one unit and 4 of the 32 rows to load, in one row of invocations.
const _: () = assert!(TALL_TILE.invocations == 8 && TALL_TILE.units == 8 && TALL_TILE.rows == 32);

/// The tall variant (`shaders/lstm_forward_step_tall.wgsl`, entry `main_tall`): 32 rows by 8
/// units, reading `h_{t-1}` transposed from the texture the step before wrote
/// ([`reads_h_transposed`]), for devices whose subgroups are 8 wide, batches of at least 32 rows
/// and unprojected layers. A software adapter loads a storage texture's texels several times as
/// fast as a storage buffer's `vec4`s (`crate::gpu::weight_texels`): the products of a step at
/// the reference size, in a probe on lavapipe (best of 15, four alternating rounds), took
/// 9.4-11.5 ms with `h_{t-1}` in a texture against 14.8-16.5 in storage.
pub(crate) const TALL: KernelDesc = KernelDesc {
    name: "lstm_forward_step_tall",
    files: &[
        PRELUDE[0],
        PRELUDE[1],
        PRELUDE[2],
        shader_file!("lstm_forward_step.wgsl"),
        shader_file!("subgroup_rows.wgsl"),
        shader_file!("lstm_forward_step_tall.wgsl"),
    ],
    entry: "main_tall",
    workgroup_size: [TALL_TILE.invocations, 1, 1],
    textures: 2,
    written_textures: 1,
    constants: &TALL_TILE.constants_for(false, false, true),
    subgroups: true,
    ..DESC
};

/// [`TALL`] reading the weights from the layer's texture.
pub(crate) const TALL_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_tall_texels",
    constants: &TALL_TILE.constants_for(true, false, true),
    ..TALL
};

/// [`TALL`] for inference: the same step without the code that saves what backward reads. A
/// software adapter runs a lane's code on both sides of a branch, so in [`TALL`] an inference
/// pass still pays for the saving stores it skips. On lavapipe with 8-wide subgroups, the
/// reference forward pass (best of 20, two quiet alternating rounds) took 16.7 ms against 17.5
/// with the saving code.
pub(crate) const TALL_INFERENCE: KernelDesc = KernelDesc {
    name: "lstm_forward_step_tall_inference",
    constants: &TALL_TILE.constants_for(false, false, false),
    ..TALL
};

/// [`TALL_INFERENCE`] reading the weights from the layer's texture.
pub(crate) const TALL_INFERENCE_TEXELS: KernelDesc = KernelDesc {
    name: "lstm_forward_step_tall_inference_texels",
    constants: &TALL_TILE.constants_for(true, false, false),
    ..TALL
};

/// The variant an inference pass runs in place of `kernel`: the tall steps' twins without the
/// saving code ([`TALL_INFERENCE`]); every other step saves only where the pass asks.
pub(crate) fn for_inference(kernel: Kernel) -> Kernel {
    match kernel {
        Kernel::LstmForwardStepTall => Kernel::LstmForwardStepTallInference,
        Kernel::LstmForwardStepTallTexels => Kernel::LstmForwardStepTallInferenceTexels,
        k => k,
    }
}

/// Whether the step `kernel` reads `h_{t-1}` transposed from a texture the step before wrote (the
/// tall variants): its pass keeps two of [`h_transposed_size`].
pub(crate) fn reads_h_transposed(kernel: Kernel) -> bool {
    matches!(
        kernel,
        Kernel::LstmForwardStepTall
            | Kernel::LstmForwardStepTallTexels
            | Kernel::LstmForwardStepTallInference
            | Kernel::LstmForwardStepTallInferenceTexels
    )
}

/// The size, `(width, rows)` in texels, of one step's `h` transposed for the tall variants:
/// `[D·O, B' / 4]` with `B'` the batch rounded up to whole tiles, four rows to a texel
/// (`shaders/lstm_forward_step_tall.wgsl`).
pub(crate) fn h_transposed_size(batch: usize, out: usize, dirs: usize) -> (usize, usize) {
    let rows = batch.div_ceil(TALL_TILE.rows as usize) * TALL_TILE.rows as usize;
    (rows / 4, dirs * out)
}

/// What the choice of a step variant needs to know of a model's layers (one variant serves
/// them all).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers {
    /// Units per layer.
    pub(crate) hidden: usize,
    /// Whether some layer's input is wider than `hidden` and not a multiple of 4 wide.
    pub(crate) wide_unaligned_input: bool,
    /// Whether the layers project `h` (`O < H`).
    pub(crate) projected: bool,
    /// Directions per layer.
    pub(crate) dirs: usize,
}

impl Layers {
    /// The layers of `config`.
    pub(crate) fn of(config: &crate::LstmConfig) -> Layers {
        let hidden = config.hidden_size;
        let wide_unaligned_input = (0..config.num_layers)
            .map(|l| config.layer_input_size(l))
            .any(|i| i > hidden && !i.is_multiple_of(4));
        Layers {
            hidden,
            wide_unaligned_input,
            projected: config.output_size() < hidden,
            dirs: config.num_directions(),
        }
    }

    /// Whether the tall variants serve these layers: unprojected (a projected layer's `h` is
    /// the projection step's output, which does not write it transposed), with inputs that
    /// are a multiple of 4 wide or no wider than the layer. The tall tile reads `x_t` four
    /// rows to a lane, four features to a load where they start on a vec4, else one by one:
    /// on a software adapter with 8-wide subgroups (forward, best of 20, alternating runs),
    /// one by one B64 H256 took 126-133 ms against the 8-row tile's 123-126 at I512 T30 (but
    /// 126-135 against 146-149 at I256 T50); four to a load 86-93 against 116-118 at I512,
    /// 71 against 96-99 at B32 H256 I1024 T30, 119-121 against 152-157 at B32 H512 I512 T30.
    fn tall_fits(&self) -> bool {
        !self.projected && !self.wide_unaligned_input
    }
}

/// The kernel for a batch of `batch` rows of `layers` on a device with
/// `limits` and `tuning`, reading the weights from textures where `texels` (a model that keeps
/// them) and the kernel has a texel twin, and its tile: `(kernel, units, rows)` per workgroup.
/// A direct variant needs its row tiles to fit one grid dimension; when they do not, the staged
/// step (fewer row tiles) takes over.
pub(crate) fn variant(
    batch: usize,
    layers: Layers,
    limits: &wgpu::Limits,
    tuning: Tuning,
    texels: bool,
) -> (Kernel, u32, u32) {
    let max = limits.max_compute_workgroups_per_dimension as usize;
    let direct = batch <= tuning.direct_step_max_batch;
    let fits = |t: &DirectTile| batch.div_ceil(t.rows as usize) <= max;
    let (kernel, tile) = if direct && batch <= Tuning::SMALL_BATCH && fits(&SMALL_TILE) {
        match texels {
            true => (Kernel::LstmForwardStepSmallBatchTexels, &SMALL_TEXELS_TILE),
            false => (Kernel::LstmForwardStepSmallBatch, &SMALL_TILE),
        }
    } else if direct
        && tuning.subgroups
        && layers.tall_fits()
        && batch >= TALL_TILE.rows as usize
        && fits(&TALL_TILE)
        && h_transposed_fits(batch, layers, limits)
    {
        match texels {
            true => (Kernel::LstmForwardStepTallTexels, &TALL_TILE),
            false => (Kernel::LstmForwardStepTall, &TALL_TILE),
        }
    } else if direct && tuning.subgroups && fits(&SUBGROUP_TILE) {
        let narrow = layers.hidden <= SUBGROUP_NARROW_TILE.units as usize;
        match (narrow, texels) {
            (false, true) => (Kernel::LstmForwardStepSubgroupTexels, &SUBGROUP_TILE),
            (false, false) => (Kernel::LstmForwardStepSubgroup, &SUBGROUP_TILE),
            (true, true) => (
                Kernel::LstmForwardStepSubgroupNarrowTexels,
                &SUBGROUP_NARROW_TILE,
            ),
            (true, false) => (Kernel::LstmForwardStepSubgroupNarrow, &SUBGROUP_NARROW_TILE),
        }
    } else if direct && fits(&DIRECT_TILE) {
        match texels {
            true => (Kernel::LstmForwardStepDirectTexels, &DIRECT_TILE),
            false => (Kernel::LstmForwardStepDirect, &DIRECT_TILE),
        }
    } else {
        return (Kernel::LstmForwardStep, lstm_step::TU, lstm_step::TB);
    };
    (kernel, tile.units, tile.rows)
}

/// Whether [`h_transposed_size`] of `batch` rows of `layers` (unprojected: `O = H`) fits the
/// device's textures.
fn h_transposed_fits(batch: usize, layers: Layers, limits: &wgpu::Limits) -> bool {
    let (width, rows) = h_transposed_size(batch, layers.hidden, layers.dirs);
    let max = limits.max_texture_dimension_2d as usize;
    width <= max && rows <= max
}

/// Whether the step `kernel` computes its own input projection (the direct variants), so the
/// forward pass needs no projection GEMM and no `xproj` buffer.
pub(crate) fn projects_input(kernel: Kernel) -> bool {
    kernel != Kernel::LstmForwardStep
}

/// What one forward step of `kernel` does for `batch` rows of `input` features, `hidden` units
/// and `out` features of `h`, in `dirs` directions: `h_prev · W_hhᵀ` (and `x_t · W_ihᵀ` when
/// the kernel projects its input), ~20 operations per unit for the gates and the cell; the
/// weights, `h_prev`, `c_prev` and `xproj_t` (or `x_t`) read once, `h_t` and `c_t` written.
pub(crate) fn work(kernel: Kernel, batch: usize, (input, hidden, out): Sizes, dirs: usize) -> Work {
    let (b, h) = (batch, hidden);
    let k = if projects_input(kernel) {
        input + out
    } else {
        out
    };
    let inputs = if projects_input(kernel) {
        b * input
    } else {
        4 * b * h
    };
    let one = Work::new(
        2 * b * 4 * h * k + 20 * b * h,
        4 * h * k + 8 * h + inputs + b * out + 3 * b * h,
    );
    Work {
        flop: one.flop * dirs as u64,
        bytes: one.bytes * dirs as u64,
    }
}

/// A layer's sizes: input features `I`, hidden units `H`, features of `h` `O`.
pub(crate) type Sizes = (usize, usize, usize);

/// Workgroups for a step of [`variant`]`(batch, hidden, limits, tuning, texels)` over `hidden` units
/// in `dirs` directions, or [`Error::DeviceLimit`] when either exceeds what one grid dimension
/// of the device holds.
///
/// [`Error::DeviceLimit`]: crate::Error::DeviceLimit
pub(crate) fn grid(
    (batch, layers, dirs): (usize, Layers, usize),
    limits: &wgpu::Limits,
    tuning: Tuning,
    texels: bool,
) -> Result<[u32; 3]> {
    let (_, units, rows) = variant(batch, layers, limits, tuning, texels);
    lstm_step::grid((batch, layers.hidden, dirs), (units, rows), limits)
}

#[cfg(test)]
mod tests {
    use super::Layers;
    use crate::LstmConfig;

    fn tall_fits(config: LstmConfig) -> bool {
        Layers::of(&config).tall_fits()
    }

    #[test]
    fn the_tall_step_serves_inputs_narrow_or_in_whole_vec4s() {
        let layer = |i, h| LstmConfig::new(i, h, 1).unwrap();
        assert!(tall_fits(layer(28, 128)), "narrower than the layer");
        assert!(tall_fits(layer(130, 130)), "as wide as the layer");
        assert!(tall_fits(layer(132, 64)), "wider, in whole vec4s");
        assert!(!tall_fits(layer(130, 64)), "wider, not in whole vec4s");
        // The second layer reads both directions: 2·33 = 66 features for 33 units.
        let bidirectional = LstmConfig::new(8, 33, 2)
            .unwrap()
            .with_bidirectional(true)
            .unwrap();
        assert!(!tall_fits(bidirectional));
        let projected = LstmConfig::new(8, 64, 1)
            .unwrap()
            .with_proj_size(32)
            .unwrap();
        assert!(!tall_fits(projected), "projected");
    }
}
