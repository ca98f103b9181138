//! The IDX file format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a big-endian header followed by a row-major array:
//!
//! - bytes 0-1: zero;
//! - byte 2: the element type: `0x08` unsigned byte, `0x09` signed byte, `0x0B` i16, `0x0C` i32,
//!   `0x0D` f32, `0x0E` f64;
//! - byte 3: the number of dimensions `D`;
//! - bytes `4 .. 4 + 4D`: each dimension as a big-endian `u32`, outermost first;
//! - then the elements, row-major (last dimension fastest), nothing after them.
//!
//! MNIST-style data sets only use unsigned bytes, the only element type read here. Files are
//! often distributed gzip-compressed; [`read_idx`] recognises gzip by its magic bytes
//! (`0x1f 0x8b`), whatever the file is called.
//!
//! [`load_mnist_dir`] combines an image file (`[N, rows, cols]`) and a label file (`[N]`) into a
//! [`SequenceDataset`] whose sequences are the images read row by row.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::SequenceDataset;
use crate::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the four gzip-compressed Fashion-MNIST
/// files; pass it to [`load_mnist_dir`].
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The type code of unsigned bytes, the only element type supported.
const TYPE_U8: u8 = 0x08;

/// The largest number of dimensions accepted.
const MAX_DIMS: usize = 4;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The number of classes of MNIST and Fashion-MNIST.
const MNIST_CLASSES: usize = 10;

/// An IDX array of unsigned bytes: `data` holds the `dims.iter().product()` elements in row-major
/// order (last dimension fastest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (`[N, rows, cols]` for images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// The elements, row-major; `data.len()` equals the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads the IDX file at `path`, plain or gzip-compressed.
///
/// Returns [`Error::Io`] when the file cannot be read and [`Error::Idx`] when its content is not
/// a valid unsigned-byte IDX array (see [`parse_idx`]).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_idx(&bytes, path)
}

/// Parses the content of an IDX file, plain or gzip-compressed (recognised by its magic bytes).
/// `path_for_errors` only names the source in errors.
///
/// Returns [`Error::Idx`] when the gzip stream is corrupt, the header is short or does not start
/// with two zero bytes, the element type is not unsigned byte, the number of dimensions is zero or
/// above four, the product of the dimensions overflows, or the data is shorter or longer than the
/// dimensions say.
pub fn parse_idx(bytes: &[u8], path_for_errors: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let raw = gunzip_bounded(bytes)
            .map_err(|e| idx_error(path_for_errors, format!("corrupt gzip stream: {e}")))?;
        parse_raw(&raw, path_for_errors)
    } else {
        parse_raw(bytes, path_for_errors)
    }
}

/// Parses an uncompressed IDX file.
/// Decompresses the header, then at most one byte more than the header's dimensions need: a
/// stream that inflates far beyond what its header claims (a "gzip bomb") is never held in
/// memory; `parse_raw` then reports the trailing bytes.
fn gunzip_bounded(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
    let mut raw = Vec::new();
    (&mut decoder).take(4).read_to_end(&mut raw)?;
    let Some(&ndims) = raw.get(3) else {
        return Ok(raw);
    };
    let ndims = usize::from(ndims).min(MAX_DIMS);
    (&mut decoder)
        .take(4 * ndims as u64)
        .read_to_end(&mut raw)?;
    let data = raw[4..]
        .chunks_exact(4)
        .try_fold(1u64, |n, c| {
            n.checked_mul(u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        })
        .unwrap_or(u64::MAX);
    decoder.take(data.saturating_add(1)).read_to_end(&mut raw)?;
    Ok(raw)
}

fn parse_raw(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let [z0, z1, type_code, ndims, ..] = *bytes else {
        return Err(idx_error(
            path,
            format!(
                "too short for the header: {} bytes, need at least 4",
                bytes.len()
            ),
        ));
    };
    if (z0, z1) != (0, 0) {
        return Err(idx_error(
            path,
            format!("bad magic: the first two bytes are {z0:#04x} {z1:#04x}, expected 0x00 0x00"),
        ));
    }
    if type_code != TYPE_U8 {
        return Err(idx_error(
            path,
            format!(
                "unsupported element type {type_code:#04x} ({}); only 0x08 (unsigned byte) is supported",
                type_name(type_code)
            ),
        ));
    }
    let ndims = usize::from(ndims);
    if ndims == 0 || ndims > MAX_DIMS {
        return Err(idx_error(
            path,
            format!("{ndims} dimensions; between 1 and {MAX_DIMS} are supported"),
        ));
    }
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(idx_error(
            path,
            format!(
                "too short for the header: {} bytes, need {header_len} for {ndims} dimensions",
                bytes.len()
            ),
        ));
    }
    let dims = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| {
            let d = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            usize::try_from(d).map_err(|_| {
                idx_error(
                    path,
                    format!("dimension {d} does not fit in this platform's usize"),
                )
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            idx_error(
                path,
                format!("the product of the dimensions {dims:?} overflows usize"),
            )
        })?;
    let got = bytes.len() - header_len;
    if got < expected {
        return Err(idx_error(
            path,
            format!("truncated data: dimensions {dims:?} need {expected} bytes, got {got}"),
        ));
    }
    if got > expected {
        return Err(idx_error(
            path,
            format!(
                "trailing garbage: dimensions {dims:?} need {expected} bytes, got {got} ({} extra)",
                got - expected
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header_len..].to_vec(),
    })
}

/// The name of an IDX element type code, for errors.
fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => "unknown type",
    }
}

fn idx_error(path: &Path, reason: String) -> Error {
    Error::Idx {
        path: path.to_path_buf(),
        reason,
    }
}

/// Which half of an MNIST-style data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MnistSplit {
    /// The training set: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`.
    Train,
    /// The test set: `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
    Test,
}

impl MnistSplit {
    /// The prefix of this split's file names (`"train"` or `"t10k"`).
    pub fn file_prefix(self) -> &'static str {
        match self {
            MnistSplit::Train => "train",
            MnistSplit::Test => "t10k",
        }
    }

    /// The base name of this split's image file, without a `.gz` suffix.
    pub fn images_file(self) -> String {
        format!("{}-images-idx3-ubyte", self.file_prefix())
    }

    /// The base name of this split's label file, without a `.gz` suffix.
    pub fn labels_file(self) -> String {
        format!("{}-labels-idx1-ubyte", self.file_prefix())
    }
}

impl fmt::Display for MnistSplit {
    /// `"train"` or `"test"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MnistSplit::Train => "train",
            MnistSplit::Test => "test",
        })
    }
}

/// Loads one split of an MNIST-style data set (MNIST, Fashion-MNIST) from `dir`.
///
/// The directory must hold the split's image and label files (see [`MnistSplit`]), each either
/// plain or with `.gz` appended; the plain one is used when both exist. The images must be a
/// 3-D IDX array `[N, rows, cols]`, the labels a 1-D array `[N]` of values below 10.
///
/// The result has `inputs` of shape `[N, rows, cols]`: each image read row by row, `T = rows`
/// timesteps of `F = cols` pixels, scaled from `0..=255` to `[0, 1]`. It has 10 classes and is
/// named after the directory and the split (`"fashion-mnist train"`).
///
/// Returns [`Error::Io`] (of kind `NotFound`, naming the files tried) when a file is missing,
/// [`Error::Idx`] when a file is malformed or has the wrong number of dimensions, and
/// [`Error::Data`] when the image and label counts differ or a label is above 9.
pub fn load_mnist_dir(dir: &Path, split: MnistSplit) -> Result<SequenceDataset> {
    let images_path = find_file(dir, &split.images_file())?;
    let labels_path = find_file(dir, &split.labels_file())?;
    let images = read_idx(&images_path)?;
    let labels = read_idx(&labels_path)?;

    let &[n, rows, cols] = images.dims.as_slice() else {
        return Err(idx_error(
            &images_path,
            format!(
                "images must have 3 dimensions [count, rows, cols], got {:?}",
                images.dims
            ),
        ));
    };
    let &[n_labels] = labels.dims.as_slice() else {
        return Err(idx_error(
            &labels_path,
            format!(
                "labels must have 1 dimension [count], got {:?}",
                labels.dims
            ),
        ));
    };
    if n == 0 || rows == 0 || cols == 0 {
        return Err(Error::Data(format!(
            "{} holds {n} images of {rows} x {cols} pixels: nothing to read as sequences",
            images_path.display()
        )));
    }
    if n != n_labels {
        return Err(Error::Data(format!(
            "{} holds {n} images but {} holds {n_labels} labels",
            images_path.display(),
            labels_path.display()
        )));
    }
    if let Some((i, &label)) = labels
        .data
        .iter()
        .enumerate()
        .find(|&(_, &label)| usize::from(label) >= MNIST_CLASSES)
    {
        return Err(Error::Data(format!(
            "{}: label {label} of example {i} is not below {MNIST_CLASSES}",
            labels_path.display()
        )));
    }

    let pixels = images.data.iter().map(|&p| f32::from(p) / 255.0).collect();
    let inputs = Array3::from_shape_vec((n, rows, cols), pixels).map_err(|e| {
        Error::Data(format!(
            "{}: {} pixels do not fill [{n}, {rows}, {cols}]: {e}",
            images_path.display(),
            images.data.len()
        ))
    })?;
    let dir_name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    SequenceDataset::new(
        format!("{dir_name} {split}"),
        inputs,
        labels.data,
        MNIST_CLASSES,
    )
}

/// `dir/base` if it is a file, else `dir/base.gz` if that is, else a `NotFound` error naming
/// both.
fn find_file(dir: &Path, base: &str) -> Result<PathBuf> {
    let gz = format!("{base}.gz");
    for name in [base, gz.as_str()] {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(Error::io(
        dir,
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("neither {base} nor {gz} found"),
        ),
    ))
}
