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
