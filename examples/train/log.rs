//! The metrics logs: one CSV row per display step (minibatch) and per epoch end (test), and the
//! same points (with the learning rate) as TensorBoard events, appended and flushed as training
//! goes, so a crash loses nothing already logged.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use lstm_wgpu::train::tensorboard::EventWriter;

use crate::curves::Point;
use crate::run_dir::event_files;

const HEADER: &str = "step,epoch,split,loss,accuracy,seconds";

pub struct MetricsLog {
    path: std::path::PathBuf,
    file: File,
}

impl MetricsLog {
    /// A new log; or, resuming at step `resume`, the existing one cut back to the rows up to that
    /// step (a run that went on past its last checkpoint must not leave rows twice).
    pub fn open(path: &Path, resume: Option<u64>) -> std::io::Result<Self> {
        let kept: Vec<String> = match resume {
            Some(step) => match File::open(path) {
                Ok(f) => BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .skip(1)
                    .filter(|l| {
                        l.split(',')
                            .next()
                            .and_then(|s| s.parse::<u64>().ok())
                            .is_some_and(|s| s <= step)
                    })
                    .collect(),
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        let mut file = File::create(path)?;
        writeln!(file, "{HEADER}")?;
        for line in kept {
            writeln!(file, "{line}")?;
        }
        file.flush()?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn row(
        &mut self,
        step: u64,
        epoch: u64,
        split: &str,
        loss: f64,
        accuracy: f64,
        seconds: f64,
    ) -> lstm_wgpu::Result<()> {
        writeln!(
            self.file,
            "{step},{epoch},{split},{loss:.6},{accuracy:.6},{seconds:.3}"
        )
        .and_then(|_| self.file.flush())
        .map_err(|source| lstm_wgpu::Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// The run's TensorBoard event file (`tensorboard --logdir runs`).
pub struct Events(EventWriter);

impl Events {
    /// A new event file in `dir`. A new run first removes the event files of the run it replaces
    /// (as the CSV log starts empty); a run resuming at step `resume` keeps them, and TensorBoard
    /// drops their points after that step.
    pub fn open(dir: &Path, resume: Option<u64>) -> lstm_wgpu::Result<Self> {
        let writer = match resume {
            Some(step) => EventWriter::create_resumed(dir, step)?,
            None => {
                for path in event_files(dir)? {
                    std::fs::remove_file(&path)
                        .map_err(|source| lstm_wgpu::Error::Io { path, source })?;
                }
                EventWriter::create(dir)?
            }
        };
        Ok(Events(writer))
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// A display step's minibatch loss and accuracy, and the learning rate.
    pub fn train(&mut self, step: u64, loss: f64, accuracy: f64, lr: f32) -> lstm_wgpu::Result<()> {
        self.0.scalar("train/loss", step, loss as f32)?;
        self.0.scalar("train/accuracy", step, accuracy as f32)?;
        self.0.scalar("train/lr", step, lr)
    }

    /// An epoch's loss and accuracy on the test set.
    pub fn test(&mut self, step: u64, loss: f64, accuracy: f64) -> lstm_wgpu::Result<()> {
        self.0.scalar("test/loss", step, loss as f32)?;
        self.0.scalar("test/accuracy", step, accuracy as f32)
    }
}

/// Reads back `(train, test)` points from an existing log (for the curves of a resumed run),
/// keeping only steps up to `until`.
pub fn read_points(path: &Path, until: u64) -> (Vec<Point>, Vec<Point>) {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let Ok(file) = File::open(path) else {
        return (train, test);
    };
    for line in BufReader::new(file).lines().map_while(Result::ok).skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if let [step, _, split, loss, acc, ..] = f.as_slice()
            && let (Ok(step), Ok(loss), Ok(accuracy)) = (step.parse(), loss.parse(), acc.parse())
            && step <= until
        {
            let p = Point {
                step,
                loss,
                accuracy,
            };
            if *split == "test" {
                test.push(p)
            } else {
                train.push(p)
            }
        }
    }
    (train, test)
}
