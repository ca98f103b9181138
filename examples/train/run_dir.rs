//! Where a run writes, so that no run silently replaces another: a new run takes a directory of
//! its own, and a resumed run continues in the directory of its checkpoint.

use std::path::{Path, PathBuf};

use lstm_wgpu::train::tensorboard::FILE_PREFIX;

/// The files a run writes into its directory (besides its TensorBoard event files).
pub const RUN_FILES: [&str; 3] = ["checkpoint.safetensors", "metrics.csv", "curves.png"];

/// Whether `dir` already holds (part of) a run.
pub fn holds_a_run(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).exists())
        || event_files(dir).is_ok_and(|files| !files.is_empty())
}

/// The directory of a new run: `out` when given (refused if it holds a run, unless
/// `overwrite`), else `runs/<data>`, or `runs/<data>-2`, `-3`, ... when that one is taken.
pub fn for_new_run(out: Option<&Path>, data: &str, overwrite: bool) -> Result<PathBuf, String> {
    if let Some(dir) = out {
        if holds_a_run(dir) && !overwrite {
            return Err(format!(
                "{} already holds a run; continue it with --resume {}, or pass --overwrite to replace it",
                dir.display(),
                dir.join(RUN_FILES[0]).display()
            ));
        }
        return Ok(dir.to_path_buf());
    }
    let base = PathBuf::from("runs").join(data);
    if overwrite || !holds_a_run(&base) {
        return Ok(base);
    }
    (2..)
        .map(|n| PathBuf::from("runs").join(format!("{data}-{n}")))
        .find(|dir| !holds_a_run(dir))
        .ok_or_else(|| "no free run directory".to_string())
}

/// The directory a resumed run continues in: `out` when given, else the checkpoint's own.
pub fn for_resumed_run(out: Option<&Path>, checkpoint: &Path) -> PathBuf {
    match (out, checkpoint.parent()) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        (None, _) => PathBuf::from("."),
    }
}

/// The TensorBoard event files in `dir` (none when it does not exist).
pub fn event_files(dir: &Path) -> lstm_wgpu::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(lstm_wgpu::Error::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(FILE_PREFIX))
        })
        .collect())
}
