//! Spreading the CPU path over cores without changing its results.
//!
//! Two kinds of work split cleanly: rows of a GEMM's output (each element is still one dot
//! product in the same order) and batch rows of the recurrence (the rows never interact). Both
//! give bit-identical results for any number of threads. (A batch too small to split by rows
//! splits each step by units instead, waiting once per step: `steps_by_units`.)

/// Below this many multiply-adds per chunk, a thread costs more than it saves.
const MIN_WORK_PER_CHUNK: usize = 1 << 20;

/// Rows per chunk when splitting `rows` rows that cost `work_per_row` multiply-adds each.
pub(crate) fn chunk_rows(rows: usize, work_per_row: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let by_work = (rows * work_per_row.max(1)) / MIN_WORK_PER_CHUNK;
    let chunks = threads.min(by_work).max(1);
    rows.div_ceil(chunks).max(1)
}
