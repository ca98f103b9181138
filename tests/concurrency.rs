//! One `Gpu` shared by several threads, each with its own model, gives exactly the results of
//! the same calls made one after another; the types an application moves between threads are
//! `Send` and `Sync` (checked when this file compiles).
mod common;

use common::{gpu, random_array, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::train::{CpuTrainer, GpuTrainer};
use lstm_wgpu::{Error, GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, Tape, Upstream};

fn send_and_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn the_types_applications_share_between_threads_are_send_and_sync() {
    send_and_sync::<Gpu>();
    send_and_sync::<GpuLstm>();
    send_and_sync::<CpuLstm<f32>>();
    send_and_sync::<Tape>();
    send_and_sync::<Error>();
    send::<GpuTrainer>();
    send::<CpuTrainer>();
    send::<Box<dyn Lstm + Send>>();
}

/// Forward and backward of model `i` (its own weights and inputs) on `gpu`.
fn run(gpu: &Gpu, i: u64) -> (LstmOutput<f32>, LstmGrads<f32>) {
    let config = LstmConfig::new(5, 7, 2).unwrap();
    let mut lstm = GpuLstm::new(gpu, &random_weights(config, 100 + i, 1.0)).unwrap();
    let x: Array3<f32> = random_array((3, 6, 5), 200 + i, -1.0, 1.0);
    let up = Upstream {
        dy: Some(random_array((3, 6, 7), 300 + i, -1.0, 1.0)),
        ..Default::default()
    };
    lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
        .unwrap()
}

#[test]
fn models_on_one_gpu_in_four_threads_match_the_same_calls_made_in_turn() {
    let gpu = gpu();
    let alone: Vec<_> = (0..4).map(|i| run(&gpu, i)).collect();
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let gpu = gpu.clone();
                s.spawn(move || run(&gpu, i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every reduction runs in a fixed order, so sharing the device changes no bit.
    for (i, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.0, b.0, "model {i}: outputs");
        assert_eq!(a.1, b.1, "model {i}: gradients");
    }
}
