//! What the adapter does at best, measured on it: the figures the crate's own kernels are read
//! against (a bench prints its GFLOP/s as a share of [`Peak::fma_gflops`], a step's time as a
//! multiple of [`Peak::dispatch_us`]).
//!
//! Three kernels of `shaders/peak.wgsl`, each timed from the host around a submit and the wait
//! for it (so the figures need no adapter feature):
//!
//! * FMA throughput: enough invocations to fill a large GPU (2^20), each running 8 independent
//!   vec4 `fma` chains, nothing but arithmetic in the loop. The steps per chain double until one
//!   submit takes at least [`MIN_RUN`], so the submit's own cost is a small part of it.
//! * Copy bandwidth: a vec4 copy between two buffers of [`COPY_BYTES`] (or the adapter's binding
//!   limit), repeated in one pass until the submit takes at least [`MIN_RUN`]; bytes read plus
//!   bytes written per second.
//! * Load rates: [`LOAD_INVOCATIONS`] invocations each summing [`LOAD_ITERS`] vec4s of a grid
//!   [`LOAD_WIDTH`] vec4s wide, neighbouring invocations reading neighbouring vec4s (as a step
//!   kernel reads a row of weights), once from a storage buffer and once from an `rgba32float`
//!   texture bound as a read-only storage texture (`textureLoad`), as the step kernels bind the
//!   weights' textures, each repeated like the copy; bytes loaded per second. Where the
//!   two differ, a kernel's operands are best kept in the faster one.
//! * Dispatch cost: one submit of one empty dispatch, and one of [`EMPTY_DISPATCHES`]; the
//!   difference divided by the extra dispatches is what one more dispatch in a pass costs, the
//!   first is the floor of any call that waits for the GPU.
//!
//! Each figure is the best of [`RUNS`] runs: the probe asks what the adapter can do, and a
//! slower run only says that something else ran meanwhile.
//!
//! ```no_run
//! let gpu = lstm_wgpu::gpu::Gpu::from_env()?;
//! let peak = gpu.measure_peak()?;
//! println!("{peak}"); // FMA 121.3 GFLOP/s, copy 14.2 GB/s, storage loads …
//! # Ok::<(), lstm_wgpu::Error>(())
//! ```

use crate::gpu::recording::Recording;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::Dispatch;
use crate::gpu::kernels::peak::{PeakCall, Probe};
use crate::gpu::profile::Profile;
use crate::gpu::stats::Counters;

/// Invocations of the FMA probe, at most (enough to fill a large GPU).
pub const FMA_INVOCATIONS: usize = 1 << 20;
/// Invocations of the FMA probe's first run.
pub const FMA_MIN_INVOCATIONS: usize = 1 << 12;
/// Steps per chain of the FMA probe, at least (so each invocation's start and end cost little
/// beside its loop).
pub const FMA_MIN_STEPS: u32 = 1024;
/// FLOP per invocation and step of the FMA probe: 8 chains of 4 lanes, 2 FLOP per `fma`.
pub const FMA_FLOP_PER_STEP: f64 = 64.0;
/// Bytes of each of the copy probe's two buffers, at most.
pub const COPY_BYTES: u64 = 32 << 20;
/// Width of the load probes' grid in vec4s, at most (and at most the device's texture width).
pub const LOAD_WIDTH: usize = 1024;
/// Vec4s each invocation of the load probes sums.
pub const LOAD_ITERS: u32 = 16;
/// Invocations of the load probes, at most: a grid of `LOAD_WIDTH` by 1024 vec4s (16 MiB).
pub const LOAD_INVOCATIONS: usize = LOAD_WIDTH * 1024 / LOAD_ITERS as usize;
/// Empty dispatches in the long submit of the dispatch probe.
pub const EMPTY_DISPATCHES: u32 = 256;
/// The shortest submit the throughput probes accept as a measurement.
pub const MIN_RUN: Duration = Duration::from_millis(20);
/// Runs of each measurement, of which the best counts.
pub const RUNS: usize = 5;

/// Steps per chain (FMA) or copies per pass past which the probe stops growing a run.
const MAX_REPEATS: u32 = 1 << 16;

/// The adapter's measured limits (see the module documentation for how each is measured).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// FP32 arithmetic throughput, GFLOP/s (a fused multiply-add counts as 2 FLOP).
    pub fma_gflops: f64,
    /// Copy bandwidth, GB/s of bytes read plus bytes written.
    pub copy_gbs: f64,
    /// Rate of neighbouring vec4 loads from a storage buffer, GB/s loaded.
    pub storage_load_gbs: f64,
    /// Rate of the same loads from an `rgba32float` read-only storage texture (`textureLoad`),
    /// GB/s loaded.
    pub texture_load_gbs: f64,
    /// What one more (empty) dispatch inside a pass costs, µs.
    pub dispatch_us: f64,
    /// One submit of one empty dispatch and the wait for it, µs: the floor of a call.
    pub submit_us: f64,
}

impl Peak {
    /// Each figure at the better of `self` and `other`: the higher rates, the lower costs. The
    /// probe asks what the adapter can do, and a worse reading only says that something else
    /// ran meanwhile (as for the best of [`RUNS`] inside one measurement), so two measurements
    /// (before and after a long benchmark, say) combine into one that neither spell of
    /// interference skews.
    pub fn best(self, other: Peak) -> Peak {
        Peak {
            fma_gflops: self.fma_gflops.max(other.fma_gflops),
            copy_gbs: self.copy_gbs.max(other.copy_gbs),
            storage_load_gbs: self.storage_load_gbs.max(other.storage_load_gbs),
            texture_load_gbs: self.texture_load_gbs.max(other.texture_load_gbs),
            dispatch_us: self.dispatch_us.min(other.dispatch_us),
            submit_us: self.submit_us.min(other.submit_us),
        }
    }
}

impl std::fmt::Display for Peak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FMA {:.1} GFLOP/s, copy {:.1} GB/s, storage loads {:.1} GB/s, texture loads \
             {:.1} GB/s, dispatch {:.1} µs, submit {:.1} µs",
            self.fma_gflops,
            self.copy_gbs,
            self.storage_load_gbs,
            self.texture_load_gbs,
            self.dispatch_us,
            self.submit_us
        )
    }
}

impl Gpu {
    /// Measures the adapter's [`Peak`]: blocks for a few tenths of a second up to a few seconds
    /// (on a CPU-emulated adapter). Fails with [`Error::Gpu`] when the device cannot hold the
    /// probe's buffers and [`Error::DeviceLost`] / [`Error::Readback`] when it stops answering.
    pub fn measure_peak(&self) -> Result<Peak> {
        let counters = Counters::default();
        let copy_bytes = COPY_BYTES
            .min(self.limits().max_storage_buffer_binding_size)
            .min(self.limits().max_buffer_size)
            / 16
            * 16;
        let vec4s = (copy_bytes / 16) as usize;
        let fma_bytes = (FMA_INVOCATIONS * 16) as u64;
        let (src, dst) = self.catch("allocating the peak probe's buffers", || {
            let usage = wgpu::BufferUsages::STORAGE;
            let make = |label, size| {
                self.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size,
                    usage,
                    mapped_at_creation: false,
                })
            };
            let size = copy_bytes.max(fma_bytes);
            (make("peak src", size), make("peak dst", size))
        })?;
        // The load probes' grid: as wide as the device's textures allow, rows in whole bands
        // of LOAD_ITERS, no larger than the storage buffer.
        let max_side = self.limits().max_texture_dimension_2d as usize;
        let load_width = LOAD_WIDTH.min(max_side);
        let load_rows = (LOAD_INVOCATIONS * LOAD_ITERS as usize / load_width)
            .min(max_side)
            .min(vec4s / load_width)
            / LOAD_ITERS as usize
            * LOAD_ITERS as usize;
        let load_n = load_width * load_rows / LOAD_ITERS as usize;
        let texels = self.catch("allocating the peak probe's texture", || {
            self.texture_vec4("peak texels", (load_width, load_rows.max(1)), None)
        })??;
        let texels = texels.create_view(&Default::default());
        let prepare = |probe, n| {
            let call = PeakCall {
                probe,
                n,
                src: &src,
                dst: &dst,
                texels: &texels,
            };
            Dispatch::new(self, &counters, "peak probe", &call)
        };

        // FMA: grow the invocations (then the steps per chain) until a run is long enough,
        // then keep the best.
        let (mut invocations, mut iters) = (FMA_MIN_INVOCATIONS, FMA_MIN_STEPS);
        let fma = loop {
            let d = prepare(Probe::Fma { iters }, invocations)?;
            let t = self.time_dispatches(&d, 1, &counters)?;
            if t >= MIN_RUN || iters >= MAX_REPEATS {
                let best = self.best_of(&d, 1, &counters, t)?;
                let flop = invocations as f64 * f64::from(iters) * FMA_FLOP_PER_STEP;
                break flop / best.as_secs_f64() / 1e9;
            }
            if invocations < FMA_INVOCATIONS {
                invocations *= 2;
            } else {
                iters *= 2;
            }
        };

        // Copy: grow the copies per pass likewise.
        let d = prepare(Probe::Copy, vec4s)?;
        let mut copies = 1u32;
        let copy = loop {
            let t = self.time_dispatches(&d, copies, &counters)?;
            if t >= MIN_RUN || copies >= MAX_REPEATS {
                let best = self.best_of(&d, copies, &counters, t)?;
                let bytes = 2.0 * copy_bytes as f64 * f64::from(copies);
                break bytes / best.as_secs_f64() / 1e9;
            }
            copies *= 2;
        };

        // Loads: each way, the repeats grown like the copy's.
        let load = |texture| -> Result<f64> {
            let width = load_width as u32; // at most LOAD_WIDTH
            let probe = Probe::Load {
                iters: LOAD_ITERS,
                width,
                texture,
            };
            let d = prepare(probe, load_n)?;
            let mut repeats = 1u32;
            loop {
                let t = self.time_dispatches(&d, repeats, &counters)?;
                if t >= MIN_RUN || repeats >= MAX_REPEATS {
                    let best = self.best_of(&d, repeats, &counters, t)?;
                    let loads = load_n as f64 * f64::from(LOAD_ITERS * repeats);
                    let bytes = 16.0 * loads;
                    break Ok(bytes / best.as_secs_f64() / 1e9);
                }
                repeats *= 2;
            }
        };
        let storage_load = load(false)?;
        let texture_load = load(true)?;

        // Dispatch: one empty dispatch against many.
        let d = prepare(Probe::Empty, 1)?;
        let one = self.time_dispatches(&d, 1, &counters)?;
        let one = self.best_of(&d, 1, &counters, one)?;
        let many = self.time_dispatches(&d, EMPTY_DISPATCHES, &counters)?;
        let many = self.best_of(&d, EMPTY_DISPATCHES, &counters, many)?;
        let extra = many.saturating_sub(one).as_secs_f64();
        Ok(Peak {
            fma_gflops: fma,
            copy_gbs: copy,
            storage_load_gbs: storage_load,
            texture_load_gbs: texture_load,
            dispatch_us: extra / f64::from(EMPTY_DISPATCHES - 1) * 1e6,
            submit_us: one.as_secs_f64() * 1e6,
        })
    }

    /// The shortest of `first` and [`RUNS`]` - 1` further runs of `repeats` × `d`.
    fn best_of(
        &self,
        d: &Dispatch,
        repeats: u32,
        counters: &Counters,
        first: Duration,
    ) -> Result<Duration> {
        let mut best = first;
        for _ in 1..RUNS {
            best = best.min(self.time_dispatches(d, repeats, counters)?);
        }
        Ok(best)
    }

    /// Records `d` `repeats` times in one pass, submits, and waits for the GPU: the wall time
    /// from the submit to the end of the wait.
    fn time_dispatches(&self, d: &Dispatch, repeats: u32, counters: &Counters) -> Result<Duration> {
        self.check_alive()?;
        let mut encoder = self.device().create_command_encoder(&Default::default());
        {
            let mut pass = Recording::begin(&mut encoder);
            for _ in 0..repeats {
                d.record(self, &mut pass, None, counters);
            }
        }
        let t0 = Instant::now();
        self.submit(encoder, counters);
        self.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Readback(format!("waiting for the peak probe: {e}")))?;
        let t = t0.elapsed();
        self.check_alive()?;
        Ok(t)
    }
}

impl Profile {
    /// A text table: kernel, purpose, calls, total and mean time, share of the total,
    /// GFLOP/s, % of `peak`'s FMA throughput, GB/s and % of its copy bandwidth.
    pub fn table(&self, peak: Option<&Peak>) -> String {
        let mut out = format!(
            "{:<36} {:<20} {:>6} {:>11} {:>10} {:>6} {:>8} {:>7} {:>7} {:>7}\n",
            "kernel",
            "for",
            "calls",
            "total",
            "mean",
            "share",
            "GFLOP/s",
            "% FMA",
            "GB/s",
            "% copy"
        );
        let total = self.total().as_secs_f64().max(1e-12);
        for r in &self.rows {
            let pct = |v: f64, of: Option<f64>| match of {
                Some(p) if p > 0.0 => format!("{:.1}", 100.0 * v / p),
                _ => "-".into(),
            };
            out.push_str(&format!(
                "{:<36} {:<20} {:>6} {:>11} {:>10} {:>5.1}% {:>8.2} {:>7} {:>7.2} {:>7}\n",
                r.kernel.desc().name,
                r.label,
                r.calls,
                format!("{:.2?}", r.time),
                format!("{:.2?}", r.time / r.calls.max(1) as u32),
                100.0 * r.time.as_secs_f64() / total,
                r.gflops(),
                pct(r.gflops(), peak.map(|p| p.fma_gflops)),
                r.gbs(),
                pct(r.gbs(), peak.map(|p| p.copy_gbs)),
            ));
        }
        out.push_str(&format!(
            "{:<36} {:<20} {:>6} {:>11}\n",
            "all",
            "",
            self.dispatches(),
            format!("{:.2?}", self.total())
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Peak;

    #[test]
    fn the_best_of_two_peaks_takes_the_higher_rates_and_the_lower_costs() {
        let a = Peak {
            fma_gflops: 70.0,
            copy_gbs: 9.0,
            storage_load_gbs: 5.0,
            texture_load_gbs: 11.0,
            dispatch_us: 21.0,
            submit_us: 90.0,
        };
        let b = Peak {
            fma_gflops: 140.0,
            copy_gbs: 8.0,
            storage_load_gbs: 7.0,
            texture_load_gbs: 9.0,
            dispatch_us: 44.0,
            submit_us: 60.0,
        };
        let want = Peak {
            fma_gflops: 140.0,
            copy_gbs: 9.0,
            storage_load_gbs: 7.0,
            texture_load_gbs: 11.0,
            dispatch_us: 21.0,
            submit_us: 60.0,
        };
        assert_eq!(a.best(b), want);
        assert_eq!(b.best(a), want);
    }
}
