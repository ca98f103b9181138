//! Reading IDX files and MNIST-style directories.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use lstm_wgpu::Error;
use lstm_wgpu::data::idx::parse_idx;
use lstm_wgpu::data::{FASHION_MNIST_DIR, MnistSplit, load_mnist_dir, read_idx};

/// A fresh directory under the system temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lstm-wgpu-idx-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write test file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An IDX file: two zero bytes, the type code, the dimension count, the dimensions, the data.
fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("finish gzip stream")
}

/// The `reason` of an `Error::Idx`, panicking on any other result.
fn idx_reason<T: std::fmt::Debug>(result: lstm_wgpu::Result<T>) -> String {
    match result {
        Err(Error::Idx { reason, .. }) => reason,
        other => panic!("expected Error::Idx, got {other:?}"),
    }
}

/// 2 x 3 x 4 bytes 0..24, shaped like images.
fn sample_data() -> Vec<u8> {
    (0u8..24).collect()
}

#[test]
fn valid_ubyte_file_round_trips_dims_and_bytes() {
    let dir = TempDir::new("round_trip");
    let path = dir.write("a.idx", &idx_bytes(0x08, &[2, 3, 4], &sample_data()));
    let array = read_idx(&path).unwrap();
    assert_eq!(array.dims, vec![2, 3, 4]);
    assert_eq!(array.data, sample_data());
}

#[test]
fn gzip_compressed_file_reads_identically() {
    let dir = TempDir::new("gzip");
    let raw = idx_bytes(0x08, &[2, 3, 4], &sample_data());
    let plain = read_idx(&dir.write("a.idx", &raw)).unwrap();
    // Named without `.gz`: compression is recognised by content, not by name.
    let compressed = read_idx(&dir.write("b.idx", &gzip(&raw))).unwrap();
    assert_eq!(compressed, plain);
}

#[test]
fn truncated_data_is_an_idx_error_with_the_counts() {
    let dir = TempDir::new("truncated");
    let path = dir.write("a.idx", &idx_bytes(0x08, &[2, 3, 4], &sample_data()[..20]));
    let reason = idx_reason(read_idx(&path));
    assert!(reason.contains("24"), "{reason}");
    assert!(reason.contains("20"), "{reason}");
}

#[test]
fn nonzero_magic_is_an_idx_error() {
    let mut bytes = idx_bytes(0x08, &[3], &[1, 2, 3]);
    bytes[1] = 0x01;
    let reason = idx_reason(parse_idx(&bytes, Path::new("bad-magic")));
    assert!(reason.contains("magic"), "{reason}");
}

#[test]
fn unsupported_type_code_is_an_idx_error_naming_it() {
    let bytes = idx_bytes(0x0D, &[1], &1.0f32.to_be_bytes());
    let reason = idx_reason(parse_idx(&bytes, Path::new("floats")));
    assert!(reason.contains("0x0d"), "{reason}");
}

#[test]
fn trailing_bytes_are_an_idx_error() {
    let mut data = sample_data();
    data.push(99);
    let reason = idx_reason(parse_idx(
        &idx_bytes(0x08, &[2, 3, 4], &data),
        Path::new("trailing"),
    ));
    assert!(reason.contains("trailing"), "{reason}");
}

#[test]
fn header_too_short_is_an_idx_error() {
    // Three dimensions announced, only one given.
    let bytes = [0, 0, 0x08, 3, 0, 0, 0, 1];
    let reason = idx_reason(parse_idx(&bytes, Path::new("short")));
    assert!(reason.contains("header"), "{reason}");
}

#[test]
fn zero_dimension_count_is_an_idx_error() {
    let reason = idx_reason(parse_idx(&[0, 0, 0x08, 0], Path::new("no-dims")));
    assert!(reason.contains("0 dimensions"), "{reason}");
}

#[test]
fn corrupt_gzip_is_an_idx_error() {
    let mut bytes = gzip(&idx_bytes(0x08, &[2, 3, 4], &sample_data()));
    let len = bytes.len();
    bytes.truncate(len / 2);
    let reason = idx_reason(parse_idx(&bytes, Path::new("corrupt.gz")));
    assert!(reason.contains("gzip"), "{reason}");
}

#[test]
fn overflowing_dimensions_are_an_idx_error() {
    let bytes = idx_bytes(0x08, &[u32::MAX, u32::MAX, u32::MAX, u32::MAX], &[]);
    let reason = idx_reason(parse_idx(&bytes, Path::new("huge")));
    assert!(reason.contains("overflow"), "{reason}");
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = TempDir::new("missing_file");
    let path = dir.path().join("absent.idx");
    match read_idx(&path) {
        Err(Error::Io { path: p, source }) => {
            assert_eq!(p, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

/// Three 2 x 3 images with distinct pixels (one of them 255) and their labels.
fn write_mnist(dir: &TempDir, prefix: &str, labels: &[u8], gz: bool) {
    let pixels: Vec<u8> = (1..18).map(|i| i * 10).chain([255]).collect();
    let images = idx_bytes(0x08, &[3, 2, 3], &pixels);
    let label_file = idx_bytes(0x08, &[labels.len() as u32], labels);
    let (images, label_file, suffix) = if gz {
        (gzip(&images), gzip(&label_file), ".gz")
    } else {
        (images, label_file, "")
    };
    dir.write(&format!("{prefix}-images-idx3-ubyte{suffix}"), &images);
    dir.write(&format!("{prefix}-labels-idx1-ubyte{suffix}"), &label_file);
}

#[test]
fn mnist_dir_gives_scaled_row_sequences_and_labels() {
    let dir = TempDir::new("mnist_values");
    write_mnist(&dir, "train", &[7, 0, 9], false);
    let data = load_mnist_dir(dir.path(), MnistSplit::Train).unwrap();
    assert_eq!(data.inputs.shape(), &[3, 2, 3]);
    assert_eq!(data.labels, vec![7, 0, 9]);
    assert_eq!(data.num_classes, 10);
    assert!(data.inputs.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // Pixels 10, 20, ..., 170, 255 in row-major order: image 1, row 0, col 2 is the 9th pixel.
    assert_eq!(data.inputs[[0, 0, 0]], 10.0 / 255.0);
    assert_eq!(data.inputs[[1, 0, 2]], 90.0 / 255.0);
    assert_eq!(data.inputs[[2, 1, 2]], 1.0);
}

#[test]
fn mnist_dir_reads_gzip_files_of_the_test_split() {
    let dir = TempDir::new("mnist_gz");
    write_mnist(&dir, "t10k", &[1, 2, 3], true);
    let data = load_mnist_dir(dir.path(), MnistSplit::Test).unwrap();
    assert_eq!(data.inputs.shape(), &[3, 2, 3]);
    assert_eq!(data.labels, vec![1, 2, 3]);
}

#[test]
fn mnist_dataset_is_named_after_directory_and_split() {
    let dir = TempDir::new("mnist_name");
    write_mnist(&dir, "t10k", &[1, 2, 3], false);
    let data = load_mnist_dir(dir.path(), MnistSplit::Test).unwrap();
    let dir_name = dir.path().file_name().unwrap().to_string_lossy();
    assert_eq!(data.name, format!("{dir_name} test"));
}

#[test]
fn image_label_count_mismatch_is_a_data_error() {
    let dir = TempDir::new("mnist_mismatch");
    write_mnist(&dir, "train", &[1, 2], false);
    match load_mnist_dir(dir.path(), MnistSplit::Train) {
        Err(Error::Data(message)) => {
            assert!(message.contains("3 images"), "{message}");
            assert!(message.contains("2 labels"), "{message}");
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn label_ten_is_a_data_error() {
    let dir = TempDir::new("mnist_label_10");
    write_mnist(&dir, "train", &[1, 10, 2], false);
    match load_mnist_dir(dir.path(), MnistSplit::Train) {
        Err(Error::Data(message)) => assert!(message.contains("label 10"), "{message}"),
        other => panic!("expected Error::Data, got {other:?}"),
    }
}

#[test]
fn images_with_two_dimensions_are_an_idx_error() {
    let dir = TempDir::new("mnist_2d");
    dir.write(
        "train-images-idx3-ubyte",
        &idx_bytes(0x08, &[3, 6], &[0; 18]),
    );
    dir.write(
        "train-labels-idx1-ubyte",
        &idx_bytes(0x08, &[3], &[0, 1, 2]),
    );
    let reason = idx_reason(load_mnist_dir(dir.path(), MnistSplit::Train));
    assert!(reason.contains("3 dimensions"), "{reason}");
}

#[test]
fn missing_mnist_files_error_names_the_files_tried() {
    let dir = TempDir::new("mnist_missing");
    // The test split is present, the training split is not.
    write_mnist(&dir, "t10k", &[1, 2, 3], false);
    let message = load_mnist_dir(dir.path(), MnistSplit::Train)
        .unwrap_err()
        .to_string();
    assert!(message.contains("train-images-idx3-ubyte"), "{message}");
    assert!(message.contains("train-images-idx3-ubyte.gz"), "{message}");
}

#[test]
#[ignore = "needs Debian's dataset-fashion-mnist"]
fn fashion_mnist_test_split_has_10000_images_of_28x28_and_all_labels() {
    let data = load_mnist_dir(Path::new(FASHION_MNIST_DIR), MnistSplit::Test).unwrap();
    assert_eq!(data.inputs.shape(), &[10_000, 28, 28]);
    assert_eq!(data.labels.len(), 10_000);
    let mut seen = [false; 10];
    for &label in &data.labels {
        seen[usize::from(label)] = true;
    }
    assert_eq!(seen, [true; 10]);
    assert_eq!(data.name, "fashion-mnist test");
}

#[test]
fn more_than_four_dimensions_are_an_idx_error() {
    let bytes = idx_bytes(0x08, &[1, 1, 1, 1, 2], &[0, 0]);
    let reason = idx_reason(parse_idx(&bytes, Path::new("five.idx")));
    assert!(reason.contains("5 dimensions"), "{reason}");
}

#[test]
fn a_gzip_header_claiming_more_data_than_the_stream_holds_is_truncated_not_allocated() {
    // 2^32 - 1 squared bytes claimed (beyond any machine), 6 present.
    let bytes = gzip(&idx_bytes(0x08, &[u32::MAX, u32::MAX], &[1, 2, 3, 4, 5, 6]));
    let reason = idx_reason(parse_idx(&bytes, Path::new("liar.idx.gz")));
    assert!(
        reason.contains("truncated") && reason.contains("got 6"),
        "{reason}"
    );
}

#[test]
fn a_gzip_stream_inflating_far_past_its_header_stops_one_byte_after_it() {
    // A "gzip bomb": the header claims 2 x 3 x 4 bytes, the stream inflates to 64 MiB. The
    // reader decompresses one byte past the claim and reports exactly that one.
    let mut payload = idx_bytes(0x08, &[2, 3, 4], &sample_data());
    payload.resize(payload.len() + (64 << 20), 0);
    let bytes = gzip(&payload);
    assert!(
        bytes.len() < 1 << 20,
        "the bomb is small: {} bytes",
        bytes.len()
    );
    let reason = idx_reason(parse_idx(&bytes, Path::new("bomb.idx.gz")));
    assert!(
        reason.contains("trailing") && reason.contains("(1 extra)"),
        "{reason}"
    );
}

#[test]
fn mnist_files_with_zero_images_rows_or_columns_are_a_data_error() {
    for (dims, name) in [
        ([0u32, 2, 3], "count"),
        ([3, 0, 3], "rows"),
        ([3, 2, 0], "cols"),
    ] {
        let dir = TempDir::new(&format!("mnist_zero_{name}"));
        let n = dims.iter().product::<u32>() as usize;
        dir.write(
            "train-images-idx3-ubyte",
            &idx_bytes(0x08, &dims, &vec![1; n]),
        );
        let labels = vec![1u8; dims[0] as usize];
        dir.write(
            "train-labels-idx1-ubyte",
            &idx_bytes(0x08, &[dims[0]], &labels),
        );
        match load_mnist_dir(dir.path(), MnistSplit::Train) {
            Err(Error::Data(message)) => {
                let want = format!("{} images of {} x {} pixels", dims[0], dims[1], dims[2]);
                assert!(message.contains(&want), "{name}: {message}");
            }
            other => panic!("zero {name}: expected Error::Data, got {other:?}"),
        }
    }
}
