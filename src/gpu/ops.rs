//! Single kernels run on their own, with the same arguments as their CPU twins: each call uploads
//! its operands, records one kernel (two for the norm), submits, and reads the results back.
//!
//! One submission per call makes these slow for real work (the LSTM and the trainers keep
//! everything on the GPU instead); they exist to check each kernel against its twin in
//! [`crate::cpu`] and to experiment with one kernel at a time.
//!
//! ```no_run
//! use lstm_wgpu::gemm::{GemmSpec, MatrixLayout};
//! use lstm_wgpu::gpu::{Gpu, ops};
//!
//! let gpu = Gpu::from_env()?;
//! // [2, 3] · [3, 2]
//! let spec = GemmSpec::new((2, 2, 3), MatrixLayout::new(0, 3), MatrixLayout::new(0, 2), MatrixLayout::new(0, 2));
//! let mut c = vec![0.0; 4];
//! ops::matmul(&gpu, &spec, &[1., 2., 3., 4., 5., 6.], &[1., 0., 0., 1., 1., 1.], &[], &mut c)?;
//! assert_eq!(c, [4., 5., 10., 11.]);
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```

use crate::gpu::recording::Recording;
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::gemm::GemmSpec;
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::kernels::Call;
use crate::gpu::kernels::adam::Adam;
use crate::gpu::kernels::arena_update::ArenaUpdate;
use crate::gpu::kernels::column_sum::ColumnSum;
use crate::gpu::kernels::cross_entropy::CrossEntropy;
use crate::gpu::kernels::dropout::Dropout;
use crate::gpu::kernels::grad_norm::{self, GradNorm};
use crate::gpu::kernels::matmul::Matmul;
use crate::gpu::kernels::peak::{PeakCall, Probe};
use crate::gpu::kernels::sgd::Sgd;
use crate::gpu::readback::ReadPlan;
use crate::gpu::region::Region;
use crate::gpu::stats::Counters;
use crate::optim::AdamConfig;
use crate::shape::check_column_sum;

/// `C` after one `matmul.wgsl` dispatch described by `spec`; twin of [`crate::cpu::matmul`].
/// `c` holds `C`'s buffer: read when `spec.accumulate`, and overwritten with the result (only
/// the elements of `C` change). `bias` may be empty when `spec.bias` is `None`.
pub fn matmul(
    gpu: &Gpu,
    spec: &GemmSpec,
    a: &[f32],
    b: &[f32],
    bias: &[f32],
    c: &mut [f32],
) -> Result<()> {
    let one = OneShot::new(gpu);
    let (a, b) = (one.input("A", a)?, one.input("B", b)?);
    let bias = match spec.bias {
        Some(_) => Some(one.input("bias", bias)?),
        None => None,
    };
    let c_buf = one.input("C", c)?;
    let call = Matmul {
        subgroups: gpu.tuning().subgroups,
        spec: *spec,
        a: &a,
        b: &b,
        bias: bias.as_ref(),
        c: &c_buf,
    };
    let [out] = one.run([&call as &dyn CallDyn], [Region::whole(&c_buf, c.len())])?;
    c.copy_from_slice(&out);
    Ok(())
}

/// One `column_sum.wgsl` dispatch; twin of [`crate::cpu::column_sum`]: `out[out_offsets[0] + n]
/// = out[out_offsets[1] + n] = Σ_r input[in_off + r·cols + n]`, other elements of `out` kept.
pub fn column_sum(
    gpu: &Gpu,
    input: &[f32],
    in_off: usize,
    rows: usize,
    cols: usize,
    out: &mut [f32],
    out_offsets: [usize; 2],
) -> Result<()> {
    check_column_sum(input.len(), in_off, rows, cols, out.len(), out_offsets)?;
    let one = OneShot::new(gpu);
    let (input, out_buf) = (one.input("input", input)?, one.input("out", out)?);
    let call = ColumnSum {
        input: &input,
        in_off,
        rows,
        cols,
        out: &out_buf,
        out_offsets,
    };
    let [r] = one.run(
        [&call as &dyn CallDyn],
        [Region::whole(&out_buf, out.len())],
    )?;
    out.copy_from_slice(&r);
    Ok(())
}

/// One `dropout.wgsl` dispatch; twin of [`crate::cpu::dropout::dropout`]: `input` through the
/// mask of `layer` under `dropout` (its pass included).
pub fn dropout(
    gpu: &Gpu,
    input: &[f32],
    dropout: &crate::lstm::Dropout,
    layer: usize,
) -> Result<Vec<f32>> {
    let one = OneShot::new(gpu);
    let (input_buf, out) = (one.input("input", input)?, one.output("out", input.len())?);
    let call = Dropout {
        input: &input_buf,
        in_off: 0,
        out: &out,
        out_off: 0,
        len: input.len(),
        dropout: *dropout,
        layer,
    };
    let [r] = one.run([&call as &dyn CallDyn], [Region::whole(&out, input.len())])?;
    Ok(r)
}

/// One `cross_entropy.wgsl` dispatch over `logits` `[B, C]` and `labels` `[B]` (`>= C` marks a
/// padding row); twin of [`crate::cpu::cross_entropy`]. Returns `dlogits` `[B, C]` and the
/// metrics `(loss sum, correct, count)`.
pub fn cross_entropy(
    gpu: &Gpu,
    logits: ArrayView2<'_, f32>,
    labels: &[u32],
) -> Result<(Array2<f32>, [f32; 3])> {
    let (rows, classes) = logits.dim();
    crate::shape::expect_shape("labels", &[labels.len()], &[rows])?;
    let one = OneShot::new(gpu);
    let logits = logits.as_standard_layout();
    let values = logits
        .as_slice()
        .expect("a standard-layout array is one slice");
    let logits_buf = one.input("logits", values)?;
    let labels_buf = one.input_bytes("labels", bytemuck::cast_slice(labels), labels.len())?;
    let dlogits = one.output("dlogits", rows * classes)?;
    let metrics = one.output("metrics", 3)?;
    let call = CrossEntropy {
        logits: &logits_buf,
        labels: &labels_buf,
        dlogits: &dlogits,
        metrics: &metrics,
        rows,
        classes,
        accumulate: false,
    };
    let outputs = [
        Region::whole(&dlogits, rows * classes),
        Region::whole(&metrics, 3),
    ];
    let [d, m] = one.run([&call as &dyn CallDyn], outputs)?;
    let d = Array2::from_shape_vec((rows, classes), d).expect("read back rows x classes values");
    Ok((d, [m[0], m[1], m[2]]))
}

/// Both passes of `grad_norm.wgsl` over `grads`; twin of [`crate::cpu::grad_norm`]. Returns
/// `(norm, scale)` with `scale = min(1, max_norm / (norm + 1e-6))`.
pub fn grad_norm(gpu: &Gpu, grads: &[f32], max_norm: f32) -> Result<(f32, f32)> {
    let one = OneShot::new(gpu);
    let g = one.input("gradients", grads)?;
    let partials = one.output("norm partials", grad_norm::GROUPS)?;
    let clip = one.output("clip", 2)?;
    let [partial, finish] = GradNorm {
        finish: false,
        grads: &g,
        len: grads.len(),
        max_norm,
        partials: &partials,
        clip: &clip,
    }
    .passes();
    let calls = [&partial as &dyn CallDyn, &finish];
    let [c] = one.run(calls, [Region::whole(&clip, 2)])?;
    Ok((c[0], c[1]))
}

/// One `adam.wgsl` dispatch at step `step` (1-based) with gradients scaled by `grad_scale`;
/// twin of [`crate::cpu::adam`]. Updates `params`, `m` and `v` in place.
#[allow(clippy::too_many_arguments)] // the twin's arguments, plus the GPU
pub fn adam(
    gpu: &Gpu,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    config: &AdamConfig,
    step: u64,
    grad_scale: f32,
) -> Result<()> {
    let len = params.len();
    same_lengths("Adam", len, &[grads.len(), m.len(), v.len()])?;
    let one = OneShot::new(gpu);
    let (p, g) = (
        one.input("parameters", params)?,
        one.input("gradients", grads)?,
    );
    let (mb, vb) = (one.input("m", m)?, one.input("v", v)?);
    let clip = one.input("clip", &[0.0, grad_scale])?;
    let call = Adam {
        arena: ArenaUpdate {
            params: &p,
            grads: &g,
            clip: &clip,
            len,
        },
        m: &mb,
        v: &vb,
        config: *config,
        step,
    };
    let outputs = [&p, &mb, &vb].map(|b| Region::whole(b, len));
    let [p1, m1, v1] = one.run([&call as &dyn CallDyn], outputs)?;
    params.copy_from_slice(&p1);
    m.copy_from_slice(&m1);
    v.copy_from_slice(&v1);
    Ok(())
}

/// One `sgd.wgsl` dispatch with gradients scaled by `grad_scale`; twin of [`crate::cpu::sgd`].
/// Updates `params` and the momentum buffer `buf` in place.
pub fn sgd(
    gpu: &Gpu,
    params: &mut [f32],
    grads: &[f32],
    buf: &mut [f32],
    (lr, momentum): (f32, f32),
    grad_scale: f32,
) -> Result<()> {
    let len = params.len();
    same_lengths("SGD", len, &[grads.len(), buf.len()])?;
    let one = OneShot::new(gpu);
    let (p, g) = (
        one.input("parameters", params)?,
        one.input("gradients", grads)?,
    );
    let b = one.input("momentum buffer", buf)?;
    let clip = one.input("clip", &[0.0, grad_scale])?;
    let call = Sgd {
        arena: ArenaUpdate {
            params: &p,
            grads: &g,
            clip: &clip,
            len,
        },
        buf: &b,
        lr,
        momentum,
    };
    let outputs = [&p, &b].map(|x| Region::whole(x, len));
    let [p1, b1] = one.run([&call as &dyn CallDyn], outputs)?;
    params.copy_from_slice(&p1);
    buf.copy_from_slice(&b1);
    Ok(())
}

/// One `fma_chains` dispatch of `shaders/peak.wgsl` (the peak probe's arithmetic) over
/// `invocations` invocations of `iters` steps; twin of [`crate::cpu::peak::fma_chains`].
/// Returns `[invocations, 4]` row-major: each invocation's sum of its chains.
pub fn peak_fma_chains(gpu: &Gpu, invocations: usize, iters: u32) -> Result<Vec<f32>> {
    let one = OneShot::new(gpu);
    let (src, dst) = (one.output("src", 4)?, one.output("dst", 4 * invocations)?);
    let texels = gpu.unread_texels()?;
    let call = PeakCall {
        probe: Probe::Fma { iters },
        n: invocations,
        src: &src,
        dst: &dst,
        texels: &texels,
    };
    let [out] = one.run(
        [&call as &dyn CallDyn],
        [Region::whole(&dst, 4 * invocations)],
    )?;
    Ok(out)
}

/// One `copy` dispatch of `shaders/peak.wgsl` (the peak probe's bandwidth): `src` (a whole
/// number of vec4s, `[n, 4]`) copied into a fresh buffer, which is returned.
pub fn peak_copy(gpu: &Gpu, src: &[f32]) -> Result<Vec<f32>> {
    if !src.len().is_multiple_of(4) {
        return Err(Error::Shape {
            tensor: "peak copy source".into(),
            expected: vec![src.len().div_ceil(4), 4],
            actual: vec![src.len()],
        });
    }
    let one = OneShot::new(gpu);
    let (s, dst) = (one.input("src", src)?, one.output("dst", src.len())?);
    let texels = gpu.unread_texels()?;
    let call = PeakCall {
        probe: Probe::Copy,
        n: src.len() / 4,
        src: &s,
        dst: &dst,
        texels: &texels,
    };
    let [out] = one.run([&call as &dyn CallDyn], [Region::whole(&dst, src.len())])?;
    Ok(out)
}

/// One `load_storage` (or, with `from_texture`, `load_texture`) dispatch of `shaders/peak.wgsl`
/// (the peak probe's load rates) over `grid`, `[rows, width, 4]` row-major (in a storage
/// buffer, or an `rgba32float` texture of `width` by `rows`); twin of
/// [`crate::cpu::peak::load_sums`]. Returns `[width · rows / iters, 4]`: invocation `g` sums
/// the `iters` vec4s of column `g % width` from row `(g / width) · iters` on. A grid that is not
/// a whole number of `iters`-row bands is [`Error::Shape`].
pub fn peak_load(
    gpu: &Gpu,
    grid: &[f32],
    width: usize,
    iters: u32,
    from_texture: bool,
) -> Result<Vec<f32>> {
    let band = 4 * width * iters as usize;
    if band == 0 || grid.is_empty() || !grid.len().is_multiple_of(band) {
        return Err(Error::Shape {
            tensor: "peak load grid".into(),
            expected: vec![grid.len().div_ceil(band.max(1)) * iters as usize, width, 4],
            actual: vec![grid.len()],
        });
    }
    let rows = grid.len() / (4 * width);
    let n = width * rows / iters as usize;
    let one = OneShot::new(gpu);
    let (src, dst) = (one.input("src", grid)?, one.output("dst", 4 * n)?);
    let texels = match from_texture {
        true => gpu
            .texture_vec4("peak load texels", (width, rows), Some(grid))?
            .create_view(&Default::default()),
        false => gpu.unread_texels()?,
    };
    let call = PeakCall {
        probe: Probe::Load {
            iters,
            width: crate::gpu::kernels::u32_of("peak load width", width)?,
            texture: from_texture,
        },
        n,
        src: &src,
        dst: &dst,
        texels: &texels,
    };
    let [out] = one.run([&call as &dyn CallDyn], [Region::whole(&dst, 4 * n)])?;
    Ok(out)
}

fn same_lengths(what: &str, len: usize, others: &[usize]) -> Result<()> {
    match others.iter().find(|&&n| n != len) {
        Some(&n) => Err(Error::Shape {
            tensor: format!("{what} state"),
            expected: vec![len],
            actual: vec![n],
        }),
        None => Ok(()),
    }
}

/// A [`Call`] whose uniform type is erased, so calls of different kernels share one list.
trait CallDyn {
    fn prepare(&self, gpu: &Gpu, counters: &Counters) -> Result<Dispatch>;
}

impl<C: Call> CallDyn for C {
    fn prepare(&self, gpu: &Gpu, counters: &Counters) -> Result<Dispatch> {
        Dispatch::new(gpu, counters, self.kernel(gpu.limits()).desc().name, self)
    }
}

/// The buffers and the single submission of one call.
struct OneShot<'g> {
    gpu: &'g Gpu,
    counters: Counters,
}

impl<'g> OneShot<'g> {
    fn new(gpu: &'g Gpu) -> Self {
        OneShot {
            gpu,
            counters: Counters::default(),
        }
    }

    /// A storage buffer holding `values` (readable back).
    fn input(&self, name: &str, values: &[f32]) -> Result<wgpu::Buffer> {
        self.input_bytes(name, bytemuck::cast_slice(values), values.len())
    }

    /// A storage buffer of `len` 4-byte elements holding `bytes`.
    fn input_bytes(&self, name: &str, bytes: &[u8], len: usize) -> Result<wgpu::Buffer> {
        let buffer = self.output(name, len)?;
        self.gpu.write(&buffer, 0, bytes, &self.counters);
        Ok(buffer)
    }

    /// A zeroed storage buffer of `len` f32 values (readable back).
    fn output(&self, name: &str, len: usize) -> Result<wgpu::Buffer> {
        let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        self.gpu.storage(name, len, usage)
    }

    /// Prepares and records `calls` in order, submits once, and reads back `outputs`.
    fn run<const N: usize, const M: usize>(
        &self,
        calls: [&dyn CallDyn; N],
        outputs: [Region<'_>; M],
    ) -> Result<[Vec<f32>; M]> {
        let (gpu, counters) = (self.gpu, &self.counters);
        let mut plan = ReadPlan::new();
        for r in outputs {
            plan.add(r);
        }
        let staging = gpu.staging("readback", plan.len())?;
        gpu.catch("running one kernel", || -> Result<()> {
            let dispatches = calls
                .iter()
                .map(|c| c.prepare(gpu, counters))
                .collect::<Result<Vec<_>>>()?;
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            {
                let mut pass = Recording::begin(&mut encoder);
                crate::gpu::dispatch::record_all(gpu, &mut pass, &dispatches, counters);
            }
            plan.record(&mut encoder, &staging);
            gpu.submit(encoder, counters);
            Ok(())
        })??;
        let parts = plan.read(gpu, &staging, counters)?;
        Ok(parts.try_into().expect("one part per output region"))
    }
}
