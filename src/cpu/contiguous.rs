//! Running slice loops on ndarray views of any memory layout.
//!
//! The step kernels' inner loops work on row-major slices. Every view the crate passes them is
//! row-major already, but a caller may pass any strides (a column-major array, a transposed one,
//! every other column of a wider one). [`with_row_major`] gives the loops row-major slices in
//! every case, so no layout makes them skip their work: a view in standard layout is used in
//! place, any other is copied to a row-major temporary, and the temporaries of outputs are
//! written back afterwards.

use ndarray::{
    Array, ArrayView, ArrayView3, ArrayViewMut, ArrayViewMut3, Axis, CowArray, Dimension,
};

/// Runs `f` on the row-major contents of `inputs` and `outputs` (each in the order given, each
/// slice holding its view's elements in row-major order), then writes back any output that had
/// to be copied. Returns what `f` returns.
pub(crate) fn with_row_major<F, D, T, const R: usize, const W: usize>(
    inputs: [ArrayView<'_, F, D>; R],
    mut outputs: [ArrayViewMut<'_, F, D>; W],
    f: impl FnOnce([&[F]; R], [&mut [F]; W]) -> T,
) -> T
where
    F: Clone,
    D: Dimension,
{
    // `as_standard_layout` borrows a view in standard layout and copies any other.
    let inputs: [CowArray<'_, F, D>; R] = inputs.each_ref().map(|v| v.as_standard_layout());
    let in_slices: [&[F]; R] = std::array::from_fn(|i| {
        inputs[i]
            .as_slice()
            .expect("an array in standard layout is one slice")
    });
    let mut copies: [Option<Array<F, D>>; W] = std::array::from_fn(|i| {
        let view = &outputs[i];
        (!view.is_standard_layout()).then(|| row_major_copy(view.view()))
    });
    let mut slots = outputs
        .iter_mut()
        .zip(copies.iter_mut())
        .map(|(view, copy)| match copy {
            Some(copy) => copy.as_slice_mut(),
            None => view.as_slice_mut(),
        });
    let out_slices: [&mut [F]; W] = std::array::from_fn(|_| {
        slots
            .next()
            .flatten()
            .expect("an array in standard layout is one slice")
    });
    let result = f(in_slices, out_slices);
    for (view, copy) in outputs.iter_mut().zip(copies) {
        if let Some(copy) = copy {
            view.assign(&copy);
        }
    }
    result
}

/// `dst.assign(&src)` for 3-D views of one shape, a run of the innermost axis at a time: with
/// both innermost axes contiguous (swapping time and batch, `[T, B, H]` to `[B, T, H]`, moves
/// rows of `H`) each run is one `copy_from_slice`, which an element-wise assign over permuted
/// axes is not.
///
/// A copy of at least [`PARALLEL_COPY_BYTES`] is split in two along the outer axis, the halves
/// copied on two threads (an inference's `x` and `y` at the large size, 3.3 MiB each, are ~3%
/// of its time on one thread).
pub(crate) fn assign_by_rows<F: Copy + Send + Sync>(
    dst: ArrayViewMut3<'_, F>,
    src: ArrayView3<'_, F>,
) {
    assert_eq!(dst.dim(), src.dim(), "assign_by_rows: shapes differ");
    let outer = dst.dim().0;
    if outer >= 2
        && dst.len() * size_of::<F>() >= PARALLEL_COPY_BYTES
        && rayon::current_num_threads() >= 2
    {
        let (d0, d1) = dst.split_at(Axis(0), outer / 2);
        let (s0, s1) = src.split_at(Axis(0), outer / 2);
        rayon::join(|| copy_rows(d0, s0), || copy_rows(d1, s1));
    } else {
        copy_rows(dst, src);
    }
}

/// From this many bytes, [`assign_by_rows`] copies on two threads.
const PARALLEL_COPY_BYTES: usize = 1 << 20;

/// [`assign_by_rows`] on the calling thread.
fn copy_rows<F: Copy>(mut dst: ArrayViewMut3<'_, F>, src: ArrayView3<'_, F>) {
    for (mut d, s) in dst.outer_iter_mut().zip(src.outer_iter()) {
        for (mut d, s) in d.outer_iter_mut().zip(s.outer_iter()) {
            match (d.as_slice_mut(), s.as_slice()) {
                (Some(d), Some(s)) => d.copy_from_slice(s),
                (_, _) => d.assign(&s),
            }
        }
    }
}

/// A copy of `view` in standard (row-major) layout, whatever the view's strides.
fn row_major_copy<F: Clone, D: Dimension>(view: ArrayView<'_, F, D>) -> Array<F, D> {
    Array::from_shape_vec(view.raw_dim(), view.iter().cloned().collect())
        .expect("as many elements as the shape holds, in logical order")
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, ShapeBuilder, s};

    use super::with_row_major;

    #[test]
    fn slices_are_row_major_whatever_the_views_strides() {
        let a = Array2::from_shape_fn((3, 4), |(r, c)| (r * 4 + c) as f32);
        let mut a_f = Array2::zeros((3, 4).f()); // the same values, column-major
        a_f.assign(&a);
        let mut out = Array2::<f32>::zeros((4, 6));
        with_row_major(
            [a_f.view(), a.t()],
            [out.slice_mut(s![.., ..;2])],
            |[a, at], [o]| {
                assert_eq!(a, (0..12).map(|v| v as f32).collect::<Vec<_>>());
                assert_eq!(at, a_f.t().as_standard_layout().as_slice().unwrap());
                o.copy_from_slice(at);
            },
        );
        assert_eq!(out.slice(s![.., ..;2]), a.t());
        assert!(out.slice(s![.., 1..;2]).iter().all(|&v| v == 0.0));
    }
}
