//! Training the reference sequence classifier: LSTM → dense layer on the last hidden state →
//! softmax cross-entropy, optimised with SGD or Adam, on the CPU or the GPU.

pub mod checkpoint;
pub mod classifier;
pub mod cpu_trainer;
pub mod fit;
pub mod gpu_trainer;
pub mod metrics;
pub mod optimizer_state;
pub mod schedule;
pub mod tensorboard;
pub mod trainer;

pub use crate::optim::{AdamConfig, LrDecay, LrSchedule, Optimizer, TrainConfig};
pub use checkpoint::Checkpoint;
pub use classifier::{ClassifierConfig, ClassifierWeights};
pub use cpu_trainer::CpuTrainer;
pub use fit::{Event, Plan, fit};
pub use gpu_trainer::GpuTrainer;
pub use metrics::Metrics;
pub use optimizer_state::OptimizerState;
pub use trainer::Trainer;
