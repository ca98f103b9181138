//! Tensors in the caller's own GPU buffers, for calls that read their input from, or write their
//! outputs into, buffers an application already has (its sensor data, its render targets)
//! without a trip through host memory.

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;

/// A tensor of `f32` values, row-major, in a caller's buffer from byte `offset` (a multiple of
/// 4). Each call documents the shape it reads or writes there and the usage the buffer needs:
/// `COPY_SRC` for an input, `COPY_DST` for an output. The buffer must belong to the model's
/// device: a buffer of another device of the same `wgpu::Instance` is refused with
/// [`crate::Error::CallerBuffer`], but wgpu cannot tell a buffer of another instance from one
/// of its own, so never pass one.
#[derive(Debug, Clone, Copy)]
pub struct GpuTensor<'a> {
    /// The caller's buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Where the tensor starts, in bytes.
    pub offset: u64,
}

impl<'a> GpuTensor<'a> {
    /// The tensor at the start of `buffer`.
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        GpuTensor { buffer, offset: 0 }
    }
}

/// Checks that `t` can hold `len` values of the tensor `name` and has `usage` (`COPY_SRC` or
/// `COPY_DST`), and that it belongs to `gpu`'s device: a probe copy of four bytes, recorded
/// into an encoder that is dropped unsubmitted, fails validation otherwise. Returns the size in
/// bytes.
pub(crate) fn check(
    gpu: &Gpu,
    name: &str,
    t: GpuTensor<'_>,
    len: usize,
    usage: wgpu::BufferUsages,
) -> Result<u64> {
    let fail = |reason: String| {
        Err(Error::CallerBuffer {
            tensor: name.to_string(),
            reason,
        })
    };
    let bytes = len as u64 * 4;
    if !t.offset.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) {
        return fail(format!("offset {} is not a multiple of 4", t.offset));
    }
    let size = t.buffer.size();
    if t.offset.checked_add(bytes).is_none_or(|end| end > size) {
        return fail(format!(
            "needs {bytes} bytes from offset {}, the buffer has {size}",
            t.offset
        ));
    }
    if !t.buffer.usage().contains(usage) {
        return fail(format!(
            "the buffer's usage {:?} lacks {usage:?}",
            t.buffer.usage()
        ));
    }
    let scratch = gpu.probe();
    let probe = gpu.catch("checking a caller's buffer", || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        if usage.contains(wgpu::BufferUsages::COPY_SRC) {
            encoder.copy_buffer_to_buffer(t.buffer, t.offset, scratch, 0, 4);
        } else {
            encoder.copy_buffer_to_buffer(scratch, 0, t.buffer, t.offset, 4);
        }
        drop(encoder.finish());
    });
    match probe {
        Ok(()) => Ok(bytes),
        Err(Error::Gpu { message, .. }) => fail(format!(
            "cannot be used on this model's device (another device's buffer?): {message}"
        )),
        Err(e) => Err(e),
    }
}
