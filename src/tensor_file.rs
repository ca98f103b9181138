//! safetensors files: reading named tensors with typed errors, writing them atomically.
//!
//! A file is written to a temporary name beside its destination, flushed to disk and then renamed
//! over the destination, so a crash leaves either the old file or the new one, never half of one.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::real::Real;

/// Reads the whole file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

/// Parses a safetensors buffer.
pub(crate) fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    Ok(SafeTensors::deserialize(bytes)?)
}

/// The metadata map of a safetensors buffer (empty when there is none).
pub(crate) fn metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = SafeTensors::read_metadata(bytes)?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Reads tensor `name` as `F`, converting from `f32` or `f64` storage; any other dtype is an
/// [`Error::Dtype`], a missing key an [`Error::MissingTensor`]. When `expected` is given the shape
/// must match it exactly ([`Error::Shape`]).
pub(crate) fn read_tensor<F: Real>(
    st: &SafeTensors<'_>,
    name: &str,
    expected: Option<&[usize]>,
) -> Result<ArrayD<F>> {
    let view = st.tensor(name).map_err(|e| match e {
        safetensors::SafeTensorError::TensorNotFound(_) => Error::MissingTensor {
            tensor: name.to_string(),
        },
        other => Error::Safetensors(other),
    })?;
    let shape = view.shape().to_vec();
    if let Some(expected) = expected {
        crate::shape::expect_shape(name, &shape, expected)?;
    }
    let values: Vec<F> = match view.dtype() {
        Dtype::F32 => f32::from_le_bytes_slice(view.data())
            .into_iter()
            .map(|v| F::from_f64_lossy(v as f64))
            .collect(),
        Dtype::F64 => f64::from_le_bytes_slice(view.data())
            .into_iter()
            .map(F::from_f64_lossy)
            .collect(),
        other => {
            return Err(Error::Dtype {
                tensor: name.to_string(),
                expected: "F32 or F64",
                actual: format!("{other:?}"),
            });
        }
    };
    // safetensors has already checked that the byte length matches the shape.
    let array = ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| Error::Shape {
        tensor: name.to_string(),
        expected: shape.clone(),
        actual: vec![view.data().len() / (F::DTYPE.bitsize() / 8)],
    })?;
    expect_finite(name, array.view())?;
    Ok(array)
}

/// [`Error::NonFinite`] naming `name` and the first NaN or infinity of `array`, if any.
pub(crate) fn expect_finite<F: Real, D: ndarray::Dimension>(
    name: &str,
    array: ndarray::ArrayView<'_, F, D>,
) -> Result<()> {
    let Some(flat) = array.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    // The row-major index of the flat position (iteration is in logical, row-major order).
    let mut index = vec![0; array.ndim()];
    let mut rest = flat;
    for (i, &n) in array.shape().iter().enumerate().rev() {
        index[i] = rest % n;
        rest /= n;
    }
    let value = array
        .iter()
        .nth(flat)
        .map_or(f64::NAN, |v| v.to_f64_exact());
    Err(Error::NonFinite {
        tensor: name.to_string(),
        index,
        value,
    })
}

/// Collects tensors and metadata, then writes them as one safetensors file.
#[derive(Default)]
pub(crate) struct TensorWriter {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    metadata: HashMap<String, String>,
    /// The first tensor added with a NaN or an infinity, as `(name, index, value)`: writing then
    /// fails.
    non_finite: Option<(String, Vec<usize>, f64)>,
}

impl TensorWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds tensor `name` (any dimensionality, stored in `F`'s dtype, row-major).
    pub(crate) fn add<F: Real, D: ndarray::Dimension>(
        &mut self,
        name: impl Into<String>,
        array: ndarray::ArrayView<'_, F, D>,
    ) {
        let name = name.into();
        if self.non_finite.is_none()
            && let Err(Error::NonFinite {
                tensor,
                index,
                value,
            }) = expect_finite(&name, array.view())
        {
            self.non_finite = Some((tensor, index, value));
        }
        let mut bytes = Vec::with_capacity(array.len() * (F::DTYPE.bitsize() / 8));
        let standard = array.as_standard_layout();
        // as_standard_layout guarantees a contiguous row-major slice.
        F::extend_le_bytes(standard.as_slice().unwrap_or(&[]), &mut bytes);
        self.tensors
            .push((name, F::DTYPE, array.shape().to_vec(), bytes));
    }

    /// Adds a metadata string.
    pub(crate) fn meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// Serialises to a safetensors buffer; [`Error::NonFinite`] if a tensor holds a NaN or an
    /// infinity.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some((tensor, index, value)) = &self.non_finite {
            return Err(Error::NonFinite {
                tensor: tensor.clone(),
                index: index.clone(),
                value: *value,
            });
        }
        let views = self
            .tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        Ok(safetensors::serialize(views, meta)?)
    }

    /// Writes the file atomically (see the module documentation).
    pub(crate) fn write_atomic(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        Error::config(
            "output path",
            format!("{} has no file name", path.display()),
        )
    })?;
    // Unique per process and call, so that concurrent saves to one path never share a
    // temporary file (the last rename wins, and each file renamed is complete).
    static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        // Persist the rename itself; not every platform can open a directory, so this is best effort.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
