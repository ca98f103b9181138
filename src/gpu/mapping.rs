//! Waiting for a buffer mapping without blocking the caller's thread.
//!
//! `map_async` calls back once the device is polled after the GPU has finished the work
//! submitted before it. In a browser the event loop does the polling; natively somebody must
//! call `device.poll`. Here one background thread per [`crate::gpu::Gpu`] does it, and only
//! while mappings are pending; each mapping is a future that the callback wakes. So an `async`
//! caller's executor thread never waits on the GPU, and the blocking calls are
//! `pollster::block_on` of the async ones: their thread sleeps until the callback wakes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

/// Polls one device while mappings on it are pending.
pub(crate) struct Poller {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<PollerState>,
    wake: Condvar,
}

#[derive(Default)]
struct PollerState {
    /// Mappings asked for whose callback has not run yet.
    pending: usize,
    /// The device's [`crate::gpu::Gpu`] is gone: stop once nothing is pending.
    closed: bool,
}

impl Poller {
    /// Starts the polling thread for `device` (none in a browser, whose event loop polls).
    pub(crate) fn new(device: &wgpu::Device) -> std::io::Result<Poller> {
        let shared = Arc::new(Shared::default());
        #[cfg(not(target_arch = "wasm32"))]
        {
            let (device, shared) = (device.clone(), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("lstm-wgpu poller".into())
                .spawn(move || poll_while_pending(&device, &shared))?;
        }
        #[cfg(target_arch = "wasm32")]
        let _ = device;
        Ok(Poller { shared })
    }

    /// Maps `slice` for `mode`; the future resolves when the mapping is ready (or failed).
    pub(crate) fn map(&self, slice: wgpu::BufferSlice<'_>, mode: wgpu::MapMode) -> MapFuture {
        let slot = Arc::new(Mutex::new(MapSlot::default()));
        self.shared.lock().pending += 1;
        let (done, shared) = (Arc::clone(&slot), Arc::clone(&self.shared));
        slice.map_async(mode, move |result| {
            let waker = {
                let mut s = done.lock().unwrap_or_else(|e| e.into_inner());
                s.result = Some(result);
                s.waker.take()
            };
            shared.lock().pending -= 1;
            if let Some(w) = waker {
                w.wake();
            }
        });
        self.shared.wake.notify_one();
        MapFuture { slot }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, PollerState> {
        // The state is two counters, consistent after any panic: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The polling thread: sleeps until a mapping is pending, then waits on the device until the
/// work submitted so far is done (which runs the callbacks), and again while any is pending.
#[cfg(not(target_arch = "wasm32"))]
fn poll_while_pending(device: &wgpu::Device, shared: &Shared) {
    loop {
        {
            let mut s = shared.lock();
            while s.pending == 0 && !s.closed {
                s = shared.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.pending == 0 {
                return;
            }
        }
        if device.poll(wgpu::PollType::wait_indefinitely()).is_err() {
            // A lost device: its mappings' callbacks report the failure. Do not spin on a
            // device that answers at once.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[derive(Default)]
struct MapSlot {
    result: Option<Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// A pending mapping (see [`Poller::map`]).
pub(crate) struct MapFuture {
    slot: Arc<Mutex<MapSlot>>,
}

impl Future for MapFuture {
    type Output = Result<(), wgpu::BufferAsyncError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
