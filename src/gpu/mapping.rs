//! Waiting for a buffer mapping without blocking the caller's thread.
//!
//! `map_async` (and `on_submitted_work_done`) call back once the device is polled after the GPU
//! has finished the work submitted before them. In a browser the event loop does the polling; natively somebody must
//! call `device.poll`. Here one background thread per [`crate::gpu::Gpu`] does it, and only
//! while mappings are pending; each mapping is a future that the callback wakes. So an `async`
//! caller's executor thread never waits on the GPU.
//!
//! The blocking calls are [`block_on`] of the async ones. A thread that blocks anyway waits on
//! the device itself: its mappings do not wake the polling thread, and the callback runs on the
//! waiting thread. That saves a hand-off between threads per call, which a streaming caller
//! pays at every step (and which, on a CPU-emulated adapter, competes with the adapter's own
//! threads for the cores).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

/// Polls one device while mappings on it are pending.
pub(crate) struct Poller {
    shared: Arc<Shared>,
    /// For the callers that wait on it themselves ([`block_on`]).
    device: wgpu::Device,
    /// Told when the thread has ended and dropped its handle on the device (in a mutex, which
    /// makes the receiver shareable between the threads that share the `Gpu`).
    #[cfg(not(target_arch = "wasm32"))]
    ended: Mutex<std::sync::mpsc::Receiver<()>>,
}

/// How long dropping a [`Poller`] waits for its thread to end (one whose device hangs in a poll is
/// left to end on its own).
#[cfg(not(target_arch = "wasm32"))]
const END_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
            let (polled_device, polled) = (device.clone(), Arc::clone(&shared));
            let (tell, ended) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("lstm-wgpu poller".into())
                .spawn(move || {
                    poll_while_pending(&polled_device, &polled);
                    drop(polled_device);
                    let _ = tell.send(());
                })?;
            Ok(Poller {
                shared,
                device: device.clone(),
                ended: Mutex::new(ended),
            })
        }
        #[cfg(target_arch = "wasm32")]
        {
            Ok(Poller {
                shared,
                device: device.clone(),
            })
        }
    }

    /// Maps `slice` for `mode`; the future resolves when the mapping is ready (or failed).
    pub(crate) fn map(
        &self,
        slice: wgpu::BufferSlice<'_>,
        mode: wgpu::MapMode,
    ) -> Callback<Result<(), wgpu::BufferAsyncError>> {
        self.watch(|done| slice.map_async(mode, done))
    }

    /// Resolves once the GPU has finished the work submitted to `queue` so far.
    pub(crate) fn work_done(&self, queue: &wgpu::Queue) -> Callback<()> {
        self.watch(|done| queue.on_submitted_work_done(move || done(())))
    }

    /// A future for the value a wgpu callback will pass: `register` hands wgpu the callback.
    /// Counted as pending (so the thread polls) until the callback has run.
    fn watch<T: Send + 'static>(
        &self,
        register: impl FnOnce(Box<dyn FnOnce(T) + Send>),
    ) -> Callback<T> {
        let here = waits_here();
        let slot = Arc::new(Mutex::new(Slot {
            value: None,
            waker: None,
            counted: !here,
        }));
        if !here {
            self.shared.lock().pending += 1;
        }
        let (done, shared) = (Arc::clone(&slot), Arc::clone(&self.shared));
        register(Box::new(move |value| {
            let (waker, counted) = {
                let mut s = done.lock().unwrap_or_else(|e| e.into_inner());
                s.value = Some(value);
                (s.waker.take(), s.counted)
            };
            if counted {
                shared.lock().pending -= 1;
            }
            if let Some(w) = waker {
                w.wake();
            }
        }));
        if !here {
            self.shared.wake.notify_one();
        }
        Callback {
            slot,
            shared: Arc::clone(&self.shared),
            device: here.then(|| self.device.clone()),
        }
    }
}

impl Drop for Poller {
    /// Stops the thread and waits until it has let go of the device, so that the device is
    /// torn down by whoever drops the last [`crate::gpu::Gpu`], never by this thread while the
    /// process may be exiting (on wgpu's GL backend, two threads tearing down one EGL context
    /// at once corrupt the heap).
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(ended) = self.ended.get_mut() {
            let _ = ended.recv_timeout(END_WAIT);
        }
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

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// Counted as pending for the polling thread (the callback takes it off again).
    counted: bool,
}

/// The value a wgpu callback passes, as a future (see [`Poller::map`], [`Poller::work_done`]).
pub(crate) struct Callback<T> {
    slot: Arc<Mutex<Slot<T>>>,
    shared: Arc<Shared>,
    /// The device to wait on, where the callback was registered inside [`block_on`].
    device: Option<wgpu::Device>,
}

impl<T> Future for Callback<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if s.value.is_none() && !s.counted {
            if let Some(device) = &self.device {
                // Inside `block_on`: wait for the work submitted so far here, which runs the
                // callback on this thread.
                drop(s);
                let _ = device.poll(wgpu::PollType::wait_indefinitely());
                s = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            }
            if s.value.is_none() {
                // Not delivered (a lost device, or a poll that gave up): the polling thread
                // takes over. Counted while the slot is locked, so that the callback, which
                // reads `counted` under the same lock, takes off only what was added.
                s.counted = true;
                self.shared.lock().pending += 1;
                self.shared.wake.notify_one();
            }
        }
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

thread_local! {
    /// Whether this thread is inside [`block_on`].
    static WAITS_HERE: Cell<bool> = const { Cell::new(false) };
}

fn waits_here() -> bool {
    !cfg!(target_arch = "wasm32") && WAITS_HERE.with(Cell::get)
}

/// Runs `future` to completion on this thread, which waits on the device itself for the
/// mappings the future registers (see the module comment). The blocking form of every call
/// that reads back.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let before = WAITS_HERE.with(|w| w.replace(true));
    // Restored even if the future panics, so a caught panic leaves the thread as it was.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WAITS_HERE.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(before);
    pollster::block_on(future)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::gpu::Gpu;

    fn counted<T>(callback: &Callback<T>) -> bool {
        callback.slot.lock().unwrap().counted
    }

    #[test]
    fn a_blocking_wait_is_done_on_the_waiting_thread() {
        let gpu = Gpu::from_env().expect("a wgpu adapter");
        let poller = Poller::new(gpu.device()).expect("the polling thread starts");
        gpu.queue().submit([]);
        block_on(async {
            let done = poller.work_done(gpu.queue());
            assert!(!counted(&done), "a blocking wait asked the polling thread");
            done.await;
        });
        assert_eq!(poller.shared.lock().pending, 0);
    }

    #[test]
    fn an_async_wait_is_left_to_the_polling_thread() {
        let gpu = Gpu::from_env().expect("a wgpu adapter");
        let poller = Poller::new(gpu.device()).expect("the polling thread starts");
        gpu.queue().submit([]);
        let done = poller.work_done(gpu.queue());
        assert!(
            counted(&done),
            "an async wait was not given to the polling thread"
        );
        pollster::block_on(done);
        assert_eq!(poller.shared.lock().pending, 0);
    }
}
