//! Per-kernel GPU time: [`Gpu::profile`] runs the caller's code and reports, for every kernel and
//! purpose (`forward step`, `input projection`, ...), its dispatches, time and the work it did;
//! [`Profile::table`] (defined with [`Peak`]) prints the rates beside the adapter's peak.
//!
//! While a profile is on, every dispatch the crate records is timed on its own, in the most
//! precise way the device offers ([`ProfileTiming`]):
//!
//! * [`ProfileTiming::InsidePasses`]: two timestamps around the dispatch, written inside the
//!   compute pass (`TIMESTAMP_QUERY | TIMESTAMP_QUERY_INSIDE_PASSES`); nothing else changes;
//! * [`ProfileTiming::PassBoundaries`]: the dispatch in a compute pass of its own, timestamps
//!   written at the pass's beginning and end (`TIMESTAMP_QUERY` alone: Apple's GPUs on Metal,
//!   for one);
//! * [`ProfileTiming::Submits`]: on any device, what was recorded before the dispatch is
//!   submitted and waited for, then the dispatch alone, timed on the CPU from its submit to the
//!   end of the wait (so each time includes a submit's and a wait's overhead: the probe's
//!   `submit_us`).
//!
//! [`Gpu::from_env`] asks for the timestamp features the adapter has. With timestamps, each
//! submit of the crate resolves the ones its dispatches wrote and waits for them, so a profiled
//! call runs as usual but waits for the GPU after every submit. Whichever the timing, the results
//! are the same bits as without a profile. Work recorded into an application's own encoder
//! (`encode_*`) is not profiled, and neither is work submitted from inside the profile by a
//! thread that did not record it.
//!
//! [`Gpu::profile`]: crate::gpu::Gpu::profile
//! [`Gpu::from_env`]: crate::gpu::Gpu::from_env
//! [`Peak`]: crate::gpu::Peak
//!
//! ```no_run
//! use lstm_wgpu::gpu::{Gpu, GpuLstm};
//! use lstm_wgpu::{Lstm, LstmConfig, LstmWeights, ndarray::Array3};
//!
//! let gpu = Gpu::from_env()?;
//! let mut lstm = GpuLstm::new(&gpu, &LstmWeights::init_uniform(LstmConfig::new(28, 128, 1)?, 0))?;
//! let x = Array3::<f32>::zeros((128, 28, 28));
//! let (_, profile) = gpu.profile(|| lstm.forward(x.view(), None))?;
//! println!("{}", profile.table(Some(&gpu.measure_peak()?)));
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::kernels::{Kernel, Work};
use crate::gpu::recording::Recording;

/// Timestamps per query set (wgpu's largest query set).
const QUERIES_PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// The features of the most precise timing, [`ProfileTiming::InsidePasses`].
pub const PROFILE_FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

/// How a profile times each dispatch (see the module comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProfileTiming {
    /// Timestamps around the dispatch inside the compute pass.
    #[default]
    InsidePasses,
    /// The dispatch in a compute pass of its own, timestamps at its beginning and end.
    PassBoundaries,
    /// The dispatch submitted on its own, timed on the CPU from its submit to the end of the
    /// wait for it.
    Submits,
}

impl ProfileTiming {
    /// Every timing, the most precise first.
    pub const ALL: [ProfileTiming; 3] = [
        ProfileTiming::InsidePasses,
        ProfileTiming::PassBoundaries,
        ProfileTiming::Submits,
    ];

    /// The device features this timing needs.
    pub fn features(self) -> wgpu::Features {
        match self {
            ProfileTiming::InsidePasses => PROFILE_FEATURES,
            ProfileTiming::PassBoundaries => wgpu::Features::TIMESTAMP_QUERY,
            ProfileTiming::Submits => wgpu::Features::empty(),
        }
    }

    /// The most precise timing a device with `features` offers.
    pub fn best_for(features: wgpu::Features) -> ProfileTiming {
        ProfileTiming::ALL
            .into_iter()
            .find(|t| features.contains(t.features()))
            .unwrap_or(ProfileTiming::Submits)
    }
}

/// One kernel used for one purpose in a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    /// The kernel (its descriptor's name is `kernel.desc().name`).
    pub kernel: Kernel,
    /// What the dispatches were for (`forward step`, `input projection`, `adam`, ...).
    pub label: &'static str,
    /// Dispatches.
    pub calls: u64,
    /// GPU time of all of them, from the timestamps around each.
    pub time: Duration,
    /// What all of them computed and moved.
    pub work: Work,
}

impl ProfileRow {
    /// GFLOP/s over the row's GPU time.
    pub fn gflops(&self) -> f64 {
        self.work.flop as f64 / self.time.as_secs_f64().max(1e-12) / 1e9
    }

    /// GB/s over the row's GPU time.
    pub fn gbs(&self) -> f64 {
        self.work.bytes as f64 / self.time.as_secs_f64().max(1e-12) / 1e9
    }
}

/// What the dispatches inside one [`Gpu::profile`](crate::gpu::Gpu::profile) cost, a row per kernel and purpose in the
/// order they first ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// The rows.
    pub rows: Vec<ProfileRow>,
    /// How each dispatch was timed.
    pub timing: ProfileTiming,
}

impl Profile {
    /// GPU time of every profiled dispatch.
    pub fn total(&self) -> Duration {
        self.rows.iter().map(|r| r.time).sum()
    }

    /// Dispatches profiled.
    pub fn dispatches(&self) -> u64 {
        self.rows.iter().map(|r| r.calls).sum()
    }

    fn add(&mut self, kernel: Kernel, label: &'static str, time: Duration, work: Work) {
        let row = match self
            .rows
            .iter_mut()
            .position(|r| r.kernel == kernel && r.label == label)
        {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(ProfileRow {
                    kernel,
                    label,
                    calls: 0,
                    time: Duration::ZERO,
                    work: Work::default(),
                });
                self.rows.last_mut().expect("pushed just above")
            }
        };
        row.calls += 1;
        row.time += time;
        row.work.flop += work.flop;
        row.work.bytes += work.bytes;
    }
}

thread_local! {
    /// Nonzero while this thread records into an application's encoder (see [`NotProfiled`]).
    static NOT_PROFILED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// While alive, dispatches this thread records get no timestamps: for the `encode_*` paths,
/// whose encoder the application submits (or not) without the crate resolving its queries.
pub(crate) struct NotProfiled(());

impl NotProfiled {
    pub(crate) fn new() -> NotProfiled {
        NOT_PROFILED.with(|n| n.set(n.get() + 1));
        NotProfiled(())
    }
}

impl Drop for NotProfiled {
    fn drop(&mut self) {
        NOT_PROFILED.with(|n| n.set(n.get() - 1));
    }
}

/// The profile state of one device (inside [`Gpu`]): off, or a session collecting timestamps.
#[derive(Default)]
pub(crate) struct Profiler {
    /// Whether a session is on (checked at every dispatch without taking the lock).
    on: AtomicBool,
    session: Mutex<Option<Session>>,
}

struct Session {
    timing: ProfileTiming,
    /// Query sets, grown as one submit records more dispatches.
    sets: Vec<wgpu::QuerySet>,
    /// The dispatches recorded since the last submit, in query order (2 queries each).
    pending: Vec<(Kernel, &'static str, Work)>,
    profile: Profile,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

impl Session {
    /// The query set and index of the next dispatch's two timestamps (after those of the
    /// dispatches pending since the last submit), adding a set where they are all taken.
    fn next_queries(&mut self, device: &wgpu::Device) -> (&wgpu::QuerySet, u32) {
        let first = 2 * self.pending.len() as u32;
        let (set, index) = (first / QUERIES_PER_SET, first % QUERIES_PER_SET);
        while self.sets.len() <= set as usize {
            self.sets
                .push(device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("profile timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: QUERIES_PER_SET,
                }));
        }
        (&self.sets[set as usize], index)
    }
}

/// A submit's timestamps on their way back: the buffer they are copied to and whose they are.
pub(crate) struct Resolved {
    readback: wgpu::Buffer,
    dispatches: Vec<(Kernel, &'static str, Work)>,
}

impl Profiler {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        // The session holds plain data, consistent after any panic: go on with it.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session timed as `timing` says, whose timestamps tick every `period_ns`
    /// nanoseconds.
    pub(crate) fn start(&self, timing: ProfileTiming, period_ns: f64) -> Result<()> {
        let mut s = self.lock();
        if s.is_some() {
            return Err(Error::config(
                "profile",
                "a profile of this device is already running",
            ));
        }
        *s = Some(Session {
            timing,
            sets: Vec::new(),
            pending: Vec::new(),
            profile: Profile {
                rows: Vec::new(),
                timing,
            },
            period_ns,
        });
        self.on.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Ends the session and returns what it collected.
    pub(crate) fn stop(&self) -> Profile {
        self.on.store(false, Ordering::SeqCst);
        self.lock().take().map(|s| s.profile).unwrap_or_default()
    }

    /// Records `dispatch` into `rec`, timed on its own when a profile is on.
    pub(crate) fn around(
        &self,
        (device, queue): (&wgpu::Device, &wgpu::Queue),
        rec: &mut Recording<'_>,
        what: (Kernel, &'static str, Work),
        dispatch: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) {
        if !self.on.load(Ordering::Relaxed) || NOT_PROFILED.with(|n| n.get() > 0) {
            return dispatch(rec.pass());
        }
        let mut guard = self.lock();
        let Some(s) = guard.as_mut() else {
            return dispatch(rec.pass());
        };
        match s.timing {
            ProfileTiming::InsidePasses => {
                let (qs, index) = s.next_queries(device);
                let pass = rec.pass();
                pass.write_timestamp(qs, index);
                dispatch(pass);
                pass.write_timestamp(qs, index + 1);
                s.pending.push(what);
            }
            ProfileTiming::PassBoundaries => {
                let (query_set, index) = s.next_queries(device);
                let mut pass = rec
                    .encoder()
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(what.1),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set,
                            beginning_of_pass_write_index: Some(index),
                            end_of_pass_write_index: Some(index + 1),
                        }),
                    });
                dispatch(&mut pass);
                drop(pass);
                s.pending.push(what);
            }
            ProfileTiming::Submits => {
                // What the call recorded before this dispatch runs first, untimed; the call
                // records the rest into a fresh encoder.
                let fresh = device.create_command_encoder(&Default::default());
                let before = std::mem::replace(rec.encoder(), fresh);
                queue.submit([before.finish()]);
                let mut alone = device.create_command_encoder(&Default::default());
                dispatch(&mut alone.begin_compute_pass(&Default::default()));
                let wait = || device.poll(wgpu::PollType::wait_indefinitely()).is_ok();
                let waited = wait();
                let t0 = Instant::now();
                queue.submit([alone.finish()]);
                // A device that fails to wait is lost: the call's own wait reports it, and the
                // profile goes without this dispatch.
                if waited && wait() {
                    let (kernel, label, work) = what;
                    s.profile.add(kernel, label, t0.elapsed(), work);
                }
            }
        }
    }

    /// Before a submit: resolves the timestamps the encoder's dispatches wrote into a buffer
    /// to read after the submit (`None` when no profile is on or nothing was recorded).
    pub(crate) fn resolve(
        &self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Option<Resolved> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        let mut guard = self.lock();
        let s = guard.as_mut()?;
        if s.pending.is_empty() {
            return None;
        }
        let queries = 2 * s.pending.len() as u64;
        let size = queries * 8;
        let usage = wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let resolve = buffer("profile resolve", usage);
        let readback = buffer(
            "profile readback",
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        for (i, set) in s.sets.iter().enumerate() {
            let start = i as u64 * u64::from(QUERIES_PER_SET);
            if start >= queries {
                break;
            }
            let end = queries.min(start + u64::from(QUERIES_PER_SET));
            encoder.resolve_query_set(set, 0..(end - start) as u32, &resolve, start * 8);
        }
        encoder.copy_buffer_to_buffer(&resolve, 0, &readback, 0, size);
        Some(Resolved {
            readback,
            dispatches: std::mem::take(&mut s.pending),
        })
    }

    /// After the submit: waits for the timestamps and adds each dispatch's time to the profile.
    /// A readback that fails leaves the profile without those dispatches.
    pub(crate) fn collect(&self, device: &wgpu::Device, resolved: Resolved) {
        let slice = resolved.readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        if device.poll(wgpu::PollType::wait_indefinitely()).is_err() {
            return;
        }
        if !matches!(rx.recv(), Ok(Ok(()))) {
            return;
        }
        let ticks = match slice.get_mapped_range() {
            Ok(view) => bytemuck::pod_collect_to_vec::<u8, u64>(&view),
            Err(_) => return,
        };
        resolved.readback.unmap();
        let mut guard = self.lock();
        let Some(s) = guard.as_mut() else { return };
        for (i, (kernel, label, work)) in resolved.dispatches.into_iter().enumerate() {
            let (t0, t1) = (ticks[2 * i], ticks[2 * i + 1]);
            let ns = t1.saturating_sub(t0) as f64 * s.period_ns;
            s.profile
                .add(kernel, label, Duration::from_nanos(ns as u64), work);
        }
    }
}
