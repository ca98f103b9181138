//! Each GPU kernel run on its own (`gpu::ops`) against its CPU twin (`cpu::*`), so a failure names
//! the kernel that broke rather than a whole training step. Shapes are off every tile and
//! workgroup grid.
mod common;

use common::{assert_close, gpu, random_array, runs_subgroups};
use lstm_wgpu::cpu;
use lstm_wgpu::gemm::{GemmSpec, MatrixLayout};
use lstm_wgpu::gpu::kernels::Kernel;
use lstm_wgpu::gpu::{Gpu, Tuning, ops};
use lstm_wgpu::ndarray::{Array2, ArrayView1};
use lstm_wgpu::optim::AdamConfig;
use lstm_wgpu::wgpu::Features;

fn close(what: &str, got: &[f32], want: &[f32], rtol: f64) {
    let (g, w) = (ArrayView1::from(got), ArrayView1::from(want));
    assert_close(what, g.into_dyn(), w.into_dyn(), 0.0, rtol);
}

fn vector(len: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
    random_array::<f32, _>(len, seed, lo, hi).to_vec()
}

mod matmul {
    use super::*;

    /// Runs `spec` on both, from the same buffers (C starts random, so `accumulate` and the
    /// elements outside C are checked too), and compares the whole C buffer.
    fn check(gpu: &Gpu, what: &str, spec: GemmSpec, lens: [usize; 4]) {
        let [a_len, b_len, bias_len, c_len] = lens;
        let (a, b) = (vector(a_len, 1, -1.0, 1.0), vector(b_len, 2, -1.0, 1.0));
        let bias = vector(bias_len, 3, -1.0, 1.0);
        let mut want = vector(c_len, 4, -1.0, 1.0);
        let mut got = want.clone();
        cpu::matmul::matmul(&spec, &a, &b, &bias, &mut want).unwrap();
        ops::matmul(gpu, &spec, &a, &b, &bias, &mut got).unwrap();
        // The kernel sums k in the twin's order but with `fma`, which a device may fuse (one
        // rounding per term fewer; lavapipe rounds the product apart): each of the k terms of magnitude ≤ 1 may round differently by ~2^-24 of
        // the running sum, so the bound grows with k (1e-6 of the largest element up to 40
        // terms, where the error is ~1e-7).
        let rtol = 1e-6 * (spec.k as f64 / 40.0).max(1.0);
        close(&format!("matmul {what}"), &got, &want, rtol);
    }

    #[test]
    fn matmul_matches_its_cpu_twin_for_every_transpose_combination() {
        // 70 rows straddle the staged variant's 64-row output tiles.
        every_transpose(Kernel::Matmul, 70);
    }

    /// [`check`] on `spec`, after making sure it runs on the variant `kernel`: on the tests'
    /// GPU for the subgroup variants, on the same device without subgroups for the others
    /// (which it would otherwise replace).
    fn check_on(kernel: Kernel, what: &str, spec: GemmSpec, lens: [usize; 4]) {
        let gpu = match kernel {
            Kernel::MatmulSubgroup | Kernel::MatmulSubgroupTall | Kernel::MatmulSubgroupNt => gpu(),
            _ => without_subgroups(),
        };
        assert_eq!(
            Kernel::for_gemm(&spec, &gpu),
            kernel,
            "{what}: the variant under test"
        );
        check(&gpu, what, spec, lens);
    }

    /// The tests' GPU running no kernel that uses subgroups.
    fn without_subgroups() -> Gpu {
        let gpu = gpu();
        gpu.with_tuning(Tuning {
            subgroups: false,
            ..gpu.tuning()
        })
    }

    /// Every transpose combination at `m` rows; `n` = 67 and `k` = 19 straddle the column tiles
    /// and K chunks of the variants, and the operands sit at offsets with padded rows.
    fn every_transpose(kernel: Kernel, m: usize) {
        every_transpose_k(kernel, m, 19);
    }

    /// [`every_transpose`] with `k` terms.
    fn every_transpose_k(kernel: Kernel, m: usize, k: usize) {
        let n = 67;
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a_rows, a_cols) = if ta { (k, m) } else { (m, k) };
            let (b_rows, b_cols) = if tb { (n, k) } else { (k, n) };
            let mut a = MatrixLayout::new(5, a_cols + 3);
            let mut b = MatrixLayout::new(7, b_cols + 1);
            a.transposed = ta;
            b.transposed = tb;
            let spec = GemmSpec::new((m, n, k), a, b, MatrixLayout::new(2, n + 4));
            let lens = [
                5 + a_rows * (a_cols + 3),
                7 + b_rows * (b_cols + 1),
                0,
                2 + m * (n + 4),
            ];
            let what = format!("{kernel:?} M={m}, transposed A {ta}, B {tb}");
            check_on(kernel, &what, spec, lens);
        }
    }

    #[test]
    fn the_direct_matmul_of_one_row_matches_its_cpu_twin_for_every_transpose_combination() {
        every_transpose(Kernel::MatmulDirect, 1);
    }

    #[test]
    fn the_direct_matmul_of_a_few_rows_matches_its_cpu_twin_for_every_transpose_combination() {
        every_transpose(Kernel::MatmulDirect, 5);
    }

    #[test]
    fn the_largest_direct_and_the_smallest_staged_matmul_match_their_cpu_twin() {
        // The same product on either side of the switch between the variants.
        let m = (1..100)
            .find(|&m| {
                let spec = GemmSpec::new(
                    (m, 8, 8),
                    MatrixLayout::new(0, 8),
                    MatrixLayout::new(0, 8),
                    MatrixLayout::new(0, 8),
                );
                Kernel::for_gemm(&spec, &gpu()) == Kernel::Matmul
            })
            .expect("a row count where the staged variant takes over");
        every_transpose(Kernel::MatmulDirect, m - 1);
        every_transpose(Kernel::Matmul, m);
    }

    /// A bias, accumulation and both at `m` rows on the variant `kernel`.
    fn bias_and_accumulate(kernel: Kernel, m: usize) {
        bias_and_accumulate_k(kernel, m, 40);
    }

    /// [`bias_and_accumulate`] with `k` terms.
    fn bias_and_accumulate_k(kernel: Kernel, m: usize, k: usize) {
        let n = 65;
        let plain = GemmSpec::new(
            (m, n, k),
            MatrixLayout::new(0, k),
            MatrixLayout::new(0, n),
            MatrixLayout::new(0, n),
        );
        let lens = [m * k, k * n, 3 + n, m * n];
        let both = plain.with_bias(3).accumulating(true);
        check_on(kernel, "with a bias", plain.with_bias(3), lens);
        check_on(kernel, "accumulating", plain.accumulating(true), lens);
        check_on(kernel, "with both", both, lens);
    }

    #[test]
    fn the_direct_matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        bias_and_accumulate(Kernel::MatmulDirect, 3);
    }

    /// dW_hh's product: rows b·T + t of a [B, T, ·] tensor for t < T - 1 (A transposed) and
    /// for t ≥ 1 (B, from one row on), for `batch` sequences of `seq` steps, on `kernel`.
    fn row_maps_on_both_operands(kernel: Kernel, batch: usize, seq: usize) {
        row_maps_on_both_operands_h(kernel, batch, seq, 9);
    }

    /// [`row_maps_on_both_operands`] with `h` rows of C (and `4h` columns).
    fn row_maps_on_both_operands_h(kernel: Kernel, batch: usize, seq: usize, h: usize) {
        let spec = GemmSpec::new(
            (h, 4 * h, batch * (seq - 1)),
            MatrixLayout::new(0, h).t().rows(seq - 1, seq),
            MatrixLayout::new(4 * h, 4 * h).rows(seq - 1, seq),
            MatrixLayout::new(0, 4 * h),
        );
        check_on(
            kernel,
            "with row maps",
            spec,
            [batch * seq * h, batch * seq * 4 * h, 0, h * 4 * h],
        );
    }

    #[test]
    fn matmul_matches_its_cpu_twin_with_row_maps_on_both_operands() {
        // Few rows and a short K, but a row map: the staged variant.
        row_maps_on_both_operands(Kernel::Matmul, 5, 7);
    }

    #[test]
    fn the_blocked_matmul_follows_row_maps_across_many_groups_like_its_cpu_twin() {
        // K = 5 · 60 = 300 terms: the row map's groups change 4 times along the blocked loop.
        row_maps_on_both_operands(Kernel::MatmulBlocked, 5, 61);
    }

    #[test]
    fn the_vec4_blocked_matmul_follows_row_maps_like_its_cpu_twin() {
        // 12 rows of C (one tile and half of the next: the clamped vec4 of rows) by 48 columns
        // (lanes past C's last column), all rows of 4 aligned; K = 5 · 60 = 300 terms.
        row_maps_on_both_operands_h(Kernel::MatmulBlockedVec4, 5, 61, 12);
    }

    /// The weight gradients' layout (A transposed) at offsets and padded rows that keep every row
    /// of 4 aligned, plain, with a bias, accumulating and both, on `kernel`: 36 rows and 68
    /// columns straddle the vec4 kernel's 8 x 128 tiles and the subgroup kernel's 32 x 64 (the
    /// last invocation's second 4 columns past C's edge in both).
    fn aligned_bias_and_accumulate(kernel: Kernel) {
        aligned_bias_and_accumulate_m(kernel, 36);
    }

    /// [`aligned_bias_and_accumulate`] with `m` rows.
    fn aligned_bias_and_accumulate_m(kernel: Kernel, m: usize) {
        let (n, k) = (68, 260);
        let plain = GemmSpec::new(
            (m, n, k),
            MatrixLayout::new(4, m + 8).t(),
            MatrixLayout::new(8, n + 4),
            MatrixLayout::new(1, n + 3),
        );
        let lens = [4 + k * (m + 8), 8 + k * (n + 4), 3 + n, 1 + m * (n + 3)];
        check_on(kernel, "plain", plain, lens);
        check_on(kernel, "with a bias", plain.with_bias(3), lens);
        check_on(kernel, "accumulating", plain.accumulating(true), lens);
        let both = plain.with_bias(3).accumulating(true);
        check_on(kernel, "with both", both, lens);
    }

    #[test]
    fn the_vec4_blocked_matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        aligned_bias_and_accumulate(Kernel::MatmulBlockedVec4);
    }

    #[test]
    fn the_subgroup_matmul_follows_row_maps_like_its_cpu_twin() {
        // 36 rows of C (one tile of 32 and a partial one of 4: lanes whose 4 rows are past C's
        // edge load the last 4 inside) by 144 columns (the third 64-column tile has lanes past
        // C's edge); K = 5 · 60 = 300 terms.
        if runs_subgroups() {
            row_maps_on_both_operands_h(Kernel::MatmulSubgroup, 5, 61, 36);
        }
    }

    #[test]
    fn the_subgroup_matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        if runs_subgroups() {
            aligned_bias_and_accumulate(Kernel::MatmulSubgroup);
        }
    }

    #[test]
    fn the_tall_subgroup_matmul_follows_row_maps_like_its_cpu_twin() {
        // 68 rows of C (one tile of 64 and a partial one of 4, in its first group of 32) by 272
        // columns (five 64-column tiles, the last with lanes past C's edge); K = 300 terms.
        if runs_subgroups() {
            row_maps_on_both_operands_h(Kernel::MatmulSubgroupTall, 5, 61, 68);
        }
    }

    #[test]
    fn the_tall_subgroup_matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        // 100 rows: a tile of 64 and one of 36 (its second group of 32 holds 4 rows).
        if runs_subgroups() {
            aligned_bias_and_accumulate_m(Kernel::MatmulSubgroupTall, 100);
        }
    }

    #[test]
    fn the_subgroup_matmul_gives_the_bits_of_the_vec4_blocked_matmul() {
        // The same multiply-adds in the same order: not close, equal. dW_hh's product of the
        // reference classifier's shape, smaller (B10 T28 H32: 128 x 32 x 270), and with 80
        // units (320 x 80: more than one column tile, so 64-row tiles).
        if !runs_subgroups() {
            return;
        }
        for (h, kernel) in [
            (32, Kernel::MatmulSubgroup),
            (80, Kernel::MatmulSubgroupTall),
        ] {
            same_bits_as_vec4(h, kernel);
        }
    }

    /// [`Kernel::MatmulSubgroup`]'s test of bits at `h` units, on `kernel`.
    fn same_bits_as_vec4(h: usize, kernel: Kernel) {
        let (batch, seq) = (10, 28);
        let spec = GemmSpec::new(
            (4 * h, h, batch * (seq - 1)),
            MatrixLayout::new(0, 4 * h).t().rows(seq - 1, seq),
            MatrixLayout::new(h, h).rows(seq - 1, seq),
            MatrixLayout::new(0, h),
        );
        let a = vector(batch * seq * 4 * h, 7, -1.0, 1.0);
        let b = vector(batch * seq * h, 8, -1.0, 1.0);
        let kernels = (kernel, Kernel::MatmulBlockedVec4);
        let (with, without) = with_and_without_subgroups(&spec, (&a, &b), 4 * h * h, kernels);
        if let Some(i) = first_differing_bits(&with, &without) {
            panic!(
                "H {h}: element {i} (row {}, column {}): {kernel:?} {} vs vec4 {}",
                i / h,
                i % h,
                with[i],
                without[i]
            );
        }
    }

    /// `spec` of `a` and `b` into a zeroed C of `c_len` floats, on the tests' GPU and on the same
    /// device without subgroups, after checking that the two run `kernels` (with, without).
    fn with_and_without_subgroups(
        spec: &GemmSpec,
        (a, b): (&[f32], &[f32]),
        c_len: usize,
        (with_kernel, without_kernel): (Kernel, Kernel),
    ) -> (Vec<f32>, Vec<f32>) {
        let mut with = vec![0.0; c_len];
        let mut without = with.clone();
        assert_eq!(Kernel::for_gemm(spec, &gpu()), with_kernel);
        ops::matmul(&gpu(), spec, a, b, &[], &mut with).unwrap();
        let plain = without_subgroups();
        assert_eq!(Kernel::for_gemm(spec, &plain), without_kernel);
        ops::matmul(&plain, spec, a, b, &[], &mut without).unwrap();
        (with, without)
    }

    /// The first element whose bits differ between `x` and `y`.
    fn first_differing_bits(x: &[f32], y: &[f32]) -> Option<usize> {
        x.iter()
            .zip(y)
            .position(|(x, y)| x.to_bits() != y.to_bits())
    }

    /// Backward's input-gradient layout (`A` as rows, `B` transposed, both along `K`) at offsets
    /// and padded rows that keep every vec4 along `K` aligned: 70 rows and 67 columns straddle
    /// the kernel's 32 x 32 tiles (rows and columns past C's edge in the last ones), K = 260.
    fn nt_spec() -> (GemmSpec, [usize; 4]) {
        let (m, n, k) = (70, 67, 260);
        let spec = GemmSpec::new(
            (m, n, k),
            MatrixLayout::new(4, k + 8),
            MatrixLayout::new(8, k + 4).t(),
            MatrixLayout::new(2, n + 4),
        );
        (
            spec,
            [4 + m * (k + 8), 8 + n * (k + 4), 3 + n, 2 + m * (n + 4)],
        )
    }

    #[test]
    fn the_subgroup_matmul_along_k_matches_its_cpu_twin_with_a_bias_and_accumulating() {
        if runs_subgroups() {
            let (plain, lens) = nt_spec();
            check_on(Kernel::MatmulSubgroupNt, "plain", plain, lens);
            check_on(
                Kernel::MatmulSubgroupNt,
                "with a bias",
                plain.with_bias(3),
                lens,
            );
            let both = plain.with_bias(3).accumulating(true);
            check_on(Kernel::MatmulSubgroupNt, "with both", both, lens);
        }
    }

    #[test]
    fn the_subgroup_matmul_along_k_gives_the_bits_of_the_blocked_matmul() {
        // The same multiply-adds in the same order: not close, equal.
        if !runs_subgroups() {
            return;
        }
        let (spec, [a_len, b_len, _, c_len]) = nt_spec();
        let (a, b) = (vector(a_len, 5, -1.0, 1.0), vector(b_len, 6, -1.0, 1.0));
        let kernels = (Kernel::MatmulSubgroupNt, Kernel::MatmulBlocked);
        let (with, without) = with_and_without_subgroups(&spec, (&a, &b), c_len, kernels);
        if let Some(i) = first_differing_bits(&with, &without) {
            panic!(
                "element {i}: subgroup {} vs blocked {}",
                with[i], without[i]
            );
        }
    }

    #[test]
    fn a_product_along_k_out_of_line_runs_the_blocked_matmul() {
        // nt_spec with one offset, leading dimension or K moved off a multiple of 4 each.
        let (spec, _) = nt_spec();
        let mut moved = vec![
            GemmSpec { k: 259, ..spec },
            GemmSpec {
                a: MatrixLayout::new(5, spec.a.ld),
                ..spec
            },
            GemmSpec {
                a: MatrixLayout::new(4, 270),
                ..spec
            },
            GemmSpec {
                b: MatrixLayout::new(9, spec.b.ld).t(),
                ..spec
            },
            GemmSpec {
                b: MatrixLayout::new(8, 266).t(),
                ..spec
            },
        ];
        // And B not transposed (the forward layout).
        moved.push(GemmSpec {
            b: MatrixLayout::new(8, 68),
            ..spec
        });
        let gpu = gpu().with_tuning(Tuning {
            subgroups: true,
            ..gpu().tuning()
        });
        for s in moved {
            assert_ne!(
                Kernel::for_gemm(&s, &gpu),
                Kernel::MatmulSubgroupNt,
                "{s:?}"
            );
        }
        if gpu.tuning().subgroups {
            assert_eq!(Kernel::for_gemm(&spec, &gpu), Kernel::MatmulSubgroupNt);
        }
    }

    #[test]
    fn a_device_runs_the_subgroup_matmul_exactly_where_its_subgroups_are_8_wide() {
        let gpu = gpu();
        let info = gpu.adapter_info();
        let eight = gpu.device().features().contains(Features::SUBGROUP)
            && info.subgroup_min_size == 8
            && info.subgroup_max_size == 8;
        assert_eq!(gpu.tuning().subgroups, eight, "{}", gpu.describe());
        // Asking for it changes nothing where the device cannot run it.
        let asked = gpu.with_tuning(Tuning {
            subgroups: true,
            ..gpu.tuning()
        });
        assert_eq!(asked.tuning().subgroups, eight, "{}", gpu.describe());
        // The weight gradients' product runs on it exactly there.
        let spec = GemmSpec::new(
            (128, 32, 300),
            MatrixLayout::new(0, 128).t(),
            MatrixLayout::new(0, 32),
            MatrixLayout::new(0, 32),
        );
        let want = match eight {
            true => Kernel::MatmulSubgroup,
            false => Kernel::MatmulBlockedVec4,
        };
        assert_eq!(Kernel::for_gemm(&spec, &asked), want);
    }

    #[test]
    fn a_product_with_one_row_of_4_out_of_line_runs_the_scalar_blocked_matmul() {
        // The aligned product above with one of the six sizes moved off a multiple of 4 each.
        let (m, n, k) = (20, 68, 260);
        let spec = |m: usize, n: usize, a_off: usize, lda: usize, b_off: usize, ldb: usize| {
            GemmSpec::new(
                (m, n, k),
                MatrixLayout::new(a_off, lda).t(),
                MatrixLayout::new(b_off, ldb),
                MatrixLayout::new(0, n),
            )
        };
        assert_eq!(
            Kernel::for_gemm(&spec(m, n, 4, 28, 8, 72), &without_subgroups()),
            Kernel::MatmulBlockedVec4
        );
        for (what, s) in [
            ("M", spec(m + 1, n, 4, 28, 8, 72)),
            ("N", spec(m, n + 1, 4, 28, 8, 72)),
            ("A's offset", spec(m, n, 5, 28, 8, 72)),
            ("A's rows", spec(m, n, 4, 29, 8, 72)),
            ("B's offset", spec(m, n, 4, 28, 9, 72)),
            ("B's rows", spec(m, n, 4, 28, 8, 73)),
        ] {
            let lens = [
                s.a.offset + k * s.a.ld,
                s.b.offset + k * s.b.ld,
                0,
                s.m * s.n,
            ];
            check_on(Kernel::MatmulBlocked, what, s, lens);
        }
    }

    #[test]
    fn the_blocked_matmul_matches_its_cpu_twin_for_every_transpose_combination() {
        // 70 rows straddle its 8-row tiles; 300 terms are a long K.
        every_transpose_k(Kernel::MatmulBlocked, 70, 300);
    }

    #[test]
    fn the_blocked_matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        bias_and_accumulate_k(Kernel::MatmulBlocked, 13, 260);
    }

    #[test]
    fn the_shortest_blocked_and_the_longest_unblocked_matmul_match_their_cpu_twin() {
        either_side_of_the_blocked_switch(40, Kernel::Matmul);
    }

    #[test]
    fn the_shortest_blocked_and_the_longest_direct_matmul_of_few_rows_match_their_cpu_twin() {
        // With as few rows as the direct variant takes, the blocked one takes over at a
        // shorter K.
        either_side_of_the_blocked_switch(20, Kernel::MatmulDirect);
    }

    /// The same product of `m` rows on either side of the switch to the blocked variant by K:
    /// on `below` at the longest K before it, blocked at the shortest.
    fn either_side_of_the_blocked_switch(m: usize, below: Kernel) {
        let spec = |k| {
            GemmSpec::new(
                (m, 8, k),
                MatrixLayout::new(0, k),
                MatrixLayout::new(0, 8),
                MatrixLayout::new(0, 8),
            )
        };
        let k = (1..2000)
            .find(|&k| Kernel::for_gemm(&spec(k), &gpu()) == Kernel::MatmulBlocked)
            .expect("a K where the blocked variant takes over");
        every_transpose_k(below, m, k - 1);
        every_transpose_k(Kernel::MatmulBlocked, m, k);
    }

    #[test]
    fn matmul_adds_a_bias_and_accumulates_like_its_cpu_twin() {
        bias_and_accumulate(Kernel::Matmul, 33);
    }

    #[test]
    fn matmul_rejects_an_operand_too_short_for_its_layout() {
        let spec = GemmSpec::new(
            (4, 4, 4),
            MatrixLayout::new(0, 4),
            MatrixLayout::new(0, 4),
            MatrixLayout::new(0, 4),
        );
        let mut c = vec![0.0; 16];
        match ops::matmul(&gpu(), &spec, &[0.0; 15], &[0.0; 16], &[], &mut c) {
            Err(lstm_wgpu::Error::Shape { tensor, .. }) => assert_eq!(tensor, "GEMM A"),
            other => panic!("expected a shape error for A, got {other:?}"),
        }
    }
}

mod column_sum {
    use super::*;

    #[test]
    fn column_sum_matches_its_cpu_twin_bit_for_bit() {
        // 1003 rows (not a multiple of the four partial sums) of 130 columns (not a multiple of
        // the 64-wide workgroups), at an offset, into two disjoint ranges of a larger buffer.
        let (rows, cols, in_off) = (1003, 130, 11);
        let input = vector(in_off + rows * cols, 5, -1.0, 1.0);
        let offsets = [3, 3 + cols + 10];
        let mut want = vector(offsets[1] + cols + 2, 6, -1.0, 1.0);
        let mut got = want.clone();
        cpu::column_sum::column_sum(&input, in_off, rows, cols, &mut want, offsets).unwrap();
        ops::column_sum(&gpu(), &input, in_off, rows, cols, &mut got, offsets).unwrap();
        // Same additions in the same order, each correctly rounded: the same bits.
        close("column_sum", &got, &want, 0.0);
    }
}

mod dropout {
    use super::*;
    use lstm_wgpu::Dropout;

    #[test]
    fn dropout_matches_its_cpu_twin_bit_for_bit() {
        // 70001 elements: more than one row of 64-wide workgroups, not a multiple of them.
        let input = vector(70_001, 8, -1.0, 1.0);
        for (p, layer) in [(0.0, 0), (0.25, 1), (0.9, 3)] {
            let d = Dropout::new(p, 17).unwrap().at_pass(1_000_003);
            let mut want = vec![0.0; input.len()];
            cpu::dropout::dropout(&input, &mut want, d.key(layer), d.threshold(), d.scale());
            let got = ops::dropout(&gpu(), &input, &d, layer).unwrap();
            // The same integer hash and one correctly rounded product: the same bits.
            close(&format!("dropout p = {p}"), &got, &want, 0.0);
            let kept = got.iter().filter(|&&v| v != 0.0).count();
            assert!(p == 0.0 || kept < input.len(), "p = {p}: nothing dropped");
        }
    }
}

mod cross_entropy {
    use super::*;

    fn check(rows: usize, classes: usize, labels: Vec<u32>) {
        let logits: Array2<f32> = random_array((rows, classes), 11, -4.0, 4.0);
        let want = cpu::cross_entropy::cross_entropy(logits.view(), &labels).unwrap();
        let (dlogits, [loss_sum, correct, count]) =
            ops::cross_entropy(&gpu(), logits.view(), &labels).unwrap();
        // Counts are exact; the loss and gradient differ by the device's exp (a few ulp).
        assert_eq!(count as usize, want.count, "cross_entropy: count");
        assert_eq!(correct as usize, want.correct, "cross_entropy: correct");
        close(
            "cross_entropy: loss sum",
            &[loss_sum],
            &[want.loss_sum],
            1e-5,
        );
        assert_close(
            "cross_entropy: dlogits",
            dlogits.view().into_dyn(),
            want.dlogits.view().into_dyn(),
            0.0,
            1e-5,
        );
    }

    #[test]
    fn cross_entropy_matches_its_cpu_twin_over_more_rows_than_invocations() {
        // 300 rows: each of the 256 invocations walks more than one row.
        let labels = (0..300).map(|r| (r * 7 % 10) as u32).collect();
        check(300, 10, labels);
    }

    #[test]
    fn cross_entropy_skips_padding_rows_like_its_cpu_twin() {
        let mut labels: Vec<u32> = (0..13).map(|r| (r % 3) as u32).collect();
        labels[4] = 3; // = C: padding
        labels[9] = u32::MAX;
        check(13, 3, labels);
    }
}

mod grad_norm {
    use super::*;

    fn check(len: usize, max_norm: f32) -> f32 {
        let g = vector(len, 21, -1.0, 1.0);
        let norm = cpu::grad_norm::grad_norm([g.as_slice()]);
        let scale = cpu::grad_norm::clip_scale(norm, max_norm);
        let (gpu_norm, gpu_scale) = ops::grad_norm(&gpu(), &g, max_norm).unwrap();
        // The GPU sums squares in f32 (a tree over up to 256 chunks), the twin in f64: relative
        // error ~1e-6 for these lengths.
        close("grad_norm: norm", &[gpu_norm], &[norm], 1e-5);
        close("grad_norm: scale", &[gpu_scale], &[scale], 1e-5);
        scale
    }

    #[test]
    fn grad_norm_matches_its_cpu_twin_with_active_clipping() {
        // ~sqrt(70001 / 3) ≈ 153 > 1: the scale clips.
        assert!(check(70_001, 1.0) < 0.01);
    }

    #[test]
    fn grad_norm_matches_its_cpu_twin_from_one_workgroup_to_every_workgroup() {
        // One gradient; one chunk and a second of one gradient; 256 chunks larger than the
        // least one (the first pass never uses more workgroups).
        for len in [1, 8_193, 2_100_003] {
            check(len, 1.0);
        }
    }

    #[test]
    fn grad_norm_matches_its_cpu_twin_without_clipping() {
        // A bound far above the norm leaves the scale at exactly 1 on both.
        let (_, scale) = ops::grad_norm(&gpu(), &vector(1_000, 3, -1.0, 1.0), 1e6).unwrap();
        assert_eq!(scale, 1.0);
        assert_eq!(check(1_000, 1e6), 1.0);
    }
}

mod adam {
    use super::*;

    /// Five steps of the kernel and its twin from the same parameters and gradients.
    fn run(weight_decay: f32) {
        let len = 1_003;
        let config = AdamConfig {
            lr: 1e-2,
            weight_decay,
            ..AdamConfig::default()
        };
        let (mut p_cpu, mut m_cpu, mut v_cpu) =
            (vector(len, 1, -1.0, 1.0), vec![0.0; len], vec![0.0; len]);
        let (mut p_gpu, mut m_gpu, mut v_gpu) = (p_cpu.clone(), m_cpu.clone(), v_cpu.clone());
        for step in 1..=5 {
            let g = vector(len, 10 + step, -2.0, 2.0);
            cpu::adam::adam(&mut p_cpu, &g, &mut m_cpu, &mut v_cpu, &config, step, 0.5);
            ops::adam(
                &gpu(),
                &mut p_gpu,
                &g,
                &mut m_gpu,
                &mut v_gpu,
                &config,
                step,
                0.5,
            )
            .unwrap();
        }
        // Same formula in f32; WGSL's sqrt and division may be a few ulp off correctly rounded,
        // and a device may fuse the decay's multiply into the update's subtraction (one
        // rounding fewer, ~6e-8 of a parameter of magnitude 1).
        let what = format!("adam (weight decay {weight_decay})");
        close(&format!("{what}: params"), &p_gpu, &p_cpu, 1e-6);
        close(&format!("{what}: exp_avg"), &m_gpu, &m_cpu, 1e-6);
        close(&format!("{what}: exp_avg_sq"), &v_gpu, &v_cpu, 1e-6);
    }

    #[test]
    fn adam_matches_its_cpu_twin_over_five_steps_with_a_clip_scale() {
        run(0.0);
    }

    #[test]
    fn adamw_weight_decay_matches_its_cpu_twin_over_five_steps() {
        // lr·λ = 5e-3: each step shrinks a parameter by ~5e-3 of itself, thousands of times
        // the tolerance, so a kernel that skipped or doubled the decay fails.
        run(0.5);
    }
}

mod sgd {
    use super::*;

    fn run(momentum: f32) {
        let len = 777;
        let mut p_cpu = vector(len, 2, -1.0, 1.0);
        let mut b_cpu = vec![0.0; len];
        let (mut p_gpu, mut b_gpu) = (p_cpu.clone(), b_cpu.clone());
        for step in 0..3 {
            let g = vector(len, 30 + step, -1.0, 1.0);
            cpu::sgd::sgd(&mut p_cpu, &g, &mut b_cpu, 0.1, momentum, 0.25);
            ops::sgd(&gpu(), &mut p_gpu, &g, &mut b_gpu, (0.1, momentum), 0.25).unwrap();
        }
        // Multiplies and adds only; a device may fuse one into an fma (one rounding fewer).
        close(
            &format!("sgd (momentum {momentum}): params"),
            &p_gpu,
            &p_cpu,
            1e-6,
        );
        close(
            &format!("sgd (momentum {momentum}): buffer"),
            &b_gpu,
            &b_cpu,
            1e-6,
        );
    }

    #[test]
    fn sgd_with_momentum_matches_its_cpu_twin() {
        run(0.9);
    }

    #[test]
    fn plain_sgd_matches_its_cpu_twin() {
        run(0.0);
    }
}

mod grid_limits {
    //! Grids larger than a device dispatches along one dimension are split, not refused: the
    //! GEMM spreads its row tiles over z, the arena kernels their workgroups over y.
    use super::*;

    /// A device of the tests' adapter that dispatches at most 3 workgroups per dimension.
    fn narrow_gpu() -> lstm_wgpu::gpu::Gpu {
        let (device, queue) = common::device_with(|adapter| lstm_wgpu::wgpu::Limits {
            max_compute_workgroups_per_dimension: 3,
            ..adapter
        });
        lstm_wgpu::gpu::Gpu::from_device(device, queue).unwrap()
    }

    /// A plain `m x 70 x 9` product on `gpu` against the CPU twin, after checking that `kernel`
    /// computes it there.
    fn plain_on(gpu: &lstm_wgpu::gpu::Gpu, kernel: Kernel, what: &str, m: usize) {
        plain_on_k(gpu, kernel, what, m, 9);
    }

    /// [`plain_on`] with `k` terms.
    fn plain_on_k(gpu: &lstm_wgpu::gpu::Gpu, kernel: Kernel, what: &str, m: usize, k: usize) {
        let n = 70;
        let spec = GemmSpec::new(
            (m, n, k),
            MatrixLayout::new(0, k),
            MatrixLayout::new(0, n),
            MatrixLayout::new(0, n),
        );
        assert_eq!(Kernel::for_gemm(&spec, gpu), kernel, "{what}");
        let (a, b) = (vector(m * k, 5, -1.0, 1.0), vector(k * n, 6, -1.0, 1.0));
        let mut want = vec![0.0; m * n];
        let mut got = vec![0.0; m * n];
        cpu::matmul::matmul(&spec, &a, &b, &[], &mut want).unwrap();
        ops::matmul(gpu, &spec, &a, &b, &[], &mut got).unwrap();
        // As in the matmul tests: fma against separate roundings of k terms of magnitude ≤ 1.
        close(what, &got, &want, 1e-6 * (k as f64 / 40.0).max(1.0));
    }

    #[test]
    fn a_blocked_gemm_with_more_row_tiles_than_one_dimension_holds_matches_its_cpu_twin() {
        // 60 rows are 8 tiles of 8: 3 along y, 3 along z (the last one partly idle).
        plain_on_k(
            &narrow_gpu(),
            Kernel::MatmulBlocked,
            "split blocked GEMM",
            60,
            300,
        );
    }

    #[test]
    fn a_gemm_with_more_row_tiles_than_one_dimension_holds_matches_its_cpu_twin() {
        // 500 rows are 8 tiles of 64: 3 along y, 3 along z (the last one partly idle).
        plain_on(&narrow_gpu(), Kernel::Matmul, "split GEMM", 500);
    }

    #[test]
    fn a_few_row_gemm_whose_direct_grid_would_not_fit_is_staged_and_matches_its_cpu_twin() {
        // 20 rows are 20 one-row tiles of the direct variant, more than 3 per dimension hold.
        plain_on(&gpu(), Kernel::MatmulDirect, "direct on a wide grid", 20);
        plain_on(&narrow_gpu(), Kernel::Matmul, "staged on a narrow grid", 20);
    }

    #[test]
    fn an_optimizer_step_over_more_workgroups_than_one_dimension_holds_matches_its_cpu_twin() {
        // 2 000 elements are 8 workgroups of 256: 3 along x, 3 along y.
        let len = 2_000;
        let mut want = vector(len, 7, -1.0, 1.0);
        let mut got = want.clone();
        let (mut b_want, mut b_got) = (vec![0.0; len], vec![0.0; len]);
        let g = vector(len, 8, -1.0, 1.0);
        cpu::sgd::sgd(&mut want, &g, &mut b_want, 0.1, 0.9, 1.0);
        ops::sgd(&narrow_gpu(), &mut got, &g, &mut b_got, (0.1, 0.9), 1.0).unwrap();
        close("split SGD", &got, &want, 1e-6);
    }

    #[test]
    fn a_gemm_too_wide_for_the_grid_is_a_device_limit_error() {
        // Column tiles are not split: 4 tiles of 64 exceed 3.
        let (m, n, k) = (8, 256, 4);
        let spec = GemmSpec::new(
            (m, n, k),
            MatrixLayout::new(0, k),
            MatrixLayout::new(0, n),
            MatrixLayout::new(0, n),
        );
        let mut c = vec![0.0; m * n];
        let r = ops::matmul(
            &narrow_gpu(),
            &spec,
            &[0.0; 32],
            &vec![0.0; k * n],
            &[],
            &mut c,
        );
        match r {
            Err(lstm_wgpu::Error::DeviceLimit { limit_name, .. }) => {
                assert_eq!(limit_name, "max_compute_workgroups_per_dimension")
            }
            other => panic!("expected DeviceLimit, got {other:?}"),
        }
    }
}

mod peak {
    use super::*;

    /// The chains' tolerance (relative to the largest sum): both sides round each `fma` once; an
    /// adapter that rounds the product apart adds ≤ 2^-24 relative per step, which the chains'
    /// contraction by M = 0.999 keeps below 300 · 2^-24 ≈ 2e-5 over 300 steps.
    const CHAIN_RTOL: f64 = 1e-4;

    #[test]
    fn fma_chains_match_the_cpu_twin_over_a_partial_workgroup() {
        // Five workgroups of 64 and three invocations of a sixth.
        let (n, iters) = (5 * 64 + 3, 300);
        let got = ops::peak_fma_chains(&gpu(), n, iters).unwrap();
        let want = cpu::peak::fma_chains(n, iters);
        close("peak fma_chains", &got, &want, CHAIN_RTOL);
    }

    #[test]
    fn one_step_more_of_the_chains_is_outside_their_tolerance() {
        // So the comparison above catches a kernel that skips a step (or a chain).
        let (a, b) = (
            cpu::peak::fma_chains(70, 300),
            cpu::peak::fma_chains(70, 301),
        );
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let worst = a
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs() as f64));
        assert!(
            worst > 2.0 * CHAIN_RTOL * scale,
            "one step moves the sums by only {worst:e} (scale {scale:e})"
        );
    }

    #[test]
    fn copy_moves_every_element_of_a_partial_workgroup() {
        let src = vector(4 * (3 * 64 + 5), 7, -1.0, 1.0);
        let got = ops::peak_copy(&gpu(), &src).unwrap();
        close("peak copy", &got, &src, 0.0);
    }

    #[test]
    fn copy_of_a_partial_vec4_is_a_shape_error() {
        match ops::peak_copy(&gpu(), &[1.0; 6]) {
            Err(lstm_wgpu::Error::Shape { tensor, .. }) => assert_eq!(tensor, "peak copy source"),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    /// A grid of eighths in [-1, 1]: sums of 16 of them are exact in f32 in any order, so the
    /// shader and the twin must agree to the bit.
    fn eighths(len: usize) -> Vec<f32> {
        vector(len, 11, -8.0, 8.0)
            .iter()
            .map(|v| v.round() / 8.0)
            .collect()
    }

    /// The load probe from storage or from a texture against its twin: 197 columns by 2 bands
    /// of 16 rows, 394 invocations, 6 workgroups of 64 and 10 more.
    fn load_sums_match_the_cpu_twin(texture: bool) {
        let (width, iters) = (3 * 64 + 5, 16);
        let grid = eighths(4 * width * 2 * iters as usize);
        let got = ops::peak_load(&gpu(), &grid, width, iters, texture).unwrap();
        let want = cpu::peak::load_sums(&grid, width, iters as usize);
        close(&format!("peak load, texture {texture}"), &got, &want, 0.0);
    }

    #[test]
    fn storage_loads_sum_every_element_of_their_column_band_over_a_partial_workgroup() {
        load_sums_match_the_cpu_twin(false);
    }

    #[test]
    fn texture_loads_sum_every_element_of_their_column_band_over_a_partial_workgroup() {
        load_sums_match_the_cpu_twin(true);
    }

    #[test]
    fn a_load_grid_of_a_partial_band_is_a_shape_error() {
        // 3 rows of 5 columns cannot be cut into bands of 2 rows.
        match ops::peak_load(&gpu(), &[1.0; 4 * 5 * 3], 5, 2, true) {
            Err(lstm_wgpu::Error::Shape { tensor, .. }) => assert_eq!(tensor, "peak load grid"),
            other => panic!("expected a shape error, got {other:?}"),
        }
    }

    #[test]
    fn measured_peak_figures_are_finite_and_positive() {
        let p = gpu().measure_peak().unwrap();
        for (name, v) in [
            ("fma_gflops", p.fma_gflops),
            ("copy_gbs", p.copy_gbs),
            ("storage_load_gbs", p.storage_load_gbs),
            ("texture_load_gbs", p.texture_load_gbs),
            ("dispatch_us", p.dispatch_us),
            ("submit_us", p.submit_us),
        ] {
            assert!(v.is_finite() && v > 0.0, "{name} = {v} ({p})");
        }
    }
}
