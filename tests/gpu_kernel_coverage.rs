//! Every kernel variant the crate can dispatch runs, in this one sweep, inside calls whose
//! results are checked against the CPU: the `nn.LSTM` cases of `gpu_general.rs` under every
//! tuning (forward for training and backward, then inference), classifier training steps with
//! each optimizer, and the GEMMs of shapes the passes do not reach. The device counts the
//! dispatches of each kernel (`Gpu::dispatches_by_kernel`), so a variant added without a test
//! that runs it fails here, by name.
mod common;

use common::gpu_vs_cpu::{Case, RTOL_FWD, cases, gpu_matches_cpu_on_cases, tall_cases};
use common::train_vs_cpu::compare;
use common::{
    assert_close, gpu, gpu_tuned_as_hardware, gpu_tuned_as_software,
    gpu_tuned_as_software_with_subgroups, gpu_tuned_as_software_without_texels, random_array,
    random_weights, runs_subgroups,
};
use lstm_wgpu::cpu::lstm::CpuLstm;
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, GpuLstm};
use lstm_wgpu::ndarray::Array3;
use lstm_wgpu::train::{ClassifierConfig, LrSchedule, Optimizer, TrainConfig};
use lstm_wgpu::{Lstm, LstmConfig};

/// The peak probe's kernels, which compute nothing a model uses: `gpu_kernels.rs` checks those
/// that compute something against their twins (`cpu::peak`), and the empty one has no result.
const PROBE: [Kernel; 5] = [
    Kernel::PeakFma,
    Kernel::PeakCopy,
    Kernel::PeakEmpty,
    Kernel::PeakLoadStorage,
    Kernel::PeakLoadTexture,
];

/// An inference pass (`forward_lengths`, which saves nothing for backward) of each case on
/// `gpu`, its outputs against the CPU's.
fn inference_matches_cpu_on_cases(gpu: &Gpu, tuning: &str, cases: &[Case]) {
    for c in cases {
        let w = random_weights(c.config, 7, 1.5);
        let x: Array3<f32> =
            random_array((c.lengths.len(), c.seq, c.config.input_size), 1, -1.0, 1.0);
        let want = CpuLstm::new(w.clone())
            .unwrap()
            .forward_lengths(x.view(), &c.lengths, None)
            .unwrap();
        let got = GpuLstm::new(gpu, &w)
            .unwrap()
            .forward_lengths(x.view(), &c.lengths, None)
            .unwrap();
        for (name, a, b) in [
            ("y", &got.y, &want.y),
            ("h_n", &got.h_n, &want.h_n),
            ("c_n", &got.c_n, &want.c_n),
        ] {
            let what = format!("{tuning}, {}, inference: {name}", c.name);
            assert_close(
                &what,
                a.view().into_dyn(),
                b.view().into_dyn(),
                0.0,
                RTOL_FWD,
            );
        }
    }
}

/// A single-layer case of `b` rows of full length `seq` with `h` units.
fn plain(name: &'static str, b: usize, seq: usize, h: usize) -> Case {
    Case {
        name,
        config: LstmConfig::new(5, h, 1).unwrap(),
        lengths: vec![seq; b],
        seq,
        dropout: None,
    }
}

#[test]
fn every_kernel_variant_runs_in_a_call_checked_against_the_cpu() {
    let mut tunings = vec![
        ("staged", gpu_tuned_as_hardware()),
        ("direct, textures", gpu_tuned_as_software()),
        ("direct, storage", gpu_tuned_as_software_without_texels()),
    ];
    let subgroups = runs_subgroups();
    if subgroups {
        tunings.push((
            "subgroups, textures",
            gpu_tuned_as_software_with_subgroups(true),
        ));
        tunings.push((
            "subgroups, storage",
            gpu_tuned_as_software_with_subgroups(false),
        ));
    }
    // Beside the cases of `gpu_general.rs`: a batch of 3 (at most `Tuning::SMALL_BATCH` rows,
    // above the one-row steps), a wide layer of a few rows, and a weight gradient over 256
    // rows and steps into more than 64 units (the tall subgroup GEMM's `dW_hh`).
    let extra = || {
        vec![
            plain("3 rows", 3, 3, 9),
            plain("6 rows, 40 units", 6, 3, 40),
            plain("64 rows, 68 units", 64, 4, 68),
        ]
    };
    for (tuning, gpu) in &tunings {
        let mut all = cases();
        all.extend(tall_cases());
        all.extend(extra());
        gpu_matches_cpu_on_cases(gpu, tuning, all);
        let mut inference = tall_cases();
        inference.extend(extra());
        inference_matches_cpu_on_cases(gpu, tuning, &inference);
    }
    let adam = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        clip_norm: Some(0.05),
        schedule: LrSchedule::constant(),
    };
    let sgd = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        clip_norm: None,
        schedule: LrSchedule::constant(),
    };
    for train in [adam, sgd] {
        compare(ClassifierConfig::new(5, 9, 1, 4).unwrap(), train, 1);
    }

    let ran = gpu().dispatches_by_kernel();
    let missing: Vec<&str> = Kernel::ALL
        .iter()
        .filter(|k| !PROBE.contains(k) && (subgroups || !k.desc().subgroups))
        .filter(|k| !ran.iter().any(|(r, _)| r == *k))
        .map(|k| k.desc().name)
        .collect();
    assert!(
        missing.is_empty(),
        "kernels no checked call dispatched: {missing:?}"
    );
}
