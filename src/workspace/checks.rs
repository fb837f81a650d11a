//! Running a repo's checks on model-written code: inside the sandbox
//! ([`crate::safety::sandbox`]: no network, no token, a read-only system, gaffer's own
//! directories, `$HOME` and `.env` hidden, only the clone writable and its `.git` read-only),
//! with a timeout, and with any secret redacted from the output.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::safety::sandbox::Sandbox;

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
    /// How repo code is confined (see [`crate::safety::sandbox`]).
    pub sandbox: Sandbox,
    /// Removed from the output wherever it appears (the output goes into prompts and PRs).
    pub secrets: Vec<SecretString>,
}

/// The command to run: `checks.test_command`, else pytest when the machine's Python has
/// it, else the standard library's unittest.
pub async fn default_command(configured: Option<&str>) -> String {
    if let Some(command) = configured {
        return command.to_string();
    }
    let has_pytest = tokio::process::Command::new("python3")
        .args(["-c", "import pytest"])
        .env_clear()
        .env("PATH", crate::safety::git::safe_path())
        .current_dir("/")
        .stdin(Stdio::null())
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

/// Runs `command` with `sh -c` in `clone`, inside the sandbox (no network).
pub async fn run(clone: &Path, command: &str, settings: &CheckSettings) -> CheckRun {
    let started = Instant::now();
    let sandboxed = settings.sandbox.enforced();
    let failed = |why: String| CheckRun {
        command: command.into(),
        passed: false,
        exit_code: None,
        timed_out: false,
        sandboxed,
        duration_ms: 0,
        output_tail: why,
    };
    let mut process = match settings.sandbox.command(clone, command, false) {
        Ok(process) => process,
        Err(e) => return failed(e.to_string()),
    };
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start the checks: {e}")),
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
    let secrets: Vec<&SecretString> = settings.secrets.iter().collect();
    let text = crate::safety::redact(&String::from_utf8_lossy(&output), &secrets);
    let full_text = text.clone();
    let tail_start = text.len().saturating_sub(TAIL_BYTES);
    let tail_start = (tail_start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let run = CheckRun {
        command: command.into(),
        passed: status.is_some_and(|s| s.success()),
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        sandboxed,
        duration_ms: started.elapsed().as_millis() as u64,
        output_tail: text[tail_start..].to_string(),
    };
    crate::engine::transcript::check(&run, &full_text).await;
    run
}
