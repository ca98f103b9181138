//! The GPU forward pass against the CPU reference, on shapes that are not multiples of any tile.
mod common;

use common::{
    assert_close, gpu, gpu_tuned_as_hardware, gpu_tuned_as_software,
    gpu_tuned_as_software_with_subgroups, gpu_tuned_as_software_without_texels, random_array,
    random_state, random_weights, runs_subgroups,
};
use lstm_wgpu::Lstm;
use lstm_wgpu::LstmConfig;
use lstm_wgpu::cpu;
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, GpuLstm, Tuning};
use lstm_wgpu::ndarray::Array3;

/// Runs CPU and GPU forward on one shape and compares y, h_n, c_n.
fn compare(b: usize, t: usize, i: usize, h: usize, layers: usize, with_state: bool) {
    compare_on(&gpu(), b, t, i, h, layers, with_state)
}

/// [`compare`] on `gpu` (a tuning of the tests' GPU).
fn compare_on(gpu: &Gpu, b: usize, t: usize, i: usize, h: usize, layers: usize, with_state: bool) {
    let config = LstmConfig::new(i, h, layers).unwrap();
    let w = random_weights(config, 7 + h as u64, 2.0);
    let x: Array3<f32> = random_array((b, t, i), 3, -1.0, 1.0);
    let state = with_state.then(|| random_state(&config, b, 5));
    let want = cpu::lstm::forward(&w, x.view(), state.as_ref()).unwrap();
    let mut lstm = GpuLstm::new(gpu, &w).unwrap();
    let got = lstm.forward(x.view(), state.as_ref()).unwrap();
    let step = Kernel::for_forward_step(b, h, gpu);
    let what = format!("B={b} T={t} I={i} H={h} L={layers} state={with_state} ({step:?})");
    // Both paths compute in f32 with the same formulas; they differ in summation order (the GPU
    // sums in chunks of 16) and in exp (the device's vs a polynomial within 2 ulp), a few ulp
    // per step that the recurrence carries along. lavapipe lands within 3e-7 of the largest
    // magnitude; 1e-5 leaves room for GPUs with looser exp while a wrong term shifts results by
    // percent.
    let (atol, rtol) = (0.0, 1e-5);
    assert_close(
        &format!("{what} y"),
        got.y.view().into_dyn(),
        want.y.view().into_dyn(),
        atol,
        rtol,
    );
    assert_close(
        &format!("{what} h_n"),
        got.h_n.view().into_dyn(),
        want.h_n.view().into_dyn(),
        atol,
        rtol,
    );
    assert_close(
        &format!("{what} c_n"),
        got.c_n.view().into_dyn(),
        want.c_n.view().into_dyn(),
        atol,
        rtol,
    );
}

#[test]
fn matches_cpu_on_an_odd_shape() {
    compare(3, 5, 7, 9, 1, false);
}

#[test]
fn matches_cpu_with_initial_state() {
    compare(3, 5, 7, 9, 1, true);
}

#[test]
fn matches_cpu_with_batch_of_one() {
    compare(1, 6, 4, 5, 1, true);
}

#[test]
fn matches_cpu_with_one_hidden_unit() {
    compare(4, 5, 3, 1, 1, true);
}

#[test]
fn matches_cpu_with_one_timestep() {
    compare(2, 1, 5, 6, 1, true);
}

#[test]
fn the_staged_step_matches_cpu_across_tile_boundaries() {
    // B = 20 and H = 33 straddle the 16-wide step tiles; 4H = 132 and B·T = 140 the 64-wide
    // GEMM tiles.
    let gpu = gpu_tuned_as_hardware();
    assert_eq!(
        Kernel::for_forward_step(20, 33, &gpu),
        Kernel::LstmForwardStep
    );
    compare_on(&gpu, 20, 7, 19, 33, 1, true);
}

#[test]
fn the_direct_step_matches_cpu_across_tile_boundaries() {
    // B = 10 straddles the 8 rows of each invocation (a full tile and a partial one), H = 33
    // the 32 units of a workgroup (and the 16 invocations, each owning two units); the second
    // layer projects an input of H.
    let gpu = gpu_tuned_as_software_without_texels();
    assert_eq!(
        Kernel::for_forward_step(10, 33, &gpu),
        Kernel::LstmForwardStepDirect
    );
    compare_on(&gpu, 10, 7, 19, 33, 2, true);
}

#[test]
fn the_direct_texel_step_matches_cpu_across_tile_boundaries() {
    // As above, with the weights read from the layers' textures (19 + 33 and 33 + 33 rows).
    let gpu = gpu_tuned_as_software();
    assert_eq!(
        Kernel::for_forward_step(10, 33, &gpu),
        Kernel::LstmForwardStepDirectTexels
    );
    compare_on(&gpu, 10, 7, 19, 33, 2, true);
}

#[test]
fn the_subgroup_step_matches_cpu_across_tile_boundaries() {
    // The direct step's tile (64 units by 8 rows), each lane loading one row's inputs: B = 10
    // leaves a second tile of 2 rows (lanes 2-7 load a clamped copy and store nothing), H = 33
    // straddles nothing but leaves most units of the tile idle; two layers.
    if !runs_subgroups() {
        return;
    }
    for texels in [false, true] {
        let gpu = gpu_tuned_as_software_with_subgroups(texels);
        let want = match texels {
            false => Kernel::LstmForwardStepSubgroup,
            true => Kernel::LstmForwardStepSubgroupTexels,
        };
        assert_eq!(Kernel::for_forward_step(10, 33, &gpu), want);
        compare_on(&gpu, 10, 7, 19, 33, 2, true);
    }
}

#[test]
fn the_narrow_subgroup_step_serves_layers_of_at_most_32_units_and_matches_cpu() {
    // 32 units fill the narrow tile (4 per invocation); 30 leave invocations 6 and 7 a clamped
    // copy in their last unit; 33 take the wide tile. B = 10: a full tile of rows and a
    // partial one.
    if !runs_subgroups() {
        return;
    }
    for texels in [false, true] {
        let gpu = gpu_tuned_as_software_with_subgroups(texels);
        let (narrow, wide) = match texels {
            false => (
                Kernel::LstmForwardStepSubgroupNarrow,
                Kernel::LstmForwardStepSubgroup,
            ),
            true => (
                Kernel::LstmForwardStepSubgroupNarrowTexels,
                Kernel::LstmForwardStepSubgroupTexels,
            ),
        };
        for (h, want) in [(32, narrow), (30, narrow), (33, wide)] {
            assert_eq!(Kernel::for_forward_step(10, h, &gpu), want, "H = {h}");
            compare_on(&gpu, 10, 5, 7, h, 2, true);
        }
    }
}

#[test]
fn the_subgroup_step_gives_the_bits_of_the_direct_step() {
    // The same sums in the same order, only loaded differently: equal, not close. 70 units
    // straddle the 64-unit tile, 30 the narrow one's 32; 13 rows a full tile and a partial one.
    if !runs_subgroups() {
        return;
    }
    // The narrow tile's layer (30 units) too.
    for (h, texels) in [(70, false), (70, true), (30, false), (30, true)] {
        let config = LstmConfig::new(19, h, 2).unwrap();
        let w = random_weights(config, 6, 1.0);
        let x: Array3<f32> = random_array((13, 6, 19), 7, -1.0, 1.0);
        let with = gpu_tuned_as_software_with_subgroups(texels);
        let without = with.with_tuning(Tuning {
            subgroups: false,
            ..with.tuning()
        });
        assert_ne!(
            Kernel::for_forward_step(13, h, &with),
            Kernel::for_forward_step(13, h, &without)
        );
        let a = GpuLstm::new(&with, &w)
            .unwrap()
            .forward(x.view(), None)
            .unwrap();
        let b = GpuLstm::new(&without, &w)
            .unwrap()
            .forward(x.view(), None)
            .unwrap();
        let differ =
            a.y.iter()
                .zip(&b.y)
                .position(|(p, q)| p.to_bits() != q.to_bits());
        if let Some(i) = differ {
            let (p, q) = (a.y.as_slice().unwrap()[i], b.y.as_slice().unwrap()[i]);
            panic!("H {h}, texels {texels}: y element {i}: subgroup {p} vs direct {q}");
        }
    }
}

#[test]
fn the_tall_step_serves_batches_of_32_rows_and_more_and_matches_cpu() {
    // Tiles of 32 rows by 8 units. B = 70: two full row tiles and one of 6 (its lanes 2-7 load
    // clamped copies of the last row); H = 33: four unit tiles and one of a single unit (lanes
    // 1-7 compute copies and store nothing). With h0/c0 (the first step reads h0 row by row) and
    // two layers (the second reads the first's output as x_t). 31 rows keep the 8-row tile.
    // 19 inputs are read one by one, 24 four to a load.
    if !runs_subgroups() {
        return;
    }
    for texels in [false, true] {
        let gpu = gpu_tuned_as_software_with_subgroups(texels);
        let (tall, inference, short) = match texels {
            false => (
                Kernel::LstmForwardStepTall,
                Kernel::LstmForwardStepTallInference,
                Kernel::LstmForwardStepSubgroup,
            ),
            true => (
                Kernel::LstmForwardStepTallTexels,
                Kernel::LstmForwardStepTallInferenceTexels,
                Kernel::LstmForwardStepSubgroupTexels,
            ),
        };
        assert_eq!(Kernel::for_forward_step(31, 33, &gpu), short);
        assert_eq!(Kernel::for_forward_step(32, 33, &gpu), tall);
        assert_eq!(Kernel::for_forward_step(70, 33, &gpu), tall);
        // The inference passes compared here run the twin without the saving code.
        assert_eq!(tall.for_inference(), inference);
        assert_eq!(short.for_inference(), short);
        compare_on(&gpu, 70, 6, 19, 33, 2, true);
        // Four input features to a load (the second layer's 33 one by one).
        compare_on(&gpu, 70, 6, 24, 33, 2, true);
    }
}

#[test]
fn the_tall_steps_give_the_bits_of_the_direct_step() {
    // The direct step's sums in its order, with h_prev read from the transposed copy the step
    // before wrote: equal, not close, in inference (the twin without the saving code) and in
    // training. 40 rows (a full row tile and a partial one), 70 units (a partial unit tile,
    // and 2 past the last four of k), h0/c0 and two layers.
    if !runs_subgroups() {
        return;
    }
    // 19 inputs are read one by one, 20 four to a load (the second layer's 70 one by one).
    for (texels, input) in [(false, 19), (true, 19), (false, 20), (true, 20)] {
        let config = LstmConfig::new(input, 70, 2).unwrap();
        let w = random_weights(config, 6, 1.0);
        let x: Array3<f32> = random_array((40, 6, input), 7, -1.0, 1.0);
        let state = random_state(&config, 40, 8);
        let with = gpu_tuned_as_software_with_subgroups(texels);
        let without = with.with_tuning(Tuning {
            subgroups: false,
            ..with.tuning()
        });
        let tall = match texels {
            false => Kernel::LstmForwardStepTall,
            true => Kernel::LstmForwardStepTallTexels,
        };
        assert_eq!(Kernel::for_forward_step(40, 70, &with), tall);
        let (mut tall_model, mut direct) = (
            GpuLstm::new(&with, &w).unwrap(),
            GpuLstm::new(&without, &w).unwrap(),
        );
        let a = tall_model.forward(x.view(), Some(&state)).unwrap();
        let b = direct.forward(x.view(), Some(&state)).unwrap();
        let (a_train, _) = tall_model.forward_train(x.view(), Some(&state)).unwrap();
        let (b_train, _) = direct.forward_train(x.view(), Some(&state)).unwrap();
        for (name, p, q) in [
            ("y", a.y.view().into_dyn(), b.y.view().into_dyn()),
            ("h_n", a.h_n.view().into_dyn(), b.h_n.view().into_dyn()),
            ("c_n", a.c_n.view().into_dyn(), b.c_n.view().into_dyn()),
            (
                "training y",
                a_train.y.view().into_dyn(),
                b_train.y.view().into_dyn(),
            ),
            (
                "training h_n",
                a_train.h_n.view().into_dyn(),
                b_train.h_n.view().into_dyn(),
            ),
            (
                "training c_n",
                a_train.c_n.view().into_dyn(),
                b_train.c_n.view().into_dyn(),
            ),
        ] {
            let differ = p
                .iter()
                .zip(q.iter())
                .position(|(p, q)| p.to_bits() != q.to_bits());
            if let Some(i) = differ {
                let (p, q) = (p.iter().nth(i).unwrap(), q.iter().nth(i).unwrap());
                panic!("I {input}, texels {texels}: {name} element {i}: tall {p} vs direct {q}");
            }
        }
    }
}

#[test]
fn the_small_batch_step_matches_cpu_across_its_unit_tiles() {
    // H = 70 straddles the 64 units of a small-batch workgroup (and the 32 invocations, each
    // owning two units).
    let gpu = gpu_tuned_as_software_without_texels();
    assert_eq!(
        Kernel::for_forward_step(1, 70, &gpu),
        Kernel::LstmForwardStepSmallBatch
    );
    compare_on(&gpu, 1, 5, 6, 70, 1, true);
}

#[test]
fn the_small_batch_texel_step_matches_cpu_across_its_unit_tiles() {
    // Its tile is 128 units by 16 invocations, each owning 8: H = 150 leaves 22 units to the
    // second workgroup, two for some invocations and one for the others.
    let gpu = gpu_tuned_as_software();
    assert_eq!(
        Kernel::for_forward_step(1, 150, &gpu),
        Kernel::LstmForwardStepSmallBatchTexels
    );
    compare_on(&gpu, 1, 5, 6, 150, 1, true);
}

#[test]
fn weights_set_after_a_forward_reach_the_texel_steps() {
    // The textures are a copy of the parameters: set_weights must rewrite them.
    let gpu = gpu_tuned_as_software();
    assert_eq!(
        Kernel::for_forward_step(2, 17, &gpu),
        Kernel::LstmForwardStepSmallBatchTexels
    );
    let config = LstmConfig::new(5, 17, 2).unwrap();
    let (first, second) = (
        random_weights(config, 1, 2.0),
        random_weights(config, 2, 2.0),
    );
    let x: Array3<f32> = random_array((2, 4, 5), 3, -1.0, 1.0);
    let mut lstm = GpuLstm::new(&gpu, &first).unwrap();
    lstm.forward(x.view(), None).unwrap();
    lstm.set_weights(&second).unwrap();
    let got = lstm.forward(x.view(), None).unwrap();
    let want = cpu::lstm::forward(&second, x.view(), None).unwrap();
    // The tolerance of `compare_on`; the first weights' outputs differ by tens of percent.
    assert_close(
        "y after set_weights",
        got.y.view().into_dyn(),
        want.y.view().into_dyn(),
        0.0,
        1e-5,
    );
}

#[test]
fn a_layer_too_tall_for_a_texture_reads_its_weights_from_storage() {
    // I + H rows beyond max_texture_dimension_2d: the model keeps no textures and runs the
    // storage variant, with the same results. A device of its own, as its profile covers every
    // dispatch of the device.
    let tuning = Tuning::for_device_type(lstm_wgpu::wgpu::DeviceType::Cpu);
    let gpu = Gpu::from_env().unwrap().with_tuning(tuning);
    let i = gpu.limits().max_texture_dimension_2d as usize;
    let config = LstmConfig::new(i, 2, 1).unwrap();
    let w = random_weights(config, 4, 1.0);
    let x: Array3<f32> = random_array((1, 2, i), 5, -1.0, 1.0);
    let mut lstm = GpuLstm::new(&gpu, &w).unwrap();
    let (got, profile) = gpu.profile(|| lstm.forward(x.view(), None)).unwrap();
    let kernels: Vec<Kernel> = profile.rows.iter().map(|r| r.kernel).collect();
    assert_eq!(kernels, [Kernel::LstmForwardStepSmallBatch], "{profile:?}");
    let want = cpu::lstm::forward(&w, x.view(), None).unwrap();
    // A sum of I terms per gate: the summation orders differ over many more terms than in
    // `compare_on`, so the tolerance is relative to that sum's scale (√I · |w| · |x|, ~1).
    assert_close(
        "y",
        got.unwrap().y.view().into_dyn(),
        want.y.view().into_dyn(),
        1e-5,
        1e-4,
    );
}

#[test]
fn the_small_batch_step_matches_cpu_at_its_largest_batch() {
    let plain = gpu_tuned_as_software_without_texels();
    let largest = (1..100)
        .take_while(|&b| {
            Kernel::for_forward_step(b, 9, &plain) == Kernel::LstmForwardStepSmallBatch
        })
        .last()
        .expect("batches of one take the small-batch step");
    compare_on(&plain, largest, 6, 5, 9, 2, true);
    // One more row and, as a hardware GPU chooses, the staged step takes over; as a software
    // adapter chooses, the 8-row direct step.
    let (hardware, software) = (gpu_tuned_as_hardware(), plain);
    assert_eq!(
        Kernel::for_forward_step(largest + 1, 9, &hardware),
        Kernel::LstmForwardStep
    );
    compare_on(&hardware, largest + 1, 6, 5, 9, 2, true);
    assert_eq!(
        Kernel::for_forward_step(largest + 1, 9, &software),
        Kernel::LstmForwardStepDirect
    );
    compare_on(&software, largest + 1, 6, 5, 9, 2, true);
}

#[test]
fn matches_cpu_with_two_stacked_layers() {
    compare(3, 5, 7, 9, 2, true);
}

#[test]
fn matches_cpu_with_three_stacked_layers() {
    // The middle layer takes its input from a layer and feeds another.
    compare(3, 5, 7, 9, 3, true);
}

#[test]
fn one_model_serves_a_smaller_then_a_larger_batch_like_fresh_ones() {
    // Each new shape reallocates the workspace; the results must not depend on the previous one.
    let config = LstmConfig::new(4, 6, 2).unwrap();
    let w = random_weights(config, 3, 2.0);
    let mut lstm = GpuLstm::new(&gpu(), &w).unwrap();
    for (b, t) in [(5, 4), (2, 3), (7, 6), (5, 4)] {
        let x: Array3<f32> = random_array((b, t, 4), b as u64, -1.0, 1.0);
        let want = cpu::lstm::forward(&w, x.view(), None).unwrap();
        let got = lstm.forward(x.view(), None).unwrap();
        let what = format!("B={b} T={t} after other shapes");
        assert_close(
            &what,
            got.y.view().into_dyn(),
            want.y.view().into_dyn(),
            0.0,
            1e-5,
        );
    }
}

#[test]
fn weights_read_back_exactly_as_uploaded() {
    // The gate-interleaved GPU layout must map back to PyTorch's without touching a bit.
    let config = LstmConfig::new(7, 9, 2).unwrap();
    let w = random_weights(config, 3, 1.0);
    let lstm = GpuLstm::new(&gpu(), &w).unwrap();
    assert_eq!(lstm.weights().unwrap(), w);
}
