//! Training the reference sequence classifier: LSTM → dense layer on the last hidden state →
//! softmax cross-entropy, optimised with SGD or Adam, on the CPU or the GPU.

pub mod checkpoint;
pub mod classifier;
pub mod cpu_trainer;
pub mod fit;
pub mod gpu_trainer;
pub mod metrics;
pub mod optimizer;
pub mod schedule;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use classifier::{ClassifierConfig, ClassifierWeights};
pub use cpu_trainer::CpuTrainer;
pub use fit::{Event, Plan, fit};
pub use gpu_trainer::GpuTrainer;
pub use metrics::Metrics;
pub use optimizer::{Optimizer, OptimizerState, TrainConfig};
pub use trainer::Trainer;
