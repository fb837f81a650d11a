//! Running a repo's checks on model-written code: a scrubbed environment (no token, no
//! gaffer settings), a timeout, and, where `bwrap` is installed, no network, a read-only
//! system, gaffer's own directories hidden, and only the clone writable.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;

/// Bytes of output kept for the model and the PR.
const TAIL_BYTES: usize = 4000;

/// The outcome of one check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRun {
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Ran inside bwrap (no network, read-only system).
    pub sandboxed: bool,
    pub duration_ms: u64,
    /// The last part of stdout and stderr.
    pub output_tail: String,
}

/// What the checks run with.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub timeout: Duration,
    /// Directories to hide inside the sandbox (gaffer's data directory: the database).
    pub hidden_dirs: Vec<PathBuf>,
    /// Files to mask inside the sandbox (a `.env` holding tokens).
    pub hidden_files: Vec<PathBuf>,
}

/// The command to run: `checks.test_command`, else pytest when the clone's Python has it,
/// else the standard library's unittest.
pub async fn default_command(configured: Option<&str>) -> String {
    if let Some(command) = configured {
        return command.to_string();
    }
    let has_pytest = tokio::process::Command::new("python3")
        .args(["-c", "import pytest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if has_pytest {
        "python3 -m pytest -q".into()
    } else {
        "python3 -m unittest discover -s tests -t .".into()
    }
}

/// Runs `command` with `sh -c` in `clone`.
pub async fn run(clone: &Path, command: &str, settings: &CheckSettings) -> CheckRun {
    let bwrap = crate::which("bwrap");
    let started = Instant::now();
    let mut process = match &bwrap {
        Some(bwrap) => {
            let clone_arg = clone.to_string_lossy().into_owned();
            let mut p = tokio::process::Command::new(bwrap);
            p.args(["--ro-bind", "/", "/", "--tmpfs", "/tmp"]);
            for dir in settings
                .hidden_dirs
                .iter()
                .filter(|d| d.is_dir() && !clone.starts_with(d))
            {
                p.arg("--tmpfs").arg(dir);
            }
            for dir in settings
                .hidden_dirs
                .iter()
                .filter(|d| d.is_dir() && clone.starts_with(d))
            {
                // The clone lives inside: hide the directory, then bind the clone back.
                p.arg("--tmpfs").arg(dir);
            }
            p.args([
                "--bind", &clone_arg, &clone_arg, "--proc", "/proc", "--dev", "/dev",
            ])
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--chdir",
                &clone_arg,
            ])
            .args(["sh", "-c", command]);
            p
        }
        None => {
            tracing::warn!("bwrap not found: running checks without the network sandbox");
            let mut p = tokio::process::Command::new("sh");
            p.args(["-c", command]).current_dir(clone);
            p
        }
    };
    // Keep the user's tool locations (pyenv, ~/.local/bin), never their other variables.
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    process
        .env_clear()
        .env("PATH", path)
        .env(
            "HOME",
            if bwrap.is_some() {
                "/tmp".into()
            } else {
                clone.to_string_lossy().into_owned()
            },
        )
        .env("LANG", "C.UTF-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(e) => {
            return CheckRun {
                command: command.into(),
                passed: false,
                exit_code: None,
                timed_out: false,
                sandboxed: bwrap.is_some(),
                duration_ms: 0,
                output_tail: format!("cannot start the checks: {e}"),
            }
        }
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (_, _, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err),
            child.wait()
        );
        out.extend_from_slice(&err);
        (out, status)
    };
    let (output, status, timed_out) = match tokio::time::timeout(settings.timeout, collect).await {
        Ok((output, status)) => (output, status.ok(), false),
        Err(_) => (
            format!("checks killed after {}s", settings.timeout.as_secs()).into_bytes(),
            None,
            true,
        ),
    };
    let text = String::from_utf8_lossy(&output);
    let tail_start = text.len().saturating_sub(TAIL_BYTES);
    let tail_start = (tail_start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    CheckRun {
        command: command.into(),
        passed: status.is_some_and(|s| s.success()),
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        sandboxed: bwrap.is_some(),
        duration_ms: started.elapsed().as_millis() as u64,
        output_tail: text[tail_start..].to_string(),
    }
}
