//! Damaged files never panic a loader: every truncation, bit flips at random places and lying
//! headers of weights, checkpoints and IDX files give an error (or, for a flip that leaves the
//! file well-formed, a value), never a panic or an allocation the header asked for.
mod common;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use common::random_weights;
use lstm_wgpu::data::idx::parse_idx;
use lstm_wgpu::rng::Rng;
use lstm_wgpu::train::{
    Checkpoint, ClassifierConfig, ClassifierWeights, CpuTrainer, LrSchedule, Optimizer,
    TrainConfig, Trainer,
};
use lstm_wgpu::{LstmConfig, LstmWeights};

/// Runs `load` on every damaged version of `good`, failing with the variant that panicked.
fn never_panics<T>(what: &str, good: &[u8], mut load: impl FnMut(&[u8]) -> lstm_wgpu::Result<T>) {
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for len in 0..good.len() {
        variants.push((format!("truncated to {len} bytes"), good[..len].to_vec()));
    }
    let mut rng = Rng::new(7);
    for _ in 0..400 {
        let (byte, bit) = (rng.below(good.len()), rng.below(8));
        let mut v = good.to_vec();
        v[byte] ^= 1 << bit;
        variants.push((format!("bit {bit} of byte {byte} flipped"), v));
    }
    for n in [u64::MAX, 1 << 40, good.len() as u64, 1] {
        // safetensors files open with their header's length; IDX files with their dimensions.
        let mut v = good.to_vec();
        v[..8].copy_from_slice(&n.to_le_bytes());
        variants.push((format!("first 8 bytes = {n}"), v));
    }
    for (how, bytes) in variants {
        if catch_unwind(AssertUnwindSafe(|| load(&bytes))).is_err() {
            panic!("{what}: the loader panicked on a file {how}");
        }
    }
}

#[test]
fn damaged_weight_files_never_panic_the_loader() {
    let w = random_weights(LstmConfig::new(3, 4, 2).unwrap(), 1, 1.0);
    let good = w.to_safetensors_bytes().unwrap();
    assert!(LstmWeights::<f32>::from_safetensors_bytes(&good).is_ok());
    never_panics("weights", &good, |b| {
        LstmWeights::<f32>::from_safetensors_bytes(b)
    });
    never_panics("classifier weights", &good, |b| {
        ClassifierWeights::from_safetensors_bytes(b)
    });
}

#[test]
fn damaged_checkpoints_never_panic_the_loader() {
    let config = ClassifierConfig::new(3, 4, 1, 2).unwrap();
    let train = TrainConfig {
        optimizer: Optimizer::adam(1e-3),
        clip_norm: Some(1.0),
        schedule: LrSchedule::constant(),
    };
    let t = CpuTrainer::new(ClassifierWeights::init(config, 2, None), train, None).unwrap();
    let ck = Checkpoint {
        weights: t.weights().unwrap(),
        config: train,
        dropout: None,
        state: t.optimizer_state().unwrap(),
        planned_steps: Some(10),
        seed: 3,
        batch_size: 4,
        dataset: "temporal-order".into(),
    };
    let dir = std::env::temp_dir().join(format!("lstm-wgpu-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ck.safetensors");
    ck.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    assert_eq!(Checkpoint::load(&path).unwrap(), ck);
    // Checkpoints are read from files: each damaged variant is written to one first.
    never_panics("checkpoint", &good, |b| {
        let p = dir.join("damaged.safetensors");
        std::fs::File::create(&p)
            .and_then(|mut f| f.write_all(b))
            .unwrap();
        Checkpoint::load(&p)
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn damaged_idx_files_never_panic_the_reader() {
    // 3 images of 4 x 5 pixels, plain and gzip-compressed.
    let mut good = vec![0, 0, 0x08, 3];
    for d in [3u32, 4, 5] {
        good.extend_from_slice(&d.to_be_bytes());
    }
    good.extend((0..60).map(|v| v as u8));
    let path = Path::new("damaged-idx");
    assert!(parse_idx(&good, path).is_ok());
    never_panics("idx", &good, |b| parse_idx(b, path));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&good).unwrap();
    let gz = gz.finish().unwrap();
    never_panics("gzip idx", &gz, |b| parse_idx(b, path));
}
