//! Helpers shared by the integration tests: golden files and tolerance checks.
#![allow(dead_code)]

pub mod gpu_vs_cpu;
pub mod train_vs_cpu;

use std::path::PathBuf;

use lstm_wgpu::ndarray::{Array1, Array2, Array3, ArrayD, ArrayViewD, Ix1, Ix2, Ix3};
use lstm_wgpu::weights::layer_tensor_names;
use lstm_wgpu::{LayerWeights, LstmConfig, LstmState, LstmWeights, Real, Upstream};
use safetensors::{Dtype, SafeTensors};

/// A golden file from `tests/golden/`, read into memory.
pub struct Golden {
    pub name: String,
    bytes: Vec<u8>,
}

impl Golden {
    pub fn load(name: &str) -> Golden {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{name}.safetensors"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Golden {
            name: name.to_string(),
            bytes,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn st(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("golden file parses")
    }

    pub fn has(&self, key: &str) -> bool {
        self.st().tensor(key).is_ok()
    }

    /// Tensor `key` converted to `F`.
    pub fn get<F: Real>(&self, key: &str) -> ArrayD<F> {
        let st = self.st();
        let view = st
            .tensor(key)
            .unwrap_or_else(|_| panic!("{}: no tensor {key}", self.name));
        let data: Vec<F> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| F::from_f64_lossy(f32::from_le_bytes(b.try_into().unwrap()) as f64))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| F::from_f64_lossy(f64::from_le_bytes(b.try_into().unwrap())))
                .collect(),
            Dtype::I64 => view
                .data()
                .chunks_exact(8)
                .map(|b| F::from_f64_lossy(i64::from_le_bytes(b.try_into().unwrap()) as f64))
                .collect(),
            d => panic!("{key}: unexpected dtype {d:?}"),
        };
        ArrayD::from_shape_vec(view.shape().to_vec(), data).unwrap()
    }

    pub fn get1<F: Real>(&self, key: &str) -> Array1<F> {
        self.get(key).into_dimensionality::<Ix1>().unwrap()
    }
    pub fn get2<F: Real>(&self, key: &str) -> Array2<F> {
        self.get(key).into_dimensionality::<Ix2>().unwrap()
    }
    pub fn get3<F: Real>(&self, key: &str) -> Array3<F> {
        self.get(key).into_dimensionality::<Ix3>().unwrap()
    }

    pub fn num_layers(&self) -> usize {
        (0..)
            .take_while(|&l| self.has(&layer_tensor_names(l)[0]))
            .count()
    }

    /// The LSTM parameters, read by the crate's own loader.
    pub fn weights<F: Real>(&self) -> LstmWeights<F> {
        let w = LstmWeights::<f64>::from_safetensors_bytes(&self.bytes).expect("weights load");
        w.cast()
    }

    /// `grad.<param>` for every layer and direction, as LayerWeights (index `l·D + d`).
    pub fn weight_grads<F: Real>(&self) -> Vec<LayerWeights<F>> {
        let weights = self.weights::<F>();
        let dirs = weights.config().num_directions();
        weights
            .layers()
            .iter()
            .enumerate()
            .map(|(ld, layer)| {
                let mut g = layer.clone();
                let names: Vec<String> = layer
                    .named(ld / dirs, ld % dirs)
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect();
                for (name, mut view) in names.iter().zip(g.views_mut()) {
                    // A model without biases has no bias gradients in the file: they are zero.
                    let key = format!("grad.{name}");
                    if self.has(&key) {
                        view.assign(&self.get::<F>(&key));
                    } else {
                        assert!(name.starts_with("bias_"), "{}: no {key}", self.name);
                        view.fill(F::zero());
                    }
                }
                g
            })
            .collect()
    }

    /// The sequence lengths `[B]` of a variable-length case.
    pub fn lengths(&self) -> Vec<usize> {
        self.get1::<f64>("lengths")
            .iter()
            .map(|&n| n as usize)
            .collect()
    }

    pub fn state<F: Real>(&self) -> Option<LstmState<F>> {
        self.has("h0").then(|| LstmState {
            h: self.get3("h0"),
            c: self.get3("c0"),
        })
    }

    pub fn upstream<F: Real>(&self) -> Upstream<F> {
        Upstream {
            dy: Some(self.get3("R")),
            dh_n: Some(self.get3("Rh")),
            dc_n: Some(self.get3("Rc")),
        }
    }

    pub fn config(&self) -> LstmConfig {
        *self.weights::<f32>().config()
    }

    /// Checks outputs (`y`, `h_n`, `c_n`, to `rtol_fwd`) and every gradient the file holds (to
    /// `rtol_bwd`), each relative to the tensor's largest magnitude.
    pub fn check<F: Real>(
        &self,
        out: &lstm_wgpu::LstmOutput<F>,
        grads: &lstm_wgpu::LstmGrads<F>,
        rtol_fwd: f64,
        rtol_bwd: f64,
    ) {
        let c = |key: &str, a: ArrayViewD<'_, F>, rtol| {
            assert_close(
                &format!("{} {key}", self.name),
                a,
                self.get::<F>(key).view(),
                0.0,
                rtol,
            )
        };
        c("y", out.y.view().into_dyn(), rtol_fwd);
        c("h_n", out.h_n.view().into_dyn(), rtol_fwd);
        c("c_n", out.c_n.view().into_dyn(), rtol_fwd);
        for (key, a) in [
            ("grad.x", &grads.x),
            ("grad.h0", &grads.h0),
            ("grad.c0", &grads.c0),
        ] {
            let a = a.as_ref().expect("gradient requested");
            c(key, a.view().into_dyn(), rtol_bwd);
        }
        let dirs = self.config().num_directions();
        for (ld, lg) in grads
            .layers
            .as_ref()
            .expect("gradients requested")
            .iter()
            .enumerate()
        {
            for (key, view) in lg.named(ld / dirs, ld % dirs) {
                let key = format!("grad.{key}");
                if self.has(&key) {
                    c(&key, view, rtol_bwd);
                } else {
                    // A model without biases: the file has no bias gradients, ours are zero.
                    assert!(!self.config().bias, "{}: no {key}", self.name);
                    assert!(view.iter().all(|v| *v == F::zero()), "{} {key}", self.name);
                }
            }
        }
    }
}

/// Checks `|a - b| <= atol + rtol * max|b|` elementwise (the golden README's criterion: errors
/// relative to the tensor's largest magnitude). On failure, names the worst element and its index.
pub fn assert_close<F: Real>(
    what: &str,
    actual: ArrayViewD<'_, F>,
    expected: ArrayViewD<'_, F>,
    atol: f64,
    rtol: f64,
) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    let scale = expected
        .iter()
        .fold(0.0f64, |m, v| m.max(v.to_f64_exact().abs()));
    let bound = atol + rtol * scale;
    let mut worst = (0.0f64, 0usize);
    for (i, (a, b)) in actual.iter().zip(expected.iter()).enumerate() {
        let (a, b) = (a.to_f64_exact(), b.to_f64_exact());
        let err = (a - b).abs();
        if err > worst.0 || err.is_nan() {
            worst = (if err.is_nan() { f64::INFINITY } else { err }, i);
        }
    }
    let (err, flat) = worst;
    if err > bound {
        let index = unravel(flat, expected.shape());
        let a = actual.iter().nth(flat).unwrap().to_f64_exact();
        let b = expected.iter().nth(flat).unwrap().to_f64_exact();
        panic!(
            "{what}: worst element {index:?}: got {a:e}, expected {b:e}, |diff| = {err:e} > {bound:e} \
             (atol {atol:e} + rtol {rtol:e} * max|expected| {scale:e})"
        );
    }
}

/// Largest `|a - b| / max|b|` over the tensor (for reporting).
pub fn rel_err<F: Real>(actual: ArrayViewD<'_, F>, expected: ArrayViewD<'_, F>) -> f64 {
    let scale = expected
        .iter()
        .fold(0.0f64, |m, v| m.max(v.to_f64_exact().abs()));
    let err = actual
        .iter()
        .zip(expected.iter())
        .fold(0.0f64, |m, (a, b)| {
            m.max((a.to_f64_exact() - b.to_f64_exact()).abs())
        });
    err / scale.max(f64::MIN_POSITIVE)
}

/// A float's bits, to compare results bit for bit (so that -0.0 and 0.0 differ too).
pub trait Bits: Copy + std::fmt::LowerExp {
    fn bits(self) -> u64;
}

impl Bits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// Fails on the first element whose bits differ, naming it and its index.
pub fn assert_same_bits<F: Bits>(
    what: &str,
    actual: &ArrayViewD<'_, F>,
    expected: &ArrayViewD<'_, F>,
) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    if let Some((flat, (a, e))) = actual
        .iter()
        .zip(expected.iter())
        .enumerate()
        .find(|(_, (a, e))| a.bits() != e.bits())
    {
        panic!(
            "{what}: element {:?} is {a:e}, expected {e:e} bit for bit",
            unravel(flat, expected.shape())
        );
    }
}

pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        index[d] = flat % n.max(1);
        flat /= n.max(1);
    }
    index
}

/// Deterministic pseudo-random array in `[lo, hi)`.
pub fn random_array<F: Real, D: lstm_wgpu::ndarray::Dimension>(
    shape: impl lstm_wgpu::ndarray::ShapeBuilder<Dim = D>,
    seed: u64,
    lo: f64,
    hi: f64,
) -> lstm_wgpu::ndarray::Array<F, D> {
    let mut rng = lstm_wgpu::rng::Rng::new(seed);
    lstm_wgpu::ndarray::Array::from_shape_simple_fn(shape, || {
        F::from_f64_lossy(rng.uniform(lo, hi))
    })
}

/// The GPU the tests run on. There is no fallback: a machine without an adapter fails the GPU
/// tests (install Mesa's lavapipe, `mesa-vulkan-drivers`, to run them without a GPU).
/// One device per test binary, shared by its tests.
pub fn gpu() -> lstm_wgpu::gpu::Gpu {
    static GPU: std::sync::OnceLock<lstm_wgpu::gpu::Gpu> = std::sync::OnceLock::new();
    GPU.get_or_init(|| match lstm_wgpu::gpu::Gpu::from_env() {
        Ok(g) => g,
        Err(e) => panic!("GPU tests need an adapter: {e}"),
    })
    .clone()
}

/// Dispatches per layer of a forward pass's input projection for a batch of `batch` rows on the
/// tests' GPU: one GEMM over the whole sequence, or none for a batch so small that the step
/// kernel projects its input itself. (Whichever its width, a layer's step projects its input
/// or not by the batch alone: the width only picks among the direct tiles.)
pub fn projection_dispatches(batch: usize) -> usize {
    use lstm_wgpu::gpu::kernels::Kernel;
    let step = Kernel::for_forward_step(batch, 64, &gpu());
    usize::from(step == Kernel::LstmForwardStep)
}

/// The tests' GPU choosing the kernel variants a hardware GPU would ([`Tuning`] of a discrete
/// GPU): so that the variants chosen there run, and are checked, on a software adapter too.
///
/// [`Tuning`]: lstm_wgpu::gpu::Tuning
pub fn gpu_tuned_as_hardware() -> lstm_wgpu::gpu::Gpu {
    use lstm_wgpu::gpu::Tuning;
    gpu().with_tuning(Tuning::for_device_type(
        lstm_wgpu::wgpu::DeviceType::DiscreteGpu,
    ))
}

/// The tests' GPU choosing the kernel variants a software adapter would: the direct forward
/// step for every batch.
pub fn gpu_tuned_as_software() -> lstm_wgpu::gpu::Gpu {
    use lstm_wgpu::gpu::Tuning;
    gpu().with_tuning(Tuning::for_device_type(lstm_wgpu::wgpu::DeviceType::Cpu))
}

/// [`gpu_tuned_as_software`] with the weights read from the parameter buffer, not from
/// textures: the direct steps' storage variants, which the trainers run on every adapter.
pub fn gpu_tuned_as_software_without_texels() -> lstm_wgpu::gpu::Gpu {
    use lstm_wgpu::gpu::Tuning;
    gpu().with_tuning(Tuning {
        weight_texels: false,
        ..Tuning::for_device_type(lstm_wgpu::wgpu::DeviceType::Cpu)
    })
}

/// [`gpu_tuned_as_software`] with the variants that share values through subgroups of 8, where
/// the device has such subgroups (the Vulkan pass on lavapipe). Elsewhere `Gpu::with_tuning`
/// turns them off: callers check [`runs_subgroups`] before asserting which variant runs.
pub fn gpu_tuned_as_software_with_subgroups(texels: bool) -> lstm_wgpu::gpu::Gpu {
    use lstm_wgpu::gpu::Tuning;
    gpu().with_tuning(Tuning {
        subgroups: true,
        weight_texels: texels,
        ..Tuning::for_device_type(lstm_wgpu::wgpu::DeviceType::Cpu)
    })
}

/// Whether the tests' device runs the subgroup variants (its subgroups are exactly 8 wide); says
/// so on stderr where it does not, so that a run shows which tests had nothing to compare. With
/// `LSTM_WGPU_TEST_SUBGROUPS=required` (the test script's pass on lavapipe's Vulkan driver, whose
/// subgroups are 8 wide) a device without them fails the test instead.
pub fn runs_subgroups() -> bool {
    let runs = gpu_tuned_as_software_with_subgroups(false)
        .tuning()
        .subgroups;
    let required = std::env::var("LSTM_WGPU_TEST_SUBGROUPS").is_ok_and(|v| v == "required");
    assert!(
        runs || !required,
        "LSTM_WGPU_TEST_SUBGROUPS=required, but {} has no 8-wide subgroups",
        gpu().describe()
    );
    if !runs {
        eprintln!("this adapter has no 8-wide subgroups: the subgroup variants do not run here");
    }
    runs
}

/// Random weights (PyTorch's init scaled by `scale`) for a configuration.
pub fn random_weights(config: LstmConfig, seed: u64, scale: f32) -> LstmWeights<f32> {
    let mut w = LstmWeights::<f32>::init_uniform(config, seed);
    for layer in w.layers_mut() {
        layer.weight_ih *= scale;
        layer.weight_hh *= scale;
        layer.bias_ih *= scale;
        layer.bias_hh *= scale;
    }
    w
}

/// Random `h0`, `c0` for `config` and batch `b`.
pub fn random_state(config: &LstmConfig, b: usize, seed: u64) -> LstmState<f32> {
    let ld = config.num_layers * config.num_directions();
    LstmState {
        h: random_array((ld, b, config.output_size()), seed, -1.0, 1.0),
        c: random_array((ld, b, config.hidden_size), seed + 1, -2.0, 2.0),
    }
}

/// Forward and backward of golden case `g` on any device (`forward_backward`, every gradient),
/// for the golden tests that run the same check on the CPU and the GPU.
pub fn run_golden<F: Real>(
    lstm: &mut dyn lstm_wgpu::Lstm<F>,
    g: &Golden,
) -> (lstm_wgpu::LstmOutput<F>, lstm_wgpu::LstmGrads<F>) {
    let x = g.get3::<F>("x");
    let state = g.state::<F>();
    let name = &g.name;
    if !g.has("lengths") {
        return lstm
            .forward_backward(
                x.view(),
                state.as_ref(),
                &g.upstream(),
                lstm_wgpu::GradRequest::ALL,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let lengths = g.lengths();
    let (out, tape) = lstm
        .forward_train_lengths(x.view(), &lengths, state.as_ref())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let grads = lstm
        .backward(&tape, &g.upstream(), lstm_wgpu::GradRequest::ALL)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (out, grads)
}

/// A device of the tests' adapter with the limits `limits` makes from the adapter's own, as an
/// application might create one and hand it over.
pub fn device_with(
    limits: impl FnOnce(lstm_wgpu::wgpu::Limits) -> lstm_wgpu::wgpu::Limits,
) -> (lstm_wgpu::wgpu::Device, lstm_wgpu::wgpu::Queue) {
    let desc = lstm_wgpu::wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    let instance = lstm_wgpu::wgpu::Instance::new(desc);
    let adapter = pollster::block_on(
        lstm_wgpu::wgpu::util::initialize_adapter_from_env_or_default(&instance, None),
    )
    .expect("an adapter");
    let required_limits = limits(adapter.limits());
    pollster::block_on(adapter.request_device(&lstm_wgpu::wgpu::DeviceDescriptor {
        required_limits,
        ..Default::default()
    }))
    .expect("a device of the adapter")
}
