//! `gaffer demo`, run as a user would on a fresh machine: no token, no Ollama.

use std::process::Command;

use crate::support::app::gaffer_bin;
use crate::support::git::show_file;

#[test]
fn the_demo_runs_the_whole_loop_and_leaves_the_task_done() {
    let scratch = tempfile::TempDir::new().unwrap();
    let dir = scratch.path().join("demo");
    let output = Command::new(gaffer_bin())
        .args(["demo", "--dir"])
        .arg(&dir)
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", scratch.path())
        // Make sure no Ollama is found, whatever runs on this machine.
        .env("OLLAMA_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "[1/7] Taskmaster",
        "[3/7] Developer",
        "[4/7] Reviewer",
        "[6/7] Integrator",
        "running the built-in bootstrap flow",
        "git --git-dir",
        // The example repo starts without CI: the Developer's PR adds it.
        "added .github/workflows/ci.yml",
        "T-0001 is in_review: its work is in PR #2, ready for review (1 attempt)",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    // The closing hints work as printed, from another directory, with nothing installed.
    let hints: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GAFFER_DATA_DIR=") || l.starts_with("git --git-dir"))
        .collect();
    assert_eq!(hints.len(), 3, "{stdout}");
    let elsewhere = tempfile::TempDir::new().unwrap();
    for hint in hints {
        let run = Command::new("sh")
            .args(["-c", hint])
            .current_dir(elsewhere.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{hint}: {out}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            out.contains("demo/tally") || out.contains("Merge pull request"),
            "{hint}: {out}"
        );
    }
    let origin = dir.join("origin.git");
    let task = show_file(
        &origin,
        "main",
        "tasks/T-0001-initialize-basic-ci-for-python.md",
    )
    .unwrap();
    assert!(task.contains("status: done"), "{task}");
    assert!(show_file(&origin, "main", ".github/workflows/ci.yml").is_some());
    let log = crate::support::git::git(&origin, &["log", "--oneline", "main"]).unwrap();
    assert_eq!(log.matches("Merge pull request").count(), 3, "{log}");

    // A second demo in the same place refuses instead of mixing two runs.
    let again = Command::new(gaffer_bin())
        .args(["demo", "--dir"])
        .arg(&dir)
        .env("OLLAMA_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a demo"));
}

/// On a machine without bubblewrap the demo still finishes (its own example, no model,
/// checks unsandboxed) and says so.
#[test]
fn without_bubblewrap_the_demo_still_runs_and_says_so() {
    let scratch = tempfile::TempDir::new().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["git", "sh", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        let real = std::fs::canonicalize(&path).unwrap();
        std::os::unix::fs::symlink(real, bin.join(tool)).unwrap();
    }
    let output = Command::new(gaffer_bin())
        .args(["demo", "--dir"])
        .arg(scratch.path().join("demo"))
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", &bin)
        .env("HOME", scratch.path())
        .env("OLLAMA_BASE_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("bubblewrap is not installed"), "{stdout}");
    assert!(
        stdout.contains("(not sandboxed: bwrap is not installed)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("done: task T-0001 is done on main"),
        "{stdout}"
    );
}
