//! The steps of a batch too small to split by rows (or of a moderate batch and a `W_hh` larger
//! than a core's cache), shared by two threads by hidden units.
//!
//! With one sequence (streaming) a step is a matrix-vector product, `h_{t-1} · W_hhᵀ`
//! `[1, H] · [H, 4H]`, that reads all of `W_hh` for one multiply-add per value: it runs at the
//! speed one core reads `W_hh` from its cache. Here two threads each take half of the units
//! `u`: the four gate columns `i_u, f_u, g_u, o_u` of those units, their nonlinearities and
//! their new `c_u`, `h_u`:
//!
//! ```text
//! a[:, G·H + u] += h_{t-1} · W_hhᵀ[:, G·H + u]      G = i, f, g, o;  u in the thread's half
//! c_t[:, u] = f ⊙ c_{t-1}[:, u] + i ⊙ g           h_t[:, u] = o ⊙ tanh(c_t[:, u])
//! ```
//!
//! so each reads half of `W_hh`, which stays in its own core's cache. The next step needs the
//! whole `h_t`, so a step waits until both halves of the one before it are done.
//!
//! The halves are handed out as tickets in order (step `j`'s halves are tickets `2j` and
//! `2j + 1`), so whichever thread is free takes the next one; if the second thread never starts
//! (a busy pool), the first takes every ticket. A half is computed by the same kernels whoever
//! takes it, and each element is the same chain of multiply-adds as in the unsplit step, so the
//! bits depend neither on the threads nor on the split.

use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayView2, ArrayViewMut2, ArrayViewMut3, ShapeBuilder};

use super::blocked_gemm::{GemmScratch, Init, PackedRef, gemm};
use super::cache::l2_bytes;
use super::isa::Isa;
use super::lstm_forward_step::lstm_forward_step_units;
use super::microkernel::NR;
use crate::real::Real;

/// Batches of at most this many rows split their steps by units (larger ones split by rows,
/// unless [`splits_large_w_hh`]).
const SPLIT_UP_TO_BATCH: usize = 2;

/// Batches of up to this many rows split their steps by units too when half of `W_hh` fits a
/// core's L2 cache and the whole does not ([`splits_large_w_hh`]). Split by rows, each core
/// reads all of `W_hh` at every step, from the shared L3; split by units, each reads half, from
/// its own L2, and every row of its tiles uses what it reads, at the cost of passing half of
/// `h_t` between the cores at every step.
///
/// One layer of I512 H512 (4 MiB of `W_hh`): on an AVX-512 Xeon with 2 MiB of L2 per core,
/// alternating runs, split by units was 3-6% faster in the forward and 5-10% in
/// forward+backward at B16 and B32, 5% slower in the forward at B64 and B128, and no different
/// at B32 H384 (2.3 MiB). On a Zen 4 EPYC with 1 MiB of L2, where neither half fits, split by
/// rows was 2-3% faster at B32 (best of 30 forwards, three alternating runs: 32.5-32.7 ms
/// against 33.3-33.6).
const SPLIT_LARGE_W_HH_UP_TO_BATCH: usize = 32;

/// Whether a `W_hh` of `bytes` is split by units for batches up to
/// [`SPLIT_LARGE_W_HH_UP_TO_BATCH`]: half of it fits a core's L2 cache, the whole does not.
fn splits_large_w_hh(bytes: usize) -> bool {
    halves_fit_but_not_whole(bytes, l2_bytes())
}

/// Whether half of `bytes` fits in `l2` bytes of cache and the whole does not.
fn halves_fit_but_not_whole(bytes: usize, l2: usize) -> bool {
    bytes > l2 && bytes / 2 <= l2
}

/// Below this many multiply-adds in a window, starting the second thread costs more than it
/// saves.
const MIN_WORK: usize = 1 << 20;

/// Spins before a waiting thread starts yielding its core.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// Whether [`layer_steps_by_units`] should run `steps` steps of a batch of `batch` rows and
/// `hidden` units of `F`: at least two threads, a small batch (or a moderate one and a `W_hh`
/// whose halves fit the cores' caches), and units that split into two halves of whole panels
/// of `W_hhᵀ`.
pub(super) fn splits_by_units<F>(batch: usize, hidden: usize, steps: usize) -> bool {
    let w_hh_bytes = 4 * hidden * hidden * size_of::<F>();
    let up_to_batch = if splits_large_w_hh(w_hh_bytes) {
        SPLIT_LARGE_W_HH_UP_TO_BATCH
    } else {
        SPLIT_UP_TO_BATCH
    };
    rayon::current_num_threads() >= 2
        && batch <= up_to_batch
        && hidden.is_multiple_of(NR)
        && hidden >= 2 * NR
        && steps * batch * 4 * hidden * hidden >= MIN_WORK
}

/// The states and gates the two threads share, as raw pointers: each half writes only its own
/// units' columns, and reads `h_{t-1}` only after both halves of step `t - 1` are done.
struct Shared<F> {
    h: *mut F,
    c: *mut F,
    gates: *mut F,
    batch: usize,
    hidden: usize,
}

// SAFETY: the threads touch disjoint elements, or the same ones ordered by the `done` counter
// (release on finishing a half, acquire before starting one), see `layer_steps_by_units`.
unsafe impl<F: Send> Sync for Shared<F> {}

/// Runs `steps` steps of one layer for a small batch, split between two threads by units (see
/// the module docs).
///
/// * `w_hh`: `W_hhᵀ` `[H, 4H]`, packed.
/// * `h`, `c` `[steps + 1.., B, H]` time-major: slot 0 holds the state before the first step,
///   slot `j + 1` receives the state after step `j`.
/// * `gates` `[steps.., B, 4H]`: step `j`'s projected inputs (bias included) in slot `j`,
///   replaced by its gate activations.
///
/// Panics when the shapes disagree (the caller, in this crate, checked them) or when
/// [`splits_by_units`] does not hold for them.
pub(super) fn layer_steps_by_units<F: Real>(
    isa: Isa,
    w_hh: PackedRef<'_, F>,
    mut h: ArrayViewMut3<'_, F>,
    mut c: ArrayViewMut3<'_, F>,
    mut gates: ArrayViewMut3<'_, F>,
    steps: usize,
) {
    let (slots, batch, hidden) = h.dim();
    assert!(
        slots > steps
            && c.dim() == h.dim()
            && gates.dim().0 >= steps
            && gates.dim().1 == batch
            && gates.dim().2 == 4 * hidden
            && h.is_standard_layout()
            && c.is_standard_layout()
            && gates.is_standard_layout()
            && hidden.is_multiple_of(NR)
            && hidden >= 2 * NR,
        "steps split by units: shapes disagree"
    );
    let shared = Shared {
        h: h.as_mut_ptr(),
        c: c.as_mut_ptr(),
        gates: gates.as_mut_ptr(),
        batch,
        hidden,
    };
    // Whole panels on each side of the split.
    let middle = hidden / NR / 2 * NR;
    let halves = [(0, middle), (middle, hidden)];
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let work = || {
        let mut scratch = GemmScratch::default();
        loop {
            let ticket = next.fetch_add(1, Ordering::Relaxed);
            if ticket >= 2 * steps {
                break;
            }
            let step = ticket / 2;
            // Both halves of the step before are done: only tickets of earlier steps can
            // bring `done` to 2·step, since a ticket of step `j` finishes only after `done`
            // reached 2·j.
            wait_until(&done, 2 * step);
            let (u0, u1) = halves[ticket % 2];
            // SAFETY: this half's units of step `step` belong to this ticket alone, and the
            // states it reads were completed before `done` reached 2·step.
            unsafe { half_step(isa, w_hh, &shared, step, u0, u1, &mut scratch) };
            done.fetch_add(1, Ordering::Release);
        }
    };
    rayon::scope(|s| {
        s.spawn(|_| work());
        work();
    });
}

/// Waits until `done` holds at least `target`, spinning, then yielding the core.
fn wait_until(done: &AtomicUsize, target: usize) {
    let mut spins = 0;
    while done.load(Ordering::Acquire) < target {
        if spins < SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// Units `u0 .. u1` of step `j` for every row: their four gate columns of the product with
/// `h_{j}` (slot `j`), the nonlinearities and the new `c`, `h` in slot `j + 1`.
///
/// # Safety
/// The pointers of `s` cover the shapes of [`layer_steps_by_units`]; nothing else reads or
/// writes these units of step `j` meanwhile, and nothing writes slot `j` of `h`, `c`.
unsafe fn half_step<F: Real>(
    isa: Isa,
    w_hh: PackedRef<'_, F>,
    s: &Shared<F>,
    j: usize,
    u0: usize,
    u1: usize,
    scratch: &mut GemmScratch<F>,
) {
    let (batch, hidden) = (s.batch, s.hidden);
    let n = u1 - u0;
    let state = batch * hidden;
    // SAFETY (every block below): offsets inside the arrays of the caller's contract.
    let h_prev = unsafe { ArrayView2::from_shape_ptr((batch, hidden), s.h.add(j * state)) };
    let gates_j = unsafe { s.gates.add(j * 4 * state) };
    for g in 0..4 {
        let col = g * hidden + u0;
        let mut out = unsafe {
            ArrayViewMut2::from_shape_ptr((batch, n).strides((4 * hidden, 1)), gates_j.add(col))
        };
        gemm(
            isa,
            &[h_prev],
            w_hh.panels(col / NR, n / NR),
            Init::Accumulate,
            &mut out,
            scratch,
        );
    }
    for b in 0..batch {
        let row = unsafe { gates_j.add(b * 4 * hidden + u0) };
        let [ai, af, ag, ao] = std::array::from_fn(|g| unsafe {
            std::slice::from_raw_parts_mut(row.add(g * hidden), n)
        });
        let at = b * hidden + u0;
        let c_prev = unsafe { std::slice::from_raw_parts(s.c.add(j * state + at), n) };
        let c_next = unsafe { std::slice::from_raw_parts_mut(s.c.add((j + 1) * state + at), n) };
        let h_next = unsafe { std::slice::from_raw_parts_mut(s.h.add((j + 1) * state + at), n) };
        lstm_forward_step_units(isa, ai, af, ag, ao, c_prev, c_next, h_next);
    }
}

#[cfg(test)]
mod tests {
    use super::halves_fit_but_not_whole;

    #[test]
    fn a_large_w_hh_splits_by_units_only_where_its_halves_fit_the_l2_cache() {
        const MIB: usize = 1 << 20;
        // The large size's W_hh (I512 H512, 4 MiB): halves fit 2 MiB of L2, not 1 MiB.
        assert!(halves_fit_but_not_whole(4 * MIB, 2 * MIB));
        assert!(!halves_fit_but_not_whole(4 * MIB, MIB));
        // H384 (2.25 MiB) on 2 MiB: halves fit, the whole does not.
        assert!(halves_fit_but_not_whole(9 * MIB / 4, 2 * MIB));
        // The medium size's W_hh (1 MiB) fits 2 MiB whole: no split.
        assert!(!halves_fit_but_not_whole(MIB, 2 * MIB));
    }
}
