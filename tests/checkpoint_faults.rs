//! A checkpoint save that fails part way, or a process killed while saving, leaves the previous
//! checkpoint loadable and intact.
//!
//! Faults are real, not simulated: a file-size limit (`RLIMIT_FSIZE`) makes the kernel refuse
//! every write past N bytes, as a full disk would, and `SIGKILL` ends a process that saves in a
//! loop at an arbitrary point. This file has its own `main` (`harness = false`): the kill test
//! runs this same executable as the child it kills, and the file-size limit, which holds for the
//! whole process, never overlaps another test's writes.

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {
    println!("checkpoint fault injection needs RLIMIT_FSIZE and SIGKILL (Unix); nothing to run");
}

#[cfg(unix)]
mod unix {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use lstm_wgpu::Error;
    use lstm_wgpu::train::{
        Checkpoint, ClassifierConfig, ClassifierWeights, LrSchedule, Optimizer, OptimizerState,
        TrainConfig,
    };

    /// Set in the child: the checkpoint path it saves to until it is killed.
    const CHILD: &str = "LSTM_WGPU_SAVE_FOREVER";

    pub fn main() {
        if let Some(path) = std::env::var_os(CHILD) {
            save_forever(Path::new(&path));
        }
        let tests: [(&str, fn()); 2] = [
            (
                "a_save_cut_off_after_n_bytes_leaves_the_previous_checkpoint_intact",
                a_save_cut_off_after_n_bytes_leaves_the_previous_checkpoint_intact,
            ),
            (
                "a_process_killed_while_saving_leaves_a_loadable_checkpoint",
                a_process_killed_while_saving_leaves_a_loadable_checkpoint,
            ),
        ];
        let filter: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        for (name, test) in tests {
            if filter.iter().all(|f| name.contains(f.as_str())) {
                test();
                println!("test {name} ... ok");
            }
        }
    }

    /// A checkpoint whose every parameter is `value` (so a mixture of two is visible), of a
    /// model large enough (~2.4 MB with Adam's moments) that a save takes many writes.
    fn checkpoint(value: f32, step: u64) -> Checkpoint {
        let model = ClassifierConfig::new(28, 128, 2, 10).unwrap();
        let optimizer = Optimizer::adam(1e-3);
        let mut weights = ClassifierWeights::zeros(model);
        for t in weights.tensors_mut() {
            t.fill(value);
        }
        let mut state = OptimizerState::new(&optimizer, model);
        state.step = step;
        for m in &mut state.moments {
            for t in m.tensors_mut() {
                t.fill(value / 8.0);
            }
        }
        Checkpoint {
            weights,
            config: TrainConfig {
                optimizer,
                clip_norm: Some(5.0),
                schedule: LrSchedule::constant(),
            },
            dropout: None,
            state,
            planned_steps: Some(1000),
            seed: 7,
            batch_size: 128,
            dataset: "faults".into(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lstm-wgpu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Runs `f` with writes limited to files of at most `bytes` bytes (`SIGXFSZ` ignored, so a
    /// write past the limit fails with `EFBIG` instead of killing the process).
    fn with_file_size_limit<T>(bytes: u64, f: impl FnOnce() -> T) -> T {
        // SAFETY: plain libc calls with valid arguments; the previous limit is restored.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let mut old = std::mem::zeroed::<libc::rlimit>();
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
            let new = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: old.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &new), 0);
            let out = f();
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &old), 0);
            out
        }
    }

    fn a_save_cut_off_after_n_bytes_leaves_the_previous_checkpoint_intact() {
        let dir = temp_dir("cut-off-save");
        let path = dir.join("checkpoint.safetensors");
        let good = checkpoint(0.25, 100);
        good.save(&path).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let newer = checkpoint(-0.5, 200);
        // Cut off before the first byte, inside the header, inside the tensors, one byte short.
        for limit in [0, 1, 100, size / 3, size / 2, size - 1] {
            let r = with_file_size_limit(limit, || newer.save(&path));
            match r {
                Err(Error::Io { path: p, .. }) => assert!(
                    p.file_name().unwrap().to_string_lossy().contains(".tmp-"),
                    "the error names the temporary file: {}",
                    p.display()
                ),
                other => {
                    panic!("save cut off at {limit} bytes: expected an I/O error, got {other:?}")
                }
            }
            let loaded = Checkpoint::load(&path).unwrap();
            assert!(
                loaded == good,
                "cut off at {limit} bytes: the previous checkpoint changed"
            );
            assert_eq!(
                files_in(&dir),
                ["checkpoint.safetensors"],
                "cut off at {limit} bytes: the temporary file was left behind"
            );
        }
        // With room again, the newer checkpoint replaces the old one.
        newer.save(&path).unwrap();
        assert!(Checkpoint::load(&path).unwrap() == newer);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The child: saves two different checkpoints in turn, forever.
    fn save_forever(path: &Path) -> ! {
        let pair = [checkpoint(1.0, 1), checkpoint(2.0, 2)];
        for i in 0.. {
            pair[i % 2].save(path).unwrap();
            if i == 0 {
                println!("saving");
            }
        }
        unreachable!()
    }

    fn a_process_killed_while_saving_leaves_a_loadable_checkpoint() {
        let dir = temp_dir("killed-save");
        let path = dir.join("checkpoint.safetensors");
        let pair = [checkpoint(1.0, 1), checkpoint(2.0, 2)];
        let exe = std::env::current_exe().unwrap();
        let mut seen = [0usize; 2];
        for round in 0..12u64 {
            let mut child = Command::new(&exe)
                .env(CHILD, &path)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            // Wait for the first complete save, then kill at a different moment each round.
            let mut line = String::new();
            let stdout = child.stdout.take().unwrap();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
            assert_eq!(
                line.trim(),
                "saving",
                "round {round}: the child did not start saving"
            );
            let started = Instant::now();
            std::thread::sleep(Duration::from_micros(1_700 * (round * 7 % 12 + 1)));
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert!(
                !status.success(),
                "round {round}: the child exited by itself"
            );
            let loaded = Checkpoint::load(&path).unwrap_or_else(|e| {
                panic!("round {round}, killed after {:?}: {e}", started.elapsed())
            });
            let which = pair
                .iter()
                .position(|c| *c == loaded)
                .unwrap_or_else(|| panic!("round {round}: the checkpoint is neither save"));
            seen[which] += 1;
            // A killed save leaves its temporary file (nobody is left to remove it); it never
            // replaces the checkpoint.
            for name in files_in(&dir) {
                assert!(
                    name == "checkpoint.safetensors"
                        || name.starts_with(".checkpoint.safetensors.tmp-"),
                    "round {round}: unexpected file {name}"
                );
            }
        }
        println!(
            "killed 12 saving processes: the checkpoint was save A {} times, B {}",
            seen[0], seen[1]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
