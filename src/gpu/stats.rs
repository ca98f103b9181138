//! What the host layer has recorded and transferred, so callers can see what a call costs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Cumulative counts for one GPU model ([`crate::gpu::GpuLstm`], ...), since it was created.
/// Take a snapshot before and after a call and subtract to see what the call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// Compute dispatches recorded.
    pub dispatches: u64,
    /// `queue.write_buffer` calls (host → GPU uploads).
    pub uploads: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Buffer mappings waited on (GPU → host readbacks); each one is a synchronisation point.
    pub readbacks: u64,
    /// Bytes read back.
    pub bytes_read_back: u64,
}

impl std::ops::Sub for GpuStats {
    type Output = GpuStats;

    fn sub(self, earlier: GpuStats) -> GpuStats {
        GpuStats {
            submits: self.submits - earlier.submits,
            dispatches: self.dispatches - earlier.dispatches,
            uploads: self.uploads - earlier.uploads,
            bytes_uploaded: self.bytes_uploaded - earlier.bytes_uploaded,
            readbacks: self.readbacks - earlier.readbacks,
            bytes_read_back: self.bytes_read_back - earlier.bytes_read_back,
        }
    }
}

/// The live counters behind [`GpuStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    submits: AtomicU64,
    dispatches: AtomicU64,
    uploads: AtomicU64,
    bytes_uploaded: AtomicU64,
    readbacks: AtomicU64,
    bytes_read_back: AtomicU64,
}

impl Counters {
    pub(crate) fn submit(&self) {
        self.submits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dispatch(&self) {
        self.dispatches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn readback(&self, bytes: u64) {
        self.readbacks.fetch_add(1, Ordering::Relaxed);
        self.bytes_read_back.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> GpuStats {
        GpuStats {
            submits: self.submits.load(Ordering::Relaxed),
            dispatches: self.dispatches.load(Ordering::Relaxed),
            uploads: self.uploads.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
            readbacks: self.readbacks.load(Ordering::Relaxed),
            bytes_read_back: self.bytes_read_back.load(Ordering::Relaxed),
        }
    }
}
