//! Column sums of a row-major matrix written to two places, twin of `shaders/column_sum.wgsl`:
//!
//! ```text
//! out[out_off0 + n] = out[out_off1 + n] = Σ_r input[in_off + r · cols + n]     r < rows, n < cols
//! ```
//!
//! The LSTM's bias gradients: `db_ih = db_hh = Σ` over all `T·B` rows of `dgates`.
//!
//! Each column's rows are added in the kernel's fixed order: four interleaved partial sums
//! `x`, `y`, `z`, `w` (`x` takes rows 0, 4, 8, …, `y` rows 1, 5, 9, …, up to the last multiple
//! of four), the rows left over added to `x` in order, then `(x + y) + (z + w)`. WGSL rounds
//! every `f32` addition correctly, so the kernel and this twin give the same bits (short of
//! subnormals, which a GPU may flush to zero).

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::shape::check_column_sum;

/// Sums the `cols` columns of the `[rows, cols]` row-major matrix at element `in_off` of
/// `input` into `out[out_offsets[0] + n]` and `out[out_offsets[1] + n]` for `n < cols`, leaving
/// the rest of `out` as it is.
///
/// The two output ranges may be the same range or disjoint ones; ranges that overlap only in
/// part are rejected ([`Error::Config`]), as the kernel's result for them would depend on which
/// invocation writes last. Fails with [`Error::Shape`] naming the buffer when `input` or `out`
/// is too short, before writing anything.
pub fn column_sum(
    input: &[f32],
    in_off: usize,
    rows: usize,
    cols: usize,
    out: &mut [f32],
    out_offsets: [usize; 2],
) -> Result<()> {
    check_column_sum(input.len(), in_off, rows, cols, out.len(), out_offsets)?;
    let [off0, off1] = out_offsets;
    for n in 0..cols {
        let at = |r: usize| input[in_off + r * cols + n];
        let (mut x, mut y, mut z, mut w) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
        let mut r = 0;
        while r + 4 <= rows {
            x += at(r);
            y += at(r + 1);
            z += at(r + 2);
            w += at(r + 3);
            r += 4;
        }
        while r < rows {
            x += at(r);
            r += 1;
        }
        let total = (x + y) + (z + w);
        out[off0 + n] = total;
        out[off1 + n] = total;
    }
    Ok(())
}
