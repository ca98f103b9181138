//! wgpu's error scopes around a piece of work: what they catch becomes an [`Error::Gpu`] naming
//! the work. Scopes are per thread, so work spread over threads opens them on each.

use crate::error::{Error, GpuErrorKind, Result};

/// Runs `f` inside validation, internal and out-of-memory error scopes of `device` (on this
/// thread); the first error caught is [`Error::Gpu`] with `context`.
pub(crate) fn catch<T>(
    device: &wgpu::Device,
    context: &'static str,
    f: impl FnOnce() -> T,
) -> Result<T> {
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let out = f();
    let errors = [
        (
            pollster::block_on(validation.pop()),
            GpuErrorKind::Validation,
        ),
        (pollster::block_on(internal.pop()), GpuErrorKind::Internal),
        (pollster::block_on(oom.pop()), GpuErrorKind::OutOfMemory),
    ];
    for (error, kind) in errors {
        if let Some(e) = error {
            return Err(Error::Gpu {
                kind,
                context,
                message: error_chain(&e),
            });
        }
    }
    Ok(out)
}

/// An error and its sources on one line (wgpu's own display spreads them over several).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let parts: Vec<&str> = parts
        .iter()
        .map(|p| p.lines().next().unwrap_or("").trim())
        .filter(|p| !p.is_empty())
        .collect();
    parts.join(": ")
}
