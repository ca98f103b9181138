//! Inference on the CPU keeps no per-step activations: beyond its output `y`, a forward pass
//! allocates the packed weights and one state per layer, however long the sequence. Measured with
//! a counting global allocator (peak bytes live during the call).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{random_array, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{Lstm, LstmConfig};

/// The system allocator, counting the bytes live now and the most live since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Tests in this binary measure one at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Runs `f` and returns its result and the most bytes live during it beyond those live before.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    (r, PEAK.load(Ordering::SeqCst) - base)
}

const CONFIG: (usize, usize, usize) = (8, 16, 2); // I, H, L

fn model() -> CpuLstm {
    let (i, h, l) = CONFIG;
    CpuLstm::new(random_weights(LstmConfig::new(i, h, l).unwrap(), 3, 1.0)).unwrap()
}

/// Peak bytes of a fresh model's inference over `t` steps of one sequence, beyond its `y`.
fn inference_bytes_beyond_y(t: usize) -> usize {
    let x: Array3<f32> = random_array((1, t, CONFIG.0), 4, -1.0, 1.0);
    let mut lstm = model();
    let (out, peak) = peak_during(|| lstm.forward(x.view(), None).unwrap());
    let y_bytes = out.y.len() * size_of::<f32>();
    assert!(
        peak >= y_bytes,
        "the counter missed y: peak {peak} < {y_bytes}"
    );
    peak - y_bytes
}

#[test]
fn inference_memory_beyond_its_output_does_not_grow_with_the_sequence() {
    let _one_at_a_time = MEASURING.lock().unwrap();
    inference_bytes_beyond_y(10); // thread pool and other first-use allocations
    let short = inference_bytes_beyond_y(2_000); // longer than one window
    let long = inference_bytes_beyond_y(100_000);
    // Packed weights (2 layers × (I_l + H) × 4H floats, ~14 KiB) and buffers for a window of at
    // most 1024 steps of one sequence (per layer 1024 × (4H gates + 2H states) floats, 384 KiB,
    // and layer 0's inputs, 32 KiB): 1 MiB holds it all; a tape of the 100000 steps would be
    // ~70 times that.
    assert!(
        long <= 1024 * 1024,
        "T = 100000: {long} bytes beyond y (T = 2000: {short})"
    );
    // The two threads' scratch buffers are live at once in some windows and not in others, so
    // the peak varies by a few KiB from run to run (3.7 KiB seen); growth with T, even 4 bytes
    // per step, would add hundreds.
    assert!(
        long <= short + 32 * 1024,
        "grew with T: {short} bytes at T = 2000, {long} at T = 100000"
    );
}

#[test]
fn training_keeps_every_step_so_the_counter_sees_the_difference() {
    let _one_at_a_time = MEASURING.lock().unwrap();
    let t = 10_000;
    let x: Array3<f32> = random_array((1, t, CONFIG.0), 5, -1.0, 1.0);
    let mut lstm = model();
    let ((out, _tape), peak) = peak_during(|| lstm.forward_train(x.view(), None).unwrap());
    let y_bytes = out.y.len() * size_of::<f32>();
    // Per step and layer the tape holds h, c [H] and the gates [4H]: 6H floats against y's H.
    assert!(
        peak > 8 * y_bytes,
        "a training forward over {t} steps kept only {peak} bytes (y: {y_bytes})"
    );
}
