//! Shape checks that name the tensor they reject.

use crate::error::{Error, Result};

/// Returns `Ok` when `actual == expected`, else [`Error::Shape`] naming `tensor`.
pub fn expect_shape(tensor: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            tensor: tensor.to_string(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        })
    }
}

/// Returns [`Error::ZeroSize`] when any of the named dimensions of `shape` is zero.
pub fn expect_nonzero(tensor: &str, shape: &[usize], dims: &[&'static str]) -> Result<()> {
    for (&d, &name) in shape.iter().zip(dims) {
        if d == 0 {
            return Err(Error::ZeroSize {
                tensor: tensor.to_string(),
                dim: name,
                shape: shape.to_vec(),
            });
        }
    }
    Ok(())
}

/// [`Error::Shape`] naming `tensor` when a buffer of `len` elements is shorter than the `need`
/// an operation reads or writes.
pub(crate) fn expect_len(tensor: &str, need: usize, len: usize) -> Result<()> {
    if need > len {
        return Err(Error::Shape {
            tensor: tensor.into(),
            expected: vec![need],
            actual: vec![len],
        });
    }
    Ok(())
}

/// The bounds and overlap checks of a column sum (`shaders/column_sum.wgsl` and its twin
/// `cpu::column_sum`): `input` holds the `[rows, cols]` matrix at `in_off`, `out` both
/// `cols`-long output ranges, which are equal or disjoint.
pub(crate) fn check_column_sum(
    input_len: usize,
    in_off: usize,
    rows: usize,
    cols: usize,
    out_len: usize,
    [off0, off1]: [usize; 2],
) -> Result<()> {
    let overflow = || Error::config("column sum", "offsets and sizes overflow usize");
    // Elements each buffer must hold (none when nothing is read or written).
    let input_need = match rows.checked_mul(cols).ok_or_else(overflow)? {
        0 => 0,
        n => n.checked_add(in_off).ok_or_else(overflow)?,
    };
    let out_need = match cols {
        0 => 0,
        _ => off0.max(off1).checked_add(cols).ok_or_else(overflow)?,
    };
    expect_len("column sum input", input_need, input_len)?;
    expect_len("column sum output", out_need, out_len)?;
    if off0 != off1 && off0.abs_diff(off1) < cols {
        return Err(Error::config(
            "column sum output",
            format!("ranges at {off0} and {off1} of {cols} elements overlap in part"),
        ));
    }
    Ok(())
}
