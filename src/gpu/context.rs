//! The GPU a model runs on: adapter, device and queue, plus the compiled kernels.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::error_scope::catch;
use crate::gpu::kernels::Kernels;
use crate::gpu::mapping::Poller;
use crate::gpu::profile::{PROFILE_FEATURES, Profile, ProfileTiming, Profiler};
use crate::gpu::stats::Counters;
use crate::gpu::tuning::{Tuning, subgroups_of_width};

/// A wgpu device and queue with this crate's kernels, each compiled for it when a call first needs
/// it ([`Gpu::compile_kernels`] compiles them all). Cheap to clone (shared).
///
/// Build it from the environment with [`Gpu::from_env`], or hand over a device the application
/// already owns with [`Gpu::from_device`].
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
    /// Which kernel variants this handle's calls run (see [`Gpu::with_tuning`]).
    tuning: Tuning,
}

struct Inner {
    /// Drives the device's mapping callbacks (see [`crate::gpu::mapping`]). First, so that it is
    /// dropped first: its thread lets go of the device before the device itself is dropped.
    poller: Poller,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    kernels: Kernels,
    /// Why the device was lost, once wgpu has said so (devices from [`Gpu::from_env`] only).
    lost: Arc<std::sync::Mutex<Option<String>>>,
    /// Four bytes to copy to and from when checking a caller's buffer (made when first needed).
    probe: std::sync::OnceLock<wgpu::Buffer>,
    /// Timestamps of a [`Gpu::profile`] running on this device.
    profiler: Profiler,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("device_type", &self.inner.info.device_type)
            .field("tuning", &self.tuning)
            .finish()
    }
}

impl Gpu {
    /// Picks an adapter the way wgpu's tools do: backends from `WGPU_BACKEND` (e.g. `vulkan`,
    /// `metal`, `dx12`), adapter by `WGPU_ADAPTER_NAME` (substring, case-insensitive) or else the
    /// highest-performance one (`WGPU_POWER_PREF` can override), then asks for a device with
    /// that adapter's full limits.
    ///
    /// A CPU (software) adapter such as lavapipe is accepted, with a `log` warning: it runs the
    /// shaders correctly but far slower than the crate's CPU path.
    pub fn from_env() -> Result<Gpu> {
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = format!("{:?}", desc.backends);
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(async {
            match wgpu::util::initialize_adapter_from_env(&instance, None).await {
                Ok(a) => Ok(a),
                Err(_) => {
                    instance
                        .request_adapter(&wgpu::RequestAdapterOptions {
                            power_preference: wgpu::PowerPreference::from_env()
                                .unwrap_or(wgpu::PowerPreference::HighPerformance),
                            force_fallback_adapter: false,
                            compatible_surface: None,
                            apply_limit_buckets: false,
                        })
                        .await
                }
            }
        })
        .map_err(|_| Error::NoAdapter { backends })?;
        // Subgroups only where the kernels that use them would run (`Tuning::subgroups`).
        let subgroups = match subgroups_of_width(&adapter.get_info(), adapter.features()) {
            true => wgpu::Features::SUBGROUP,
            false => wgpu::Features::empty(),
        };
        let (device, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("lstm-wgpu"),
                // Timestamps for `Gpu::profile`, those of them the adapter has.
                required_features: (adapter.features() & PROFILE_FEATURES) | subgroups,
                required_limits: adapter.limits(),
                ..Default::default()
            }))?;
        let lost = Arc::new(std::sync::Mutex::new(None));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut l) = flag.lock() {
                *l = Some(format!("{reason:?}: {message}"));
            }
        });
        Gpu::new(device, queue, adapter.get_info(), lost)
    }

    /// Uses a device and queue the application already has (for example the one it renders
    /// with). The kernels are compiled for it as calls need them; its limits are whatever it was
    /// created with, and a kernel they cannot hold is an [`Error::Gpu`] on the first call that
    /// needs it (or from [`Gpu::compile_kernels`]).
    ///
    /// The application's device-lost callback is left alone, so on a lost device calls fail
    /// with [`Error::Gpu`] or [`Error::Readback`] (from wgpu's error scopes) rather than
    /// [`Error::DeviceLost`].
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Gpu> {
        let info = device.adapter_info();
        Gpu::new(device, queue, info, Arc::default())
    }

    fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        lost: Arc<std::sync::Mutex<Option<String>>>,
    ) -> Result<Gpu> {
        if info.device_type == wgpu::DeviceType::Cpu {
            log::warn!(
                "GPU adapter '{}' is a CPU (software) implementation: results are correct but \
                 slower than this crate's CPU path",
                info.name
            );
        }
        let limits = device.limits();
        let tuning = Tuning::for_adapter(&info, device.features());
        let kernels = Kernels::new(&device, tuning.subgroups);
        let poller = Poller::new(&device).map_err(|e| {
            Error::Readback(format!("starting the thread that polls the device: {e}"))
        })?;
        Ok(Gpu {
            tuning,
            inner: Arc::new(Inner {
                device,
                queue,
                info,
                limits,
                kernels,
                lost,
                poller,
                probe: std::sync::OnceLock::new(),
                profiler: Profiler::default(),
            }),
        })
    }

    /// The adapter: name, vendor, backend, device type, driver.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// Which kernel variants this handle's calls run: [`Tuning::for_adapter`] of the adapter
    /// and device unless [`Gpu::with_tuning`] said otherwise.
    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// A handle on the same device whose models run the kernel variants `tuning` chooses (the
    /// results agree within the tests' tolerances; only the speed differs). For comparing
    /// variants on one adapter, or for running there the choices made for another.
    /// [`Tuning::subgroups`] is ignored (false) on a device whose subgroups are not
    /// [`Tuning::SUBGROUP_WIDTH`] wide, which cannot run those kernels.
    ///
    /// ```no_run
    /// # fn main() -> lstm_wgpu::Result<()> {
    /// use lstm_wgpu::gpu::{Gpu, Tuning};
    /// let gpu = Gpu::from_env()?;
    /// // What a discrete GPU would run, on whatever adapter this is.
    /// let as_gpu = gpu.with_tuning(Tuning::for_device_type(lstm_wgpu::wgpu::DeviceType::DiscreteGpu));
    /// # let _ = as_gpu;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_tuning(&self, tuning: Tuning) -> Gpu {
        let features = self.inner.device.features();
        let subgroups = subgroups_of_width(&self.inner.info, features);
        Gpu {
            inner: Arc::clone(&self.inner),
            tuning: Tuning {
                subgroups: tuning.subgroups && subgroups,
                ..tuning
            },
        }
    }

    /// True when the adapter is a CPU (software) implementation such as lavapipe or WARP.
    pub fn is_software(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// One line describing the adapter, e.g. `NVIDIA H200 (Vulkan, DiscreteGpu, driver 580)`.
    pub fn describe(&self) -> String {
        let i = &self.inner.info;
        format!(
            "{} ({:?}, {:?}, {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// A 4-byte buffer with `COPY_SRC | COPY_DST`, for probe copies that are never submitted.
    pub(crate) fn probe(&self) -> &wgpu::Buffer {
        self.inner.probe.get_or_init(|| {
            self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("probe"),
                size: 4,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    pub(crate) fn kernels(&self) -> &Kernels {
        &self.inner.kernels
    }

    /// `kernel` compiled, compiling it now if no call has needed it before ([`Kernels::get`]),
    /// its error [`Error::DeviceLost`] where the device was lost meanwhile.
    pub(crate) fn kernel(
        &self,
        kernel: crate::gpu::kernels::Kernel,
    ) -> Result<&crate::gpu::kernels::Compiled> {
        self.inner.kernels.get(kernel).map_err(|e| self.lost_or(e))
    }

    /// Compiles now every kernel variant this device runs. Otherwise each is compiled when a
    /// call first needs it (when a model prepares the buffers and dispatches of a new shape),
    /// so that a first call pays only for its own kernels: on lavapipe a device made and a first
    /// forward pass at the reference size took 126 ms that way, against 443 compiling every
    /// kernel up front (the bench's `first call`). An application that would rather pay once, on several threads, before
    /// its first call calls this. Fails with [`Error::Gpu`] where the device rejects a kernel.
    pub fn compile_kernels(&self) -> Result<()> {
        // wgpu's OpenGL backend runs every call under one context lock: no gain in threads.
        let threads = match self.inner.info.backend {
            wgpu::Backend::Gl => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        };
        // wgpu compiles on a lost device without an error: the loss is checked on either side.
        self.check_alive()?;
        self.inner
            .kernels
            .compile_all(threads)
            .map_err(|e| self.lost_or(e))?;
        self.check_alive()
    }

    /// The kernel variants compiled on this device so far, in
    /// [`Kernel::ALL`](crate::gpu::kernels::Kernel::ALL)'s order (see [`Gpu::compile_kernels`]).
    pub fn compiled_kernels(&self) -> Vec<crate::gpu::kernels::Kernel> {
        self.inner.kernels.compiled()
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch into
    /// [`Error::Gpu`].
    pub(crate) fn catch<T>(&self, context: &'static str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        catch(&self.inner.device, context, f).map_err(|e| self.lost_or(e))
    }

    /// [`Error::DeviceLost`] once wgpu has reported the device lost.
    pub(crate) fn check_alive(&self) -> Result<()> {
        match self.inner.lost.lock().ok().and_then(|l| l.clone()) {
            Some(reason) => Err(Error::DeviceLost { reason }),
            None => Ok(()),
        }
    }

    /// `e`, or [`Error::DeviceLost`] when the device was lost meanwhile (its real cause).
    fn lost_or(&self, e: Error) -> Error {
        self.check_alive().err().unwrap_or(e)
    }

    /// Checks that a storage buffer of `len` f32 values fits the device's limits; returns its
    /// size in bytes.
    pub(crate) fn check_storage(&self, name: &str, len: usize) -> Result<u64> {
        let bytes = (len.max(4) as u64).saturating_mul(4);
        let limits = &self.inner.limits;
        check_limit(
            name,
            bytes,
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        )?;
        check_limit(name, bytes, "max_buffer_size", limits.max_buffer_size)?;
        Ok(bytes)
    }

    /// A storage buffer of `len` f32 values, checked against the device's limits.
    pub(crate) fn storage(
        &self,
        name: &str,
        len: usize,
        extra: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let bytes = self.check_storage(name, len)?;
        Ok(self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        }))
    }

    /// A 2-D `rgba32float` texture of `width` by `rows` vec4s, which kernels bind as a read-only
    /// storage texture (`STORAGE_BINDING`) and read with `textureLoad`; filled with `values` (`[rows, width, 4]` row-major) when
    /// given, zero otherwise. Either side beyond `max_texture_dimension_2d` is
    /// [`Error::DeviceLimit`].
    pub(crate) fn texture_vec4(
        &self,
        name: &str,
        (width, rows): (usize, usize),
        values: Option<&[f32]>,
    ) -> Result<wgpu::Texture> {
        let max = u64::from(self.inner.limits.max_texture_dimension_2d);
        for side in [width, rows] {
            check_limit(name, side as u64, "max_texture_dimension_2d", max)?;
        }
        let size = wgpu::Extent3d {
            width: width.max(1) as u32, // at most the limit, a u32, checked above
            height: rows.max(1) as u32,
            depth_or_array_layers: 1,
        };
        let texture = self.inner.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(name),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        if let Some(v) = values {
            debug_assert_eq!(v.len(), 4 * width * rows, "{name}");
            self.inner.queue.write_texture(
                texture.as_image_copy(),
                bytemuck::cast_slice(v),
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(size.width * 16),
                    rows_per_image: Some(size.height),
                },
                size,
            );
        }
        Ok(texture)
    }

    /// A view of a 1-by-1 zero texture, for a kernel that binds a texture it does not read (a
    /// layout has no optional bindings).
    pub(crate) fn unread_texels(&self) -> Result<wgpu::TextureView> {
        let texture = self.texture_vec4("unread texels", (1, 1), None)?;
        Ok(texture.create_view(&Default::default()))
    }

    /// A buffer to map and read back `len` f32 values.
    pub(crate) fn staging(&self, name: &str, len: usize) -> Result<wgpu::Buffer> {
        let bytes = (len.max(4) * 4) as u64;
        check_limit(
            name,
            bytes,
            "max_buffer_size",
            self.inner.limits.max_buffer_size,
        )?;
        Ok(self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A uniform buffer holding `data`.
    pub(crate) fn uniform(&self, name: &str, data: &[u8], counters: &Counters) -> wgpu::Buffer {
        let buffer = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: data.len().max(16) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.write(&buffer, 0, data, counters);
        buffer
    }

    /// Uploads `data` into `buffer` at byte `offset` (staged; lands before the next submit).
    pub(crate) fn write(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        data: &[u8],
        counters: &Counters,
    ) {
        if data.is_empty() {
            return;
        }
        self.inner.queue.write_buffer(buffer, offset, data);
        counters.upload(data.len() as u64);
    }

    /// Uploads `a` (any layout; sent row-major) into `buffer` at byte `offset`.
    pub(crate) fn write_array<D: ndarray::Dimension>(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        a: ndarray::ArrayView<'_, f32, D>,
        counters: &Counters,
    ) {
        let a = a.as_standard_layout();
        let values = a.as_slice().expect("a standard-layout array is one slice");
        self.write(buffer, offset, bytemuck::cast_slice(values), counters);
    }

    /// Submits one command buffer.
    pub(crate) fn submit(
        &self,
        mut encoder: wgpu::CommandEncoder,
        counters: &Counters,
    ) -> wgpu::SubmissionIndex {
        let profiler = &self.inner.profiler;
        let resolved = profiler.resolve(&self.inner.device, &mut encoder);
        let index = self.inner.queue.submit([encoder.finish()]);
        counters.submit();
        if let Some(r) = resolved {
            profiler.collect(&self.inner.device, r);
        }
        index
    }

    /// The device's profile state (see [`crate::gpu::profile`]).
    pub(crate) fn profiler(&self) -> &Profiler {
        &self.inner.profiler
    }

    /// Every kernel variant dispatched on this device since it was created, with its count of
    /// dispatches recorded, in [`Kernel::ALL`](crate::gpu::kernels::Kernel::ALL)'s order: which
    /// variants an application's calls run on this adapter, by every model and every handle of
    /// the device ([`Gpu::with_tuning`] included). Work recorded into an application's own
    /// encoder counts when it is recorded, whether or not it is ever submitted.
    ///
    /// ```no_run
    /// # use lstm_wgpu::gpu::{Gpu, GpuLstm};
    /// # use lstm_wgpu::{Lstm, LstmConfig, LstmWeights, ndarray::Array3};
    /// let gpu = Gpu::from_env()?;
    /// let mut lstm = GpuLstm::new(&gpu, &LstmWeights::init_uniform(LstmConfig::new(28, 128, 1)?, 0))?;
    /// lstm.forward(Array3::<f32>::zeros((128, 28, 28)).view(), None)?;
    /// for (kernel, dispatches) in gpu.dispatches_by_kernel() {
    ///     println!("{:<40} {dispatches}", kernel.desc().name);
    /// }
    /// # Ok::<(), lstm_wgpu::Error>(())
    /// ```
    pub fn dispatches_by_kernel(&self) -> Vec<(crate::gpu::kernels::Kernel, u64)> {
        self.inner.kernels.dispatched()
    }

    /// Runs `f` (calls on models of this GPU, from this thread or others) with every dispatch
    /// timed on its own, and returns its result with the [`Profile`] (see
    /// [`crate::gpu::profile`]): [`Gpu::profile_with`] the most precise timing the device offers
    /// ([`ProfileTiming::best_for`]).
    pub fn profile<T>(&self, f: impl FnOnce() -> T) -> Result<(T, Profile)> {
        let timing = ProfileTiming::best_for(self.inner.device.features());
        self.profile_with(timing, f)
    }

    /// [`Gpu::profile`] with each dispatch timed as `timing` says. Fails with
    /// [`Error::MissingFeature`] when the device lacks [`ProfileTiming::features`] and with
    /// [`Error::Config`] when a profile of this device is already running. The profile ends
    /// when `f` returns or panics.
    pub fn profile_with<T>(
        &self,
        timing: ProfileTiming,
        f: impl FnOnce() -> T,
    ) -> Result<(T, Profile)> {
        let missing = timing.features() - self.inner.device.features();
        if !missing.is_empty() {
            return Err(Error::MissingFeature {
                feature: format!("{missing:?}"),
                needed_by: "a profile",
            });
        }
        let period_ns = f64::from(self.inner.queue.get_timestamp_period());
        self.inner.profiler.start(timing, period_ns)?;
        /// Ends the profile however `f` leaves.
        struct Stop<'a>(&'a Profiler);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.stop();
            }
        }
        let stop = Stop(&self.inner.profiler);
        let out = f();
        std::mem::forget(stop);
        Ok((out, self.inner.profiler.stop()))
    }

    /// Resolves once the GPU has finished everything submitted so far (without blocking: see
    /// [`crate::gpu::mapping`]).
    pub(crate) fn work_done(&self) -> crate::gpu::mapping::Callback<()> {
        self.inner.poller.work_done(&self.inner.queue)
    }

    /// Maps `staging` (after the submit that fills it) and returns its first `len` values,
    /// waiting for the mapping without blocking the thread (see [`crate::gpu::mapping`]).
    pub(crate) async fn read_staging_async(
        &self,
        staging: &wgpu::Buffer,
        len: usize,
        counters: &Counters,
    ) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let slice = staging.slice(0..bytes);
        // In an error scope: on a lost device map_async reports a validation error, which
        // outside one would go to the device's uncaptured-error handler (a panic by default).
        let mapped = self.catch("mapping results for readback", || {
            self.inner.poller.map(slice, wgpu::MapMode::Read)
        })?;
        // Should the caller drop this future before the mapping resolves, the pending mapping
        // is cancelled, so the next call can map the staging buffer again.
        let mut pending = CancelOnDrop {
            gpu: self,
            buffer: staging,
            mapped: Some(mapped),
        };
        let resolved = match pending.mapped.as_mut() {
            Some(mapped) => mapped.await,
            None => unreachable!("set just above"),
        };
        pending.mapped = None;
        if let Err(e) = resolved {
            // A non-blocking poll delivers a device-lost callback still pending, so that a lost
            // device is reported as such.
            let _ = self.inner.device.poll(wgpu::PollType::Poll);
            return Err(self.lost_or(Error::Readback(e.to_string())));
        }
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::pod_collect_to_vec::<u8, f32>(&view)
        };
        staging.unmap();
        counters.readback(bytes);
        Ok(out)
    }
}

/// Cancels a pending mapping of the buffer when dropped while still holding it.
struct CancelOnDrop<'a> {
    gpu: &'a Gpu,
    buffer: &'a wgpu::Buffer,
    mapped: Option<crate::gpu::mapping::Callback<std::result::Result<(), wgpu::BufferAsyncError>>>,
}

/// How long a cancelled mapping may take to report back (see [`CancelOnDrop`]).
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(mut mapped) = self.mapped.take() else {
            return;
        };
        // Unmapping a buffer whose mapping is pending aborts it (its callback reports the
        // abort at once). In an error scope, as every call that can fail validation.
        let _ = self
            .gpu
            .catch("cancelling a readback", || self.buffer.unmap());
        #[cfg(not(target_arch = "wasm32"))]
        self.await_cancelled(&mut mapped);
        #[cfg(target_arch = "wasm32")]
        let _ = mapped;
    }
}

impl CancelOnDrop<'_> {
    #[cfg(not(target_arch = "wasm32"))]
    fn await_cancelled(
        &self,
        mapped: &mut crate::gpu::mapping::Callback<std::result::Result<(), wgpu::BufferAsyncError>>,
    ) {
        use std::future::Future as _;
        // But the polling thread may be completing the mapping at this very moment: wgpu marks
        // the buffer unmapped while it maps it, so the unmap above finds nothing to do, and the
        // mapping lands just after. Its callback comes right after it (it already came, or
        // comes within that poll, in every other case), so wait for it, and unmap what it
        // mapped. Should it somehow not come, the next submit reports the buffer as mapped.
        let deadline = std::time::Instant::now() + CANCEL_WAIT;
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            match std::pin::Pin::new(&mut *mapped).poll(&mut cx) {
                std::task::Poll::Ready(Ok(())) => {
                    // Mapped after all (an unmap that already happened reports an error here,
                    // which the scope swallows).
                    let _ = self
                        .gpu
                        .catch("cancelling a readback", || self.buffer.unmap());
                    return;
                }
                std::task::Poll::Ready(Err(_)) => return,
                std::task::Poll::Pending if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                std::task::Poll::Pending => return,
            }
        }
    }
}

/// [`Error::DeviceLimit`] when `bytes` exceeds the device's `limit_name`.
fn check_limit(tensor: &str, bytes: u64, limit_name: &'static str, limit: u64) -> Result<()> {
    if bytes > limit {
        return Err(Error::DeviceLimit {
            tensor: tensor.to_string(),
            bytes,
            limit_name,
            limit,
        });
    }
    Ok(())
}
