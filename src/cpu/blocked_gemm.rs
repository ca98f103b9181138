//! The CPU path's matrix products: `C = init + A · B`, with `B` packed once and reused, `A`
//! packed block by block, and the arithmetic in [`super::microkernel`].
//!
//! ```text
//! C[m, n] = init[m, n] + Σ_k A[m, k] · B[k, n]        init: 0, C itself, or bias[n]
//! ```
//!
//! * `B` `[K, N]` is packed into panels of [`NR`] columns, each `[K][NR]` contiguous and
//!   zero-padded ([`PackedB`]). A weight matrix is packed once per call and then serves every
//!   timestep; it can be assembled from blocks (`[W_ihᵀ; W_hhᵀ]` stacked along `K`, or
//!   `[x | h]` side by side along `N`), so concatenated operands need no copy of their own.
//! * `A` `[M, K]` is given as column blocks of any strides (`[x_t | h_{t-1}]`, or a transposed
//!   view such as `dgatesᵀ`). Blocks whose rows are contiguous are read where they are (no
//!   copy per timestep); otherwise `A` is packed `KC` columns at a time into row panels
//!   `[KC][MR]`.
//! * Loops, outermost first: `K` in blocks of at most `KC` (not crossing a block of `A` when
//!   `A` is read in place); rows in blocks of `MC`; panels of `B` (one panel, `KC × NR`, stays
//!   in cache while every row panel of the block passes over it); row panels.
//!
//! Each element of `C` is one chain of fused multiply-adds over `k` in order, whatever the
//! blocking, the thread count (callers split rows of `C`) or the vector width: see
//! [`super::microkernel`]. Edge tiles are computed in a full tile on the stack, by the same
//! kernel.

use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::isa::Isa;
use super::microkernel::{self, ABlocks, ARef, MR_MAX, NR, TileInit};
use super::parallel::chunk_rows;
use crate::real::Real;

/// Columns of `A` (rows of `B`) per block: one `KC × NR` panel of `B` is 64 KiB in `f32`, in
/// L2 and streamed through L1 by the hardware prefetcher. A step's `K` (`I + H` up to 512, or
/// `H` alone) then fits one block, so each tile of `C` is loaded and stored once instead of
/// once per block: at B32 I512 H512 this was ~7% faster than 256 (32 KiB, all of a 32 KiB L1).
const KC: usize = 512;
/// Rows of `A` per block: a packed `MC × KC` block of `A` is 384 KiB in `f32` (in L2).
const MC: usize = 192;

/// Bytes of a cache line, where the packed panels of `B` start.
const CACHE_LINE: usize = 64;

/// `B` `[K, N]` packed in panels of [`NR`] columns: panel `p` holds columns `p·NR ..` as
/// `[K][NR]`, row-major, zero past column `N`.
///
/// The panels start on a cache line (at `data[start]`), so that each of the kernels' vector
/// loads of a row of a panel reads one line, not two. A large `Vec` from the system allocator
/// starts 16 bytes past a page boundary, where every 512-bit load of a row crossed a line.
#[derive(Debug, Clone, Default)]
pub(crate) struct PackedB<F> {
    k: usize,
    n: usize,
    start: usize,
    data: Vec<F>,
}

impl<F: Real> PackedB<F> {
    /// Rows `K`.
    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Columns `N`.
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// Packs the `[k, n]` matrix made of `blocks`, each `(row, col, view)` placing `view` with
    /// its top-left element at `(row, col)`; elements no block covers are zero. Reuses the
    /// allocation.
    pub(crate) fn pack(
        &mut self,
        k: usize,
        n: usize,
        blocks: &[(usize, usize, ArrayView2<'_, F>)],
    ) {
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        // Room for the panels from the first cache line of the allocation on.
        let lanes = CACHE_LINE / size_of::<F>();
        self.data.clear();
        self.data.resize(panels * k * NR + lanes, F::zero());
        self.start = self.data.as_ptr().align_offset(CACHE_LINE).min(lanes);
        let data = &mut self.data[self.start..];
        for (row0, col0, view) in blocks {
            let (rows, cols) = view.dim();
            assert!(
                row0 + rows <= k && col0 + cols <= n,
                "a block reaches outside the packed matrix"
            );
            if let Some(rows_of) = view.as_slice() {
                // Row-major: each row is copied in runs that end at the panels' edges.
                for (i, row) in rows_of.chunks_exact(cols.max(1)).enumerate().take(rows) {
                    let kk = row0 + i;
                    let mut j = 0;
                    while j < cols {
                        let col = col0 + j;
                        let run = (NR - col % NR).min(cols - j);
                        let at = ((col / NR) * k + kk) * NR + col % NR;
                        data[at..at + run].copy_from_slice(&row[j..j + run]);
                        j += run;
                    }
                }
                continue;
            }
            let (rs, cs) = (view.strides()[0], view.strides()[1]);
            let base = view.as_ptr();
            // NR source columns at a time, row by row: a transposed view (a weight matrix read
            // as `Wᵀ`) is then read as NR streams that each move on by one element, instead of
            // a walk across the whole matrix per row.
            for j0 in (0..cols).step_by(NR) {
                let j1 = (j0 + NR).min(cols);
                for i in 0..rows {
                    let kk = row0 + i;
                    for j in j0..j1 {
                        let col = col0 + j;
                        // SAFETY: i < rows and j < cols: an element of the view.
                        let v = unsafe { *base.offset(i as isize * rs + j as isize * cs) };
                        data[((col / NR) * k + kk) * NR + col % NR] = v;
                    }
                }
            }
        }
    }

    /// A packed copy of `b` `[K, N]`.
    #[cfg(test)]
    pub(crate) fn of(b: ArrayView2<'_, F>) -> Self {
        let mut p = PackedB::default();
        p.pack(b.nrows(), b.ncols(), &[(0, 0, b)]);
        p
    }
}

/// A [`PackedB`], or a block of its rows and panels, borrowed: `k` rows and `n` columns, panel
/// `p` of the block starting at `data[p · stride]` (`stride` is the whole matrix's `K · NR`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedRef<'a, F> {
    k: usize,
    n: usize,
    stride: usize,
    data: &'a [F],
}

impl<F: Real> PackedB<F> {
    /// The whole packed matrix.
    pub(crate) fn all(&self) -> PackedRef<'_, F> {
        PackedRef {
            k: self.k,
            n: self.n,
            stride: self.k * NR,
            data: self.panels_data(),
        }
    }

    /// Rows `k0 .. k0 + k` of the packed matrix, all columns: a block of a stacked
    /// `[W_ihᵀ; W_hhᵀ]`, read where it is packed.
    pub(crate) fn rows(&self, k0: usize, k: usize) -> PackedRef<'_, F> {
        assert!(k0 + k <= self.k, "rows outside the packed matrix");
        let data = self.panels_data();
        PackedRef {
            k,
            n: self.n,
            stride: self.k * NR,
            data: &data[(k0 * NR).min(data.len())..],
        }
    }

    /// The packed panels (from the cache line they start on).
    fn panels_data(&self) -> &[F] {
        &self.data[self.start.min(self.data.len())..]
    }
}

impl<F: Real> PackedRef<'_, F> {
    /// Columns `p0 · NR ..` of this block, `panels` whole panels (fewer columns when the
    /// matrix ends sooner).
    pub(crate) fn panels(self, p0: usize, panels: usize) -> Self {
        assert!(p0 * NR <= self.n, "panels outside the packed matrix");
        PackedRef {
            k: self.k,
            n: (panels * NR).min(self.n - p0 * NR),
            stride: self.stride,
            data: &self.data[(p0 * self.stride).min(self.data.len())..],
        }
    }
}

/// How the sums of `C` start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init<'a, F> {
    /// `C = A · B`.
    Zero,
    /// `C += A · B`.
    Accumulate,
    /// `C = bias + A · B`, `bias` `[N]` added to every row.
    Bias(&'a [F]),
}

/// Working memory of [`gemm`]: the packed block of `A` (when `A` is not read in place). Keep
/// one per thread and reuse it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GemmScratch<F> {
    a: Vec<F>,
}

/// `C = init + A · B` on one thread (see the module docs).
///
/// * `a`: column blocks of `A` `[M, K]`, side by side, each `[M, K_i]` with any strides.
/// * `b`: `B` `[K, N]`, packed.
/// * `c` `[M, N]`: its rows must be contiguous (column stride 1).
///
/// Panics when the shapes disagree or `c`'s columns are not contiguous: every caller is inside
/// this crate and passes shapes it has checked.
pub(crate) fn gemm<F: Real>(
    isa: Isa,
    a: &[ArrayView2<'_, F>],
    b: PackedRef<'_, F>,
    init: Init<'_, F>,
    c: &mut ArrayViewMut2<'_, F>,
    scratch: &mut GemmScratch<F>,
) {
    let (m, n) = c.dim();
    let k: usize = a.iter().map(|v| v.ncols()).sum();
    assert!(
        a.iter().all(|v| v.nrows() == m) && b.k == k && b.n == n,
        "GEMM operands disagree: C [{m}, {n}], A [{m}, {k}], B [{}, {}]",
        b.k,
        b.n
    );
    if let Init::Bias(bias) = init {
        assert_eq!(bias.len(), n, "GEMM bias length");
    }
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n == 1 || c.strides()[1] == 1,
        "GEMM output rows must be contiguous"
    );
    if k == 0 {
        match init {
            Init::Zero => c.fill(F::zero()),
            Init::Accumulate => {}
            Init::Bias(bias) => c.rows_mut().into_iter().for_each(|mut r| {
                r.iter_mut().zip(bias).for_each(|(v, &b)| *v = b);
            }),
        }
        return;
    }
    let isa = if isa.is_supported() { isa } else { Isa::Scalar };
    let mr = microkernel::mr::<F>(isa);
    let ldc = c.strides()[0].max(1) as usize;
    let c_ptr = c.as_mut_ptr();
    let panels = n.div_ceil(NR);
    let full_panels = n / NR;
    let b_stride = b.stride;
    // One block of K: columns `pc .. pc + kc` of A, either packed here or read in place from
    // one or two pieces of its column blocks (`direct`; a lone piece comes as its own tail,
    // which then has no columns left to run).
    let mut block_of_k = |pc: usize, kc: usize, direct: Option<[Piece<'_, '_, F>; 2]>| {
        let first_block = pc == 0;
        for ic in (0..m).step_by(MC) {
            let mc = MC.min(m - ic);
            if direct.is_none() {
                pack_a(a, ic, mc, pc, kc, mr, &mut scratch.a);
            }
            // Row tiles `(first row in the block, rows)`. A packed A comes in panels of `mr`
            // rows, so its tiles are those panels and a shorter last one; A read in place is
            // cut into as few tiles as `mr` allows, of even heights (16 rows as 8 + 8, not
            // 12 + 4, whose short tile would use the kernel poorly).
            let tiles = row_tiles(mc, mr, direct.is_some());
            let a_tile = |r0: usize| match direct {
                // Rows ic + r0 .. of each piece's block, from its column j0; the blocks' row
                // strides are non-negative (checked when `direct` was chosen).
                Some([head, tail]) => {
                    let rows = |p: Piece<'_, '_, F>| ARef {
                        ptr: p.block.as_ptr().wrapping_offset(
                            (ic + r0) as isize * p.block.strides()[0] + p.j0 as isize,
                        ),
                        rs: p.block.strides()[0] as usize,
                        ks: 1,
                    };
                    ABlocks {
                        head: rows(head),
                        split: head.len,
                        tail: rows(tail),
                    }
                }
                // Packed tiles start at panel boundaries (r0 a multiple of mr).
                None => ABlocks::one(
                    ARef::packed(scratch.a[r0 / mr * a_panel_stride(kc, mr)..].as_ptr(), mr),
                    kc,
                ),
            };
            let run = |r0: usize, rows: usize, p: usize, n_panels: usize| {
                let init = match (first_block, init) {
                    (true, Init::Zero) => TileInit::Zero,
                    (true, Init::Bias(bias)) => TileInit::Bias(bias[p * NR..].as_ptr()),
                    _ => TileInit::Load,
                };
                let a_ref = a_tile(r0);
                let b_panel = &b.data[p * b_stride + pc * NR..];
                // SAFETY: the tile's rows `ic + r0 ..+ rows` and columns `p·NR ..` lie inside
                // `c` (checked shapes, contiguous rows `ldc` apart).
                let c_tile = unsafe { c_ptr.add((ic + r0) * ldc + p * NR) };
                if p < full_panels {
                    // SAFETY: `n_panels` full panels inside `c` (callers below keep
                    // p + n_panels ≤ full_panels); `a_ref` reaches `rows` rows of `kc` values
                    // of A (packed, or inside the block's view); the packed panels of B hold
                    // kc·NR values each, b_stride apart; a bias row from p·NR holds
                    // n_panels·NR values.
                    unsafe {
                        microkernel::tile(
                            isa,
                            rows,
                            n_panels,
                            kc,
                            a_ref,
                            b_panel.as_ptr(),
                            b_stride,
                            c_tile,
                            ldc,
                            init,
                        )
                    };
                } else {
                    let cols = n - p * NR;
                    // SAFETY: only the `rows × cols` part inside `c` is read or written; A
                    // as above.
                    unsafe { edge_tile(isa, kc, a_ref, b_panel, c_tile, ldc, rows, cols, init) };
                }
            };
            let wide = |rows: usize| microkernel::panels_per_tile::<F>(isa, rows);
            // Tiles of many rows, one panel each: each panel of B (KC × NR, in cache) serves
            // every such tile in turn.
            for p in 0..panels {
                for (r0, rows) in tiles.clone().filter(|t| wide(t.1) == 1) {
                    run(r0, rows, p, 1);
                }
            }
            // Tiles of few rows: as many panels per tile as their few rows need.
            for (r0, rows) in tiles.clone().filter(|t| wide(t.1) > 1) {
                let mut p = 0;
                while p < panels {
                    // The widest tile that still fits in the full panels left (halving: every
                    // width from `wide` down has a kernel).
                    let mut n_panels = wide(rows);
                    while n_panels > 1 && p + n_panels > full_panels {
                        n_panels /= 2;
                    }
                    run(r0, rows, p, n_panels);
                    p += n_panels;
                }
            }
        }
    };
    // Rows of A that are contiguous are read where they are, in pieces of at most KC columns
    // of one block, two neighbouring pieces at a time when together they fit KC (a step's
    // [x_t | h_{t-1}] in one pass: the tile's sums then stay in registers from x_t to h_{t-1}
    // rather than passing through C, ~3% faster at the seed's and medium's steps on a Zen 4
    // core); otherwise (a transposed view) A is packed, KC columns at a time. Either way each
    // sum runs over k in order, passing through C between blocks of K exactly.
    if reads_in_place(a) {
        let mut col0 = 0;
        let mut pending: Option<(usize, Piece<'_, '_, F>)> = None;
        for block in a {
            for j0 in (0..block.ncols()).step_by(KC) {
                let piece = Piece {
                    block,
                    j0,
                    len: KC.min(block.ncols() - j0),
                };
                match pending.take() {
                    Some((pc, head)) if head.len + piece.len <= KC => {
                        block_of_k(pc, head.len + piece.len, Some([head, piece]));
                    }
                    Some((pc, head)) => {
                        block_of_k(pc, head.len, Some([head, head]));
                        pending = Some((col0 + j0, piece));
                    }
                    None => pending = Some((col0 + j0, piece)),
                }
            }
            col0 += block.ncols();
        }
        if let Some((pc, head)) = pending {
            block_of_k(pc, head.len, Some([head, head]));
        }
    } else {
        for pc in (0..k).step_by(KC) {
            block_of_k(pc, KC.min(k - pc), None);
        }
    }
}

/// Columns `j0 .. j0 + len` of one column block of `A`, read in place by [`gemm`].
#[derive(Clone, Copy)]
struct Piece<'v, 'a, F> {
    block: &'v ArrayView2<'a, F>,
    j0: usize,
    len: usize,
}

/// Whether [`gemm`] reads `A` (given as these column blocks) where it is: when every block's
/// rows are contiguous. Otherwise it packs `A`, block by block.
fn reads_in_place<F>(a: &[ArrayView2<'_, F>]) -> bool {
    a.iter()
        .all(|v| (v.strides()[1] == 1 || v.ncols() <= 1) && v.strides()[0] >= 0)
}

/// A tile that `c` holds only `rows × cols` of (`cols < NR`): computed in a full tile on the
/// stack.
///
/// # Safety
/// `c` points at `rows` rows of `cols` values, `ldc` apart; a bias address holds `cols` values.
#[allow(clippy::too_many_arguments)]
unsafe fn edge_tile<F: Real>(
    isa: Isa,
    kc: usize,
    a: ABlocks<F>,
    b_panel: &[F],
    c: *mut F,
    ldc: usize,
    rows: usize,
    cols: usize,
    init: TileInit<F>,
) {
    let mut tile = [F::zero(); MR_MAX * NR];
    for r in 0..rows {
        for j in 0..cols {
            // SAFETY: inside the rows × cols part (the caller's contract).
            tile[r * NR + j] = match init {
                TileInit::Zero => F::zero(),
                TileInit::Load => unsafe { *c.add(r * ldc + j) },
                TileInit::Bias(p) => unsafe { *p.add(j) },
            };
        }
    }
    // SAFETY: the stack tile holds MR_MAX ≥ rows full rows of NR values; one panel of B.
    unsafe {
        microkernel::tile(
            isa,
            rows,
            1,
            kc,
            a,
            b_panel.as_ptr(),
            0,
            tile.as_mut_ptr(),
            NR,
            TileInit::Load,
        )
    };
    for r in 0..rows {
        for j in 0..cols {
            // SAFETY: as above.
            unsafe { *c.add(r * ldc + j) = tile[r * NR + j] };
        }
    }
}

/// The row tiles of a block of `mc` rows, `(first row, rows)` in order, each at most `mr`
/// rows: `mr`-row panels and a shorter last one, or, where `even`, as few tiles as `mr` allows
/// with heights that differ by at most one.
fn row_tiles(mc: usize, mr: usize, even: bool) -> impl Iterator<Item = (usize, usize)> + Clone {
    let count = mc.div_ceil(mr);
    let (base, extra) = (mc / count.max(1), mc % count.max(1));
    (0..count).map(move |t| match even {
        true => (t * base + t.min(extra), base + usize::from(t < extra)),
        false => (t * mr, mr.min(mc - t * mr)),
    })
}

/// Values from one packed row panel of `A` to the next: `kc · mr` and 16 more (a 64-byte cache
/// line of `f32`), so that panels (often a multiple of 4 KiB long) do not all start in the same
/// L1 cache set; a transposed `A` is packed into all of them at once.
fn a_panel_stride(kc: usize, mr: usize) -> usize {
    kc * mr + 16
}

/// Packs rows `ic .. ic + mc`, columns `pc .. pc + kc` of the column blocks `a` into `out` as
/// row panels `[kc][mr]`, [`a_panel_stride`] apart, rows past `mc` zero.
fn pack_a<F: Real>(
    a: &[ArrayView2<'_, F>],
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    mr: usize,
    out: &mut Vec<F>,
) {
    let row_panels = mc.div_ceil(mr);
    // Every value is written below except the lanes past `mc` of the last panel: only those
    // are zeroed, rather than clearing the whole buffer for every block.
    let stride = a_panel_stride(kc, mr);
    out.resize(row_panels * stride, F::zero());
    let tail = mc % mr;
    if tail > 0 {
        let last = &mut out[(row_panels - 1) * stride..][..kc * mr];
        for lanes in last.chunks_exact_mut(mr) {
            lanes[tail..].fill(F::zero());
        }
    }
    let mut col0 = 0;
    for block in a {
        let (b0, b1) = (col0, col0 + block.ncols());
        col0 = b1;
        let (lo, hi) = (b0.max(pc), b1.min(pc + kc));
        if lo >= hi {
            continue;
        }
        let (rs, cs) = (block.strides()[0], block.strides()[1]);
        if rs == 1 && cs != 1 {
            // Columns contiguous (a transposed view, such as dgatesᵀ): each column is read once,
            // front to back, and dealt out to the row panels. (Walking one panel's few lanes
            // down all the columns instead strides across memory a column apart, and columns a
            // power of two apart collide in the L1 cache.)
            for kk in 0..hi - lo {
                // SAFETY: column lo + kk of the block from row ic; rows ic .. ic + mc lie inside
                // the view.
                let column = unsafe {
                    let first = block
                        .as_ptr()
                        .offset(ic as isize + (lo - b0 + kk) as isize * cs);
                    std::slice::from_raw_parts(first, mc)
                };
                for (q, lanes) in column.chunks(mr).enumerate() {
                    let at = q * stride + (lo - pc + kk) * mr;
                    copy_lanes(&mut out[at..at + lanes.len()], lanes);
                }
            }
            continue;
        }
        for (q, panel) in out.chunks_exact_mut(stride).enumerate() {
            let rows = mr.min(mc - q * mr);
            // Element (i, j) of the block sits at i·rs + j·cs from its first; every one read
            // below has i < block.nrows() (rows of this row panel, below ic + mc) and
            // j < block.ncols() (columns lo - b0 .. hi - b0).
            // SAFETY: that offset stays inside the view.
            let first = unsafe {
                block
                    .as_ptr()
                    .offset((ic + q * mr) as isize * rs + (lo - b0) as isize * cs)
            };
            let dst = &mut panel[(lo - pc) * mr..(hi - pc) * mr];
            if cs == 1 {
                // Rows contiguous: read along each row.
                for lane in 0..rows {
                    // SAFETY: row `lane` of this panel, columns lo..hi of the block.
                    let src = unsafe { first.offset(lane as isize * rs) };
                    for (kk, d) in dst.chunks_exact_mut(mr).enumerate() {
                        d[lane] = unsafe { *src.add(kk) };
                    }
                }
            } else {
                // Neither: read down each column.
                for (kk, d) in dst.chunks_exact_mut(mr).enumerate() {
                    // SAFETY: column lo + kk of the block, rows of this panel.
                    let src = unsafe { first.offset(kk as isize * cs) };
                    for (lane, v) in d[..rows].iter_mut().enumerate() {
                        *v = unsafe { *src.offset(lane as isize * rs) };
                    }
                }
            }
        }
    }
}

/// `dst = src` for the few lanes of a row panel: the usual lane counts are copied as constant
/// sizes, which compile to a vector move or two, not a call to `memcpy`.
#[inline(always)]
fn copy_lanes<F: Copy>(dst: &mut [F], src: &[F]) {
    match src.len() {
        12 => dst[..12].copy_from_slice(&src[..12]),
        8 => dst[..8].copy_from_slice(&src[..8]),
        6 => dst[..6].copy_from_slice(&src[..6]),
        4 => dst[..4].copy_from_slice(&src[..4]),
        _ => dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s),
    }
}

/// Above this many bytes of packed `B`, [`gemm_parallel`] splits the columns of `C` (whole
/// panels of `B`) among threads instead of its rows, when it reads `A` in place: each thread
/// then reads only its share of a `B` too large for one core's cache, instead of all of it. On
/// a 2-core AVX-512 machine with 2 MiB of L2 per core, the product `[1152, 512] · [512, 2048]`
/// (B32 I512 H512's input projection, a 4 MiB `W_ihᵀ`) ran at 283 GFLOP/s split by columns
/// against 255 by rows. An `A` that has to be packed (a transposed view) is split by rows
/// whatever the size of `B`, or every thread would pack all of it: the seed's weight gradients
/// `dgatesᵀ · [x | h | 1]`, `[512, 3584] · [3584, 157]`, took 3.1 ms split by columns against
/// 2.4 ms by rows on that machine.
const SPLIT_COLUMNS_ABOVE_BYTES: usize = 1 << 20;

/// [`gemm`] split across threads, each with its own scratch: by rows of `A` and `C` (`B`
/// shared), or, for a large `B` and an `A` read in place, by whole panels of `B` and the
/// columns of `C` under them (`A` shared). Every element is the same chain of multiply-adds
/// either way, so the results do not depend on the number of threads.
pub(crate) fn gemm_parallel<F: Real>(
    isa: Isa,
    a: &[ArrayView2<'_, F>],
    b: PackedRef<'_, F>,
    init: Init<'_, F>,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let rows = c.nrows();
    let chunk = chunk_rows(rows, b.k * b.n);
    if chunk >= rows {
        gemm(isa, a, b, init, c, &mut GemmScratch::default());
        return;
    }
    let chunks = rows.div_ceil(chunk);
    let panels = b.n.div_ceil(NR);
    if b.k * b.n * size_of::<F>() > SPLIT_COLUMNS_ABOVE_BYTES
        && panels >= 2 * chunks
        && reads_in_place(a)
    {
        let per_chunk = panels.div_ceil(chunks);
        let parts: Vec<_> = c
            .axis_chunks_iter_mut(Axis(1), per_chunk * NR)
            .enumerate()
            .collect();
        parts.into_par_iter().for_each(|(i, mut c)| {
            let col0 = i * per_chunk * NR;
            let init = match init {
                Init::Bias(bias) => Init::Bias(&bias[col0..col0 + c.ncols()]),
                other => other,
            };
            let b = b.panels(i * per_chunk, per_chunk);
            gemm(isa, a, b, init, &mut c, &mut GemmScratch::default());
        });
        return;
    }
    let starts: Vec<usize> = (0..rows).step_by(chunk).collect();
    c.axis_chunks_iter_mut(Axis(0), chunk)
        .zip(starts)
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|(mut c, r0)| {
            let r1 = r0 + c.nrows();
            let a: Vec<ArrayView2<'_, F>> =
                a.iter().map(|v| v.slice(ndarray::s![r0..r1, ..])).collect();
            gemm(isa, &a, b, init, &mut c, &mut GemmScratch::default());
        });
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, s};

    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(r, c)| {
            let h = (r as u32 * 7919 + c as u32 * 104_729 + seed * 31).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
    }

    /// The product in f64, for comparison.
    fn reference(a: &Array2<f32>, b: &Array2<f32>, init: &Array2<f32>) -> Array2<f64> {
        let a = a.mapv(f64::from);
        let b = b.mapv(f64::from);
        a.dot(&b) + init.mapv(f64::from)
    }

    /// Worst |got - want| over `C`, with its index.
    fn worst(got: &Array2<f32>, want: &Array2<f64>) -> (f64, (usize, usize)) {
        let mut w = (0.0, (0, 0));
        for ((i, &g), &r) in got.indexed_iter().zip(want.iter()) {
            let d = (g as f64 - r).abs();
            if d > w.0 {
                w = (d, i);
            }
        }
        w
    }

    /// `A · B` `[M, N]` from zero, `A` given as column blocks.
    fn product(isa: Isa, a: &[ArrayView2<'_, f32>], b: &PackedB<f32>) -> Array2<f32> {
        let mut c = Array2::zeros((a[0].nrows(), b.n()));
        gemm(
            isa,
            a,
            b.all(),
            Init::Zero,
            &mut c.view_mut(),
            &mut GemmScratch::default(),
        );
        c
    }

    #[test]
    fn products_off_the_tile_grid_match_a_float64_reference_on_every_path() {
        // Sizes below, at and above the tiles (NR = 32, MR = 4, 6, 12) and the blocks (KC = 512,
        // MC = 192), so every edge path runs (tails of 1 to 11 rows), and rows read in place
        // cut into even tiles (16 as 8 + 8, 25 as 9 + 8 + 8 with MR = 12).
        for (m, k, n) in [
            (1, 1, 1),
            (5, 7, 33),
            (6, 64, 96),
            (9, 20, 33),
            (10, 40, 40),
            (15, 9, 65),
            (8, 512, 32),
            (12, 30, 64),
            (16, 30, 64),
            (25, 17, 40),
            (193, 300, 70),
            (17, 513, 64),
        ] {
            let a = matrix(m, k, 1);
            let b = matrix(k, n, 2);
            let bias = Array1::from_iter(matrix(1, n, 3).iter().copied());
            let c0 = matrix(m, n, 4);
            let packed = PackedB::of(b.view());
            for isa in Isa::supported() {
                for (name, init) in [("zero", 0), ("accumulate", 1), ("bias", 2)] {
                    let mut c = c0.clone();
                    let want_init = match init {
                        0 => Array2::zeros((m, n)),
                        1 => c0.clone(),
                        _ => Array2::from_shape_fn((m, n), |(_, j)| bias[j]),
                    };
                    let init = match init {
                        0 => Init::Zero,
                        1 => Init::Accumulate,
                        _ => Init::Bias(bias.as_slice().unwrap()),
                    };
                    gemm(
                        isa,
                        &[a.view()],
                        packed.all(),
                        init,
                        &mut c.view_mut(),
                        &mut GemmScratch::default(),
                    );
                    let (err, at) = worst(&c, &reference(&a, &b, &want_init));
                    // Each element is a sum of k products of values below 0.5 in magnitude,
                    // rounded at each of its k steps: k · 2^-24 · 0.25 bounds the error.
                    let tol = k as f64 * 0.25 * f32::EPSILON as f64 + 1e-6;
                    assert!(
                        err <= tol,
                        "{isa} {name} {m}x{k}x{n}: error {err:e} at {at:?} > {tol:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_fma_path_builds_each_element_as_one_chain_of_fused_multiply_adds_in_order() {
        // The AVX-512, AVX2 and NEON kernels against that chain written out in plain Rust
        // (`f32::mul_add`, from the bias, k = 0, 1, ... in order): the same bits, so results
        // are the same on every processor with FMA. K past a block (KC = 512), rows off every
        // path's MR and 1-2 rows (the multi-panel tiles), a partial panel; A row-major (read
        // in place) and transposed (packed).
        let mut fma_paths = 0;
        for (m, k, n) in [(1, 40, 100), (2, 600, 70), (13, 35, 33), (27, 530, 64)] {
            let a_rows = matrix(m, k, 21);
            let a_t = matrix(k, m, 21);
            let b = matrix(k, n, 22);
            let bias = matrix(1, n, 23).into_raw_vec_and_offset().0;
            let packed = PackedB::of(b.view());
            for (layout, a) in [("row-major", a_rows.view()), ("transposed", a_t.t())] {
                let want = Array2::from_shape_fn((m, n), |(i, j)| {
                    (0..k).fold(bias[j], |s, kk| a[[i, kk]].mul_add(b[[kk, j]], s))
                });
                for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Scalar) {
                    fma_paths += 1;
                    let mut c = Array2::zeros((m, n));
                    gemm(
                        isa,
                        &[a],
                        packed.all(),
                        Init::Bias(&bias),
                        &mut c.view_mut(),
                        &mut GemmScratch::default(),
                    );
                    let (d, i) = worst(&c, &want.mapv(f64::from));
                    assert!(
                        d == 0.0,
                        "{isa} {layout} {m}x{k}x{n}: differs by {d} at {i:?}"
                    );
                }
            }
        }
        // Every aarch64 processor has NEON; x86-64 ones since 2013 have AVX2.
        if cfg!(target_arch = "aarch64") {
            assert!(fma_paths > 0, "no FMA path ran");
        }
    }

    #[test]
    fn row_tiles_cover_the_block_once_with_at_most_mr_rows_each() {
        for mc in 1..=MC {
            for mr in [4, 6, 12] {
                for even in [false, true] {
                    let tiles: Vec<_> = row_tiles(mc, mr, even).collect();
                    let mut next = 0;
                    for &(r0, rows) in &tiles {
                        assert!(
                            r0 == next && (1..=mr).contains(&rows),
                            "mc {mc} mr {mr} even {even}: {tiles:?}"
                        );
                        next += rows;
                    }
                    assert_eq!(next, mc, "mc {mc} mr {mr} even {even}: {tiles:?}");
                    assert_eq!(tiles.len(), mc.div_ceil(mr));
                    let (lo, hi) = tiles
                        .iter()
                        .fold((mr, 0), |(lo, hi), t| (lo.min(t.1), hi.max(t.1)));
                    if even {
                        assert!(hi - lo <= 1, "uneven: {tiles:?}");
                    } else {
                        assert!(tiles[..tiles.len() - 1].iter().all(|t| t.1 == mr));
                    }
                }
            }
        }
    }

    #[test]
    fn column_blocks_of_a_and_blocks_of_b_act_as_their_concatenation() {
        let (m, k1, k2, n) = (11, 20, 37, 45);
        let a1 = matrix(m, k1, 5);
        let a2t = matrix(k2, m, 6); // A's second block is read transposed
        let b = matrix(k1 + k2, n, 7);
        let mut a = Array2::zeros((m, k1 + k2));
        a.slice_mut(s![.., ..k1]).assign(&a1);
        a.slice_mut(s![.., k1..]).assign(&a2t.t());
        // Blocks of B: contiguous at the first panel, strided, and contiguous from a column
        // inside a panel (so its rows cross a panel's edge).
        let b_right = b.slice(s![k1.., 20..]).to_owned();
        let mut stacked = PackedB::default();
        stacked.pack(
            k1 + k2,
            n,
            &[
                (0, 0, b.slice(s![..k1, ..])),
                (k1, 0, b.slice(s![k1.., ..20])),
                (k1, 20, b_right.view()),
            ],
        );
        for isa in Isa::supported() {
            let whole = product(isa, &[a.view()], &PackedB::of(b.view()));
            let parts = product(isa, &[a1.view(), a2t.t()], &stacked);
            assert_eq!(whole, parts, "{isa}");
        }
    }

    #[test]
    fn packed_panels_start_on_a_cache_line_whatever_the_allocation() {
        // Small and large matrices (a large one comes from the system allocator's own pages,
        // 16 bytes past a boundary), packed afresh and repacked into the same allocation with
        // another shape; f64 too, 8 to a line.
        let mut packed = PackedB::<f32>::default();
        for (k, n) in [(1, 1), (28, 512), (512, 2048), (156, 512), (3, 40)] {
            let b = matrix(k, n, 3);
            packed.pack(k, n, &[(0, 0, b.view())]);
            let at = packed.all().data.as_ptr() as usize;
            assert_eq!(at % CACHE_LINE, 0, "[{k}, {n}]: panels start at {at:#x}");
            assert_eq!(
                packed.all().data[..n.min(NR)],
                b.row(0).to_vec()[..n.min(NR)]
            );
        }
        let b = Array2::<f64>::from_shape_fn((300, 700), |(i, j)| (i * 700 + j) as f64);
        let packed = PackedB::of(b.view());
        let at = packed.all().data.as_ptr() as usize;
        assert_eq!(
            at % CACHE_LINE,
            0,
            "f64 [300, 700]: panels start at {at:#x}"
        );
        assert_eq!(packed.rows(299, 1).data[..NR], b.row(299).to_vec()[..NR]);
    }

    #[test]
    fn a_block_of_rows_and_panels_of_a_packed_b_multiplies_as_that_block_packed_alone() {
        // Rows 40.. of a [600, 200] B (past one KC block, not on a panel row boundary of its
        // own), then panels 2..5 (three whole panels) and 4.. (the last, partial panel); one,
        // two and nine rows of A, so the 1-, 2- and 4-panel tiles all run.
        let b = matrix(600, 200, 13);
        let packed = PackedB::of(b.view());
        let (k0, k) = (40, 560);
        for m in [1, 2, 9] {
            let a = matrix(m, k, 14);
            for (p0, panels) in [(2, 3), (4, 4), (0, 7)] {
                let (c0, c1) = (p0 * NR, ((p0 + panels) * NR).min(200));
                let alone = PackedB::of(b.slice(s![k0..k0 + k, c0..c1]));
                for isa in Isa::supported() {
                    let want = product(isa, &[a.view()], &alone);
                    let mut got = Array2::zeros((m, c1 - c0));
                    gemm(
                        isa,
                        &[a.view()],
                        packed.rows(k0, k).panels(p0, panels),
                        Init::Zero,
                        &mut got.view_mut(),
                        &mut GemmScratch::default(),
                    );
                    let (d, i) = worst(&got, &want.mapv(f64::from));
                    assert!(
                        d == 0.0,
                        "{isa}, {m} rows, panels {p0}+{panels}: {d} at {i:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_packed_or_read_in_place_in_any_blocks_gives_the_same_bits() {
        // K and M past a block (KC = 512, MC = 192), the second column block starting inside
        // the second block of K, and a tail of rows on every path's MR.
        let (m, k1, k2, n) = (203, 600, 333, 40);
        let at = matrix(k1 + k2, m, 11); // A = atᵀ, read transposed
        // A row-major copy (to_owned would keep the transposed layout).
        let a = at.t().as_standard_layout().into_owned();
        assert_eq!(a.strides(), &[(k1 + k2) as isize, 1]);
        let b = matrix(k1 + k2, n, 12);
        let packed = PackedB::of(b.view());
        for isa in Isa::supported() {
            let want = product(isa, &[a.view()], &packed).mapv(f64::from);
            let (top, bottom) = (at.slice(s![..k1, ..]), at.slice(s![k1.., ..]));
            let got = product(isa, &[top.t(), bottom.t()], &packed);
            let (d, i) = worst(&got, &want);
            assert!(d == 0.0, "{isa}: differs by {d} at {i:?}");
            // The same A as two row-major blocks, read in place block by block.
            let split = product(
                isa,
                &[a.slice(s![.., ..k1]), a.slice(s![.., k1..])],
                &packed,
            );
            let (d, i) = worst(&split, &want);
            assert!(
                d == 0.0,
                "{isa}, two blocks in place: differs by {d} at {i:?}"
            );
        }
    }

    #[test]
    fn a_step_of_two_blocks_read_in_one_pass_gives_the_bits_of_one_block() {
        // A step's [x_t | h_{t-1}]: two row-major blocks that together fit one block of K, so
        // each tile runs over both in one pass. Rows past every path's MR, a partial last
        // panel, a bias row; against the same A as one block.
        let (m, k1, k2, n) = (29, 28, 128, 70);
        let a = matrix(m, k1 + k2, 13);
        let (x, h) = (a.slice(s![.., ..k1]), a.slice(s![.., k1..]));
        let b = matrix(k1 + k2, n, 14);
        let bias = matrix(1, n, 15).into_shape_with_order(n).unwrap();
        let want = reference(&a, &b, &Array2::from_shape_fn((m, n), |(_, j)| bias[j]));
        let packed = PackedB::of(b.view());
        for isa in Isa::supported() {
            let run = |blocks: &[ArrayView2<'_, f32>]| {
                let mut c = Array2::zeros((m, n));
                let init = Init::Bias(bias.as_slice().unwrap());
                let mut scratch = GemmScratch::default();
                gemm(
                    isa,
                    blocks,
                    packed.all(),
                    init,
                    &mut c.view_mut(),
                    &mut scratch,
                );
                c
            };
            let (one, two) = (run(&[a.view()]), run(&[x, h]));
            let (d, i) = worst(&two, &one.mapv(f64::from));
            assert!(d == 0.0, "{isa}: differs by {d} at {i:?}");
            // And the product itself is right (f32 sums of 156 terms of |a·b| ≤ 0.25).
            let (d, i) = worst(&two, &want);
            assert!(d < 1e-4, "{isa}: off the f64 product by {d} at {i:?}");
        }
    }

    #[test]
    fn the_fma_paths_give_the_same_bits_and_threads_change_nothing() {
        same_bits_on_every_isa_and_thread_count(300, 600, 100, false, false);
    }

    #[test]
    fn a_product_split_by_columns_gives_the_same_bits_as_one_thread() {
        // B [600, 500] is 1.2 MB, above SPLIT_COLUMNS_ABOVE_BYTES: 16 panels (the last one
        // partial) shared by 2 or 3 threads, each with its slice of the bias.
        assert!(600 * 500 * size_of::<f32>() > SPLIT_COLUMNS_ABOVE_BYTES);
        same_bits_on_every_isa_and_thread_count(70, 600, 500, true, false);
    }

    #[test]
    fn a_packed_a_against_a_large_b_gives_the_same_bits_as_one_thread() {
        // A transposed A is packed, so even above SPLIT_COLUMNS_ABOVE_BYTES the threads take
        // rows (each packing its own), as for the weight gradients `dgatesᵀ · [x | h | 1]`.
        same_bits_on_every_isa_and_thread_count(70, 600, 500, true, true);
    }

    /// `gemm_parallel` on `[m, k] · [k, n]` (accumulating, or from a bias row; `A` row-major or
    /// a transposed view) gives the same bits on 1, 2 and 3 threads, and the same bits on every
    /// FMA instruction set.
    fn same_bits_on_every_isa_and_thread_count(
        m: usize,
        k: usize,
        n: usize,
        bias: bool,
        transposed: bool,
    ) {
        let a_t = matrix(k, m, 8);
        let a_rows = matrix(m, k, 8);
        let a = if transposed { a_t.t() } else { a_rows.view() };
        let packed = PackedB::of(matrix(k, n, 9).view());
        let bias_row = matrix(1, n, 11).into_raw_vec_and_offset().0;
        let init = if bias {
            Init::Bias(&bias_row)
        } else {
            Init::Accumulate
        };
        let run = |isa, threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = matrix(m, n, 10);
            pool.install(|| gemm_parallel(isa, &[a], packed.all(), init, &mut c.view_mut()));
            c
        };
        let mut fma_result: Option<(Isa, Array2<f32>)> = None;
        for isa in Isa::supported() {
            let one = run(isa, 1);
            for threads in [2, 3] {
                assert_eq!(run(isa, threads), one, "{isa}: {threads} threads against 1");
            }
            if isa == Isa::Scalar {
                continue;
            }
            match &fma_result {
                None => fma_result = Some((isa, one)),
                Some((first, bits)) => assert_eq!(&one, bits, "{isa} against {first}"),
            }
        }
    }
}
