//! The end of a training step on the GPU: the global gradient norm and clipping factor (when
//! clipping is on) and the optimizer's update, each one dispatch over the whole arena. The
//! update's uniform is rewritten before every step with that step's scheduled learning rate.

use crate::error::Result;
use crate::gpu::context::Gpu;
use crate::gpu::dispatch::{Dispatch, record_all};
use crate::gpu::kernels::adam::{self, Adam};
use crate::gpu::kernels::arena_update::ArenaUpdate;
use crate::gpu::kernels::grad_norm::GradNorm;
use crate::gpu::kernels::sgd::{self, Sgd};
use crate::gpu::plan::arenas::Arenas;
use crate::gpu::recording::Recording;
use crate::gpu::stats::Counters;
use crate::optim::{Optimizer, TrainConfig};

/// Clipping (optional) and the optimizer update, prepared once.
pub(crate) struct UpdatePlan {
    clip: Vec<Dispatch>,
    update: Dispatch,
    config: TrainConfig,
    len: usize,
}

impl UpdatePlan {
    pub(crate) fn new(
        gpu: &Gpu,
        counters: &Counters,
        config: &TrainConfig,
        a: &Arenas,
    ) -> Result<Self> {
        let mut clip = Vec::new();
        if let Some(max_norm) = config.clip_norm {
            let norm = GradNorm {
                finish: false,
                grads: &a.grads,
                len: a.len,
                max_norm,
                partials: &a.partials,
                clip: &a.clip,
            };
            for pass in norm.passes() {
                clip.push(Dispatch::new(gpu, counters, "gradient norm", &pass)?);
            }
        }
        let arena = ArenaUpdate {
            params: &a.params,
            grads: &a.grads,
            clip: &a.clip,
            len: a.len,
        };
        let update = match config.optimizer {
            Optimizer::Adam(c) => {
                let [m, v] = &a.moments[..] else {
                    return Err(moment_count(&config.optimizer, a));
                };
                let call = Adam {
                    arena,
                    m,
                    v,
                    config: c,
                    step: 1,
                };
                Dispatch::new(gpu, counters, "adam", &call)?
            }
            Optimizer::Sgd { lr, momentum } => {
                let [buf] = &a.moments[..] else {
                    return Err(moment_count(&config.optimizer, a));
                };
                let call = Sgd {
                    arena,
                    buf,
                    lr,
                    momentum,
                };
                Dispatch::new(gpu, counters, "sgd", &call)?
            }
        };
        Ok(UpdatePlan {
            clip,
            update,
            config: *config,
            len: a.len,
        })
    }

    /// Writes the uniform for optimizer step `step` (1-based): its scheduled learning rate and,
    /// for Adam, its bias corrections. Lands before the next submit.
    pub(crate) fn set_step(&self, gpu: &Gpu, counters: &Counters, step: u64) -> Result<()> {
        match self.config.optimizer_at(step.saturating_sub(1)) {
            Optimizer::Adam(c) => {
                let p = adam::params(self.len, &c, step)?;
                self.update.write_params(gpu, counters, &p);
            }
            Optimizer::Sgd { lr, momentum } => {
                let p = sgd::params(self.len, lr, momentum)?;
                self.update.write_params(gpu, counters, &p);
            }
        }
        Ok(())
    }

    /// Records clipping and the update.
    pub(crate) fn record(&self, gpu: &Gpu, pass: &mut Recording<'_>, counters: &Counters) {
        record_all(gpu, pass, &self.clip, counters);
        self.update.record(gpu, pass, None, counters);
    }
}

fn moment_count(o: &Optimizer, a: &Arenas) -> crate::error::Error {
    crate::error::Error::config(
        "optimizer state",
        format!(
            "{} keeps {} moments, {} were allocated",
            o.name(),
            o.moment_names().len(),
            a.moments.len()
        ),
    )
}
