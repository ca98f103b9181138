//! The CPU path splits batch rows and GEMM rows across threads without changing a bit: one,
//! two and four threads give identical outputs and gradients.
mod common;

use common::{random_array, random_weights};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::{GradRequest, Lstm, LstmConfig, LstmGrads, LstmOutput, Upstream};

/// Forward and backward in a pool of `threads` threads, at a size where the work is split
/// (64 rows of 28 steps of a 64-unit layer: more than one chunk of rows per thread).
fn run_with_threads(threads: usize) -> (LstmOutput<f32>, LstmGrads<f32>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let config = LstmConfig::new(28, 64, 2).unwrap();
        let mut lstm = CpuLstm::new(random_weights(config, 5, 1.0)).unwrap();
        let x: Array3<f32> = random_array((64, 28, 28), 6, -1.0, 1.0);
        let up = Upstream {
            dy: Some(random_array((64, 28, 64), 7, -1.0, 1.0)),
            ..Default::default()
        };
        lstm.forward_backward(x.view(), None, &up, GradRequest::ALL)
            .unwrap()
    })
}

#[test]
fn one_two_and_four_threads_give_bit_identical_results() {
    let one = run_with_threads(1);
    for threads in [2, 4] {
        let many = run_with_threads(threads);
        assert_eq!(one.0, many.0, "outputs with {threads} threads");
        assert_eq!(one.1, many.1, "gradients with {threads} threads");
    }
}
