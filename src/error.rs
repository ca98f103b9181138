//! The crate's error type.
//!
//! Everything a caller can get wrong (a shape, a file, a request beyond what the device allows)
//! comes back as an [`Error`] that names the tensor or file involved; the library does not panic on
//! caller mistakes.

use std::path::PathBuf;

/// Shorthand for `std::result::Result<T, lstm_wgpu::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure the GPU reported inside an error scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuErrorKind {
    /// wgpu validation: a bug in the commands or resources, or a limit exceeded.
    Validation,
    /// The device ran out of memory.
    OutOfMemory,
    /// The driver failed in a way WebGPU does not define.
    Internal,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor has the wrong shape. `expected` uses the shape the operation needs.
    #[error("`{tensor}` has shape {actual:?}, expected {expected:?}")]
    Shape {
        /// Name of the offending tensor (`x`, `h0`, `weight_ih_l0`, ...).
        tensor: String,
        /// The shape the operation needs.
        expected: Vec<usize>,
        /// The shape it was given.
        actual: Vec<usize>,
    },

    /// A dimension that must be at least one is zero.
    #[error("`{tensor}` has a zero-sized dimension `{dim}` (shape {shape:?})")]
    ZeroSize {
        /// Name of the tensor or configuration.
        tensor: String,
        /// Name of the dimension (`batch`, `seq`, `hidden`, ...).
        dim: &'static str,
        /// The full shape given.
        shape: Vec<usize>,
    },

    /// A sequence's length in a batch of variable lengths is outside `1..=T`.
    #[error("sequence {sequence} has length {length}, outside 1..={seq}")]
    SequenceLength {
        /// The sequence's index in the batch.
        sequence: usize,
        /// Its length as given.
        length: usize,
        /// The steps of the batch, `T`.
        seq: usize,
    },

    /// A configuration value is out of range (learning rate, batch size, ...).
    #[error("invalid {what}: {reason}")]
    Config {
        /// The setting.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },

    /// A tensor in a file has a dtype this crate cannot read.
    #[error("`{tensor}` has dtype {actual}, expected {expected}")]
    Dtype {
        /// Name of the tensor.
        tensor: String,
        /// The dtypes accepted.
        expected: &'static str,
        /// The dtype found.
        actual: String,
    },

    /// A tensor the model needs is missing from a weights file.
    #[error("tensor `{tensor}` is missing from the weights file")]
    MissingTensor {
        /// The key that was looked for.
        tensor: String,
    },

    /// A weights file holds LSTM tensors under several prefixes and none without one (a whole
    /// model's state dict with two LSTMs, say): the caller must name the one to load
    /// ([`crate::LstmWeights::load_prefixed`]).
    #[error(
        "{}LSTM tensors sit under several prefixes {prefixes:?} and none without one; load one \
         of them by its prefix",
        .path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default()
    )]
    AmbiguousPrefix {
        /// The file, or `None` for bytes parsed in memory.
        path: Option<PathBuf>,
        /// Every prefix that holds an LSTM (each ends in `.`), sorted.
        prefixes: Vec<String>,
    },

    /// A safetensors file could not be parsed or written.
    #[error("safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An IDX (MNIST format) file is malformed or truncated.
    #[error("{path}: not a valid IDX file: {reason}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A data set is inconsistent (image and label counts differ, a label out of range, ...).
    #[error("data set: {0}")]
    Data(String),

    /// A checkpoint file does not describe a model this code can resume.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// No GPU adapter matched the request.
    #[error(
        "no GPU adapter found (backends from WGPU_BACKEND: {backends}); install a Vulkan, Metal or DX12 driver, \
         or Mesa's lavapipe (`mesa-vulkan-drivers`) for a software one"
    )]
    NoAdapter {
        /// The backends that were searched.
        backends: String,
    },

    /// The adapter refused to create a device.
    #[error("requesting a device failed: {0}")]
    RequestDevice(#[from] wgpu::RequestDeviceError),

    /// A buffer would exceed a device limit.
    #[error("`{tensor}` needs {bytes} bytes, beyond the device limit {limit_name} = {limit}")]
    DeviceLimit {
        /// Name of the tensor or buffer.
        tensor: String,
        /// Bytes it needs (or, for dispatch limits, workgroups).
        bytes: u64,
        /// Name of the `wgpu::Limits` field.
        limit_name: &'static str,
        /// The device's value for it.
        limit: u64,
    },

    /// wgpu reported an error inside one of this crate's error scopes.
    #[error("GPU {kind:?} error while {context}: {message}")]
    Gpu {
        /// Validation, out-of-memory or internal.
        kind: GpuErrorKind,
        /// What the crate was doing.
        context: &'static str,
        /// wgpu's description.
        message: String,
    },

    /// Mapping a buffer for readback failed, or the device was lost while waiting.
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),

    /// `backward` was given a tape whose activations have since been overwritten by a newer
    /// `forward_train` (the tape buffers are reused across batches of the same shape).
    #[error(
        "the tape is stale: a later forward_train (generation {current}) overwrote the activations of generation {tape}"
    )]
    StaleTape {
        /// Generation recorded in the tape.
        tape: u64,
        /// Generation now held by the model.
        current: u64,
    },

    /// Parameters (or optimizer state) hold a NaN or an infinity: refused when a file is loaded
    /// and when one would be saved, so a diverged run never replaces a good checkpoint.
    #[error("`{tensor}` holds the non-finite value {value} at index {index:?}")]
    NonFinite {
        /// Name of the tensor.
        tensor: String,
        /// Index of the first non-finite element.
        index: Vec<usize>,
        /// Its value.
        value: f64,
    },

    /// Host memory for `what` cannot be allocated (see [`crate::host_memory`]); `bytes` is
    /// `u64::MAX` when the size itself overflows.
    #[error("cannot allocate {bytes} bytes of host memory for {what}")]
    HostMemory {
        /// What the memory was for.
        what: String,
        /// Bytes asked for.
        bytes: u64,
    },

    /// The GPU device was lost (destroyed, reset or removed); every later call on it fails this
    /// way. Make a new [`crate::gpu::Gpu`] and models on it to go on.
    #[error("the GPU device was lost ({reason})")]
    DeviceLost {
        /// wgpu's reason and message.
        reason: String,
    },

    /// A stream was pushed after its model's parameters changed: its state belongs to weights
    /// that are gone (see [`crate::stream`]). Make a new stream from the model.
    #[error(
        "the stream is stale: it was made for version {stream} of its model's parameters, which are now at version {current}"
    )]
    StaleStream {
        /// Parameter version the stream was made for.
        stream: u64,
        /// The model's version now.
        current: u64,
    },

    /// A caller's GPU buffer cannot serve as the tensor `tensor` (see
    /// [`crate::gpu::GpuTensor`]): too small for it from the offset, a misaligned offset, a
    /// missing usage, or a buffer of another device.
    #[error("caller's buffer for `{tensor}`: {reason}")]
    CallerBuffer {
        /// The tensor the buffer was given for.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The GPU device lacks a feature the call needs (for example timestamp queries for
    /// [`crate::gpu::Gpu::profile`]).
    #[error("the GPU device lacks {feature}, which {needed_by} needs")]
    MissingFeature {
        /// The wgpu feature (or features) missing.
        feature: String,
        /// The call that needs it.
        needed_by: &'static str,
    },

    /// `backward` was given a tape that another model's `forward_train` made.
    #[error("the tape belongs to model {tape_model}, not to this model ({model})")]
    ForeignTape {
        /// The model number recorded in the tape.
        tape_model: u64,
        /// This model's number.
        model: u64,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Config {
            what,
            reason: reason.into(),
        }
    }
}
