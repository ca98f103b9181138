//! The async forms of the GPU calls: they finish on an executor that never polls the device
//! and sleeps until its waker is called, and they return what the blocking forms return.
mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{gpu, random_array, random_weights};
use lstm_wgpu::gpu::GpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::stream::{LstmStream, StreamRequest};
use lstm_wgpu::{GradRequest, Lstm, LstmConfig, Upstream};

/// A waker that sends on a channel.
struct Signal(Mutex<mpsc::Sender<()>>);

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        let _ = self.0.lock().unwrap().send(());
    }
}

/// Runs `fut` to completion on this thread, which between polls only waits for the waker (at
/// most a minute: a future nobody wakes fails the test).
fn run_woken<T>(fut: impl Future<Output = T>) -> T {
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(Mutex::new(tx))));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the future was never woken");
    }
}

fn model() -> (GpuLstm, Array3<f32>) {
    let config = LstmConfig::new(16, 96, 2).unwrap();
    let lstm = GpuLstm::new(&gpu(), &random_weights(config, 21, 1.0)).unwrap();
    (lstm, random_array((8, 40, 16), 22, -1.0, 1.0))
}

#[test]
fn async_forward_finishes_when_woken_and_equals_the_blocking_call() {
    let (mut lstm, x) = model();
    let got = run_woken(lstm.forward_async(x.view(), None));
    let want = lstm.forward(x.view(), None).unwrap();
    assert_eq!(got.unwrap(), want);
}

#[test]
fn async_training_calls_finish_when_woken_and_equal_the_blocking_calls() {
    let (mut lstm, x) = model();
    let up = Upstream {
        dy: Some(random_array((8, 40, 96), 23, -1.0, 1.0)),
        ..Default::default()
    };
    let got = run_woken(lstm.forward_backward_async(x.view(), None, &up, GradRequest::ALL));
    let want = lstm
        .forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap();
    assert_eq!(got.unwrap(), want);

    let (out, tape) = run_woken(lstm.forward_train_async(x.view(), None)).unwrap();
    let grads = run_woken(lstm.backward_async(&tape, &up, GradRequest::ALL));
    assert_eq!(grads.unwrap(), want.1);
    assert_eq!(out, want.0);

    let weights = run_woken(lstm.weights_async());
    assert_eq!(weights.unwrap(), lstm.weights().unwrap());
}

#[test]
fn async_stream_pushes_finish_when_woken_and_equal_blocking_pushes() {
    let (lstm, x) = model();
    let (mut a, mut b) = (lstm.stream(8).unwrap(), lstm.stream(8).unwrap());
    for t in 0..5 {
        let chunk = x.slice(lstm_wgpu::ndarray::s![.., t * 8..(t + 1) * 8, ..]);
        let got = run_woken(a.push_async(chunk, StreamRequest::ALL));
        let want = b.push(chunk, StreamRequest::ALL).unwrap();
        assert_eq!(got.unwrap(), want, "push {t}");
    }
}

#[test]
fn async_training_steps_finish_when_woken_and_equal_blocking_steps() {
    use lstm_wgpu::train::{
        ClassifierConfig, ClassifierWeights, GpuTrainer, LrSchedule, Optimizer, TrainConfig,
        Trainer,
    };
    let model = ClassifierConfig::new(6, 16, 1, 3).unwrap();
    let weights = ClassifierWeights::init(model, 4, None);
    let config = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(1.0),
        schedule: LrSchedule::constant(),
    };
    let mut a = GpuTrainer::new(&gpu(), &weights, config, None).unwrap();
    let mut b = GpuTrainer::new(&gpu(), &weights, config, None).unwrap();
    let x: Array3<f32> = random_array((4, 7, 6), 24, -1.0, 1.0);
    let labels = [0u8, 2, 1, 2];
    // More steps than the trainer keeps in flight, so the async throttle waits too.
    for step in 0..5 {
        let report = step % 2 == 0;
        let got = run_woken(a.step_async(x.view(), &labels, report)).unwrap();
        let want = b.step(x.view(), &labels, report).unwrap();
        assert_eq!(got, want, "step {step}");
    }
    let data =
        lstm_wgpu::data::SequenceDataset::new("tiny", x.clone(), labels.to_vec(), 3).unwrap();
    let got = run_woken(a.evaluate_async(&data, 3)).unwrap();
    assert_eq!(got, b.evaluate(&data, 3).unwrap());
    assert_eq!(run_woken(a.weights_async()).unwrap(), b.weights().unwrap());
    assert_eq!(
        run_woken(a.optimizer_state_async()).unwrap(),
        b.optimizer_state().unwrap()
    );
    assert_eq!(
        run_woken(a.gradients_async()).unwrap(),
        b.gradients().unwrap()
    );
}

#[test]
fn a_call_dropped_before_its_readback_leaves_the_model_usable() {
    // Whether the readback is still pending at the first poll depends on the adapter (OpenGL
    // drivers may run the whole submit before it returns) and on how soon the polling thread
    // sees it done, so the call is dropped after its first poll until one drop found it
    // pending; every drop, pending or not, must leave the model usable. Even where a submit
    // finishes at once, the polling thread wins the race only part of the time (about 2 runs in
    // 5 on llvmpipe's OpenGL), so 20 tries without a pending one means it never lost it.
    const TRIES: usize = 20;
    let config = LstmConfig::new(32, 256, 1).unwrap();
    let mut lstm = GpuLstm::new(&gpu(), &random_weights(config, 25, 1.0)).unwrap();
    let x: Array3<f32> = random_array((32, 180, 32), 26, -1.0, 1.0);
    let fresh = GpuLstm::new(&gpu(), &random_weights(config, 25, 1.0))
        .unwrap()
        .forward(x.view(), None)
        .unwrap();
    let (tx, _rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Signal(Mutex::new(tx))));
    let mut dropped_pending = 0;
    for _ in 0..TRIES {
        {
            let mut fut = pin!(lstm.forward_async(x.view(), None));
            let first = fut.as_mut().poll(&mut Context::from_waker(&waker));
            dropped_pending += usize::from(first.is_pending());
        } // dropped, its mapping pending or not
        let again = lstm.forward(x.view(), None).unwrap();
        assert_eq!(again, fresh);
        if dropped_pending > 0 {
            return;
        }
    }
    panic!("the readback was ready at the first poll in all {TRIES} tries: no mapping to cancel");
}
