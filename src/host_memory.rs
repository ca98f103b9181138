//! Host memory asked for before it is used.
//!
//! A `Vec` or an `ndarray` that cannot be allocated aborts the process. Sizes a caller chooses
//! (a hidden size from a command line, a batch) are therefore checked here first, and refused
//! with [`Error::HostMemory`]:
//!
//! 1. a request beyond the machine's physical memory and swap together can never be met
//!    (Linux: `MemTotal + SwapTotal` of `/proc/meminfo`; elsewhere this check is skipped);
//! 2. otherwise the allocator is asked for the bytes (`Vec::try_reserve_exact`), which are given
//!    back at once without being touched.
//!
//! Neither proves that touching the memory later succeeds (other processes compete for it), but a
//! request that cannot fit is refused before anything is allocated, instead of aborting.

use crate::error::{Error, Result};

/// Checks that `bytes` of host memory for `what` can be allocated now.
pub fn reserve(what: &str, bytes: u64) -> Result<()> {
    let refuse = || Error::HostMemory {
        what: what.to_string(),
        bytes,
    };
    if physical_bytes().is_some_and(|total| bytes > total) {
        return Err(refuse());
    }
    let len = usize::try_from(bytes).map_err(|_| refuse())?;
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(len).map_err(|_| refuse())?;
    Ok(())
}

/// `count` elements of `size` bytes each, or a [`Error::HostMemory`] naming `what` when the
/// product overflows.
pub fn bytes_of(what: &str, count: usize, size: usize) -> Result<u64> {
    count
        .checked_mul(size)
        .and_then(|b| u64::try_from(b).ok())
        .ok_or_else(|| overflow(what))
}

/// The error for a size that overflows before it can even be asked for.
pub(crate) fn overflow(what: &str) -> Error {
    Error::HostMemory {
        what: what.to_string(),
        bytes: u64::MAX,
    }
}

/// Physical memory plus swap, where the platform says.
fn physical_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = info.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((kib("MemTotal:")? + kib("SwapTotal:").unwrap_or(0)) * 1024)
}
