//! Where a run writes, so that no run silently replaces another: a new run takes a directory of
//! its own, and a resumed run continues in the directory of its checkpoint.

use std::path::{Path, PathBuf};

/// The files a run writes into its directory.
pub const RUN_FILES: [&str; 3] = ["checkpoint.safetensors", "metrics.csv", "curves.png"];

/// Whether `dir` already holds (part of) a run.
pub fn holds_a_run(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).exists())
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
