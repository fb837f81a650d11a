//! The sandbox repo and model code runs in (a repo's checks, its test command). Built
//! with bubblewrap: no network, a read-only system, a new `/proc` (gaffer's environment,
//! token included, is not readable), `$HOME`, `/root`, `/home`, `/run` (host sockets),
//! gaffer's data directory, the other clones and any `.env` hidden, the clone writable
//! except its `.git` (so a check cannot plant hooks or config that gaffer's git would
//! read), an empty environment. Two additions are the caller's to ask for: the network
//! (`--share-net`, for the checks' set-up phase only) and one more writable directory (the
//! repo's dependency cache, bound at its real path).
//!
//! Without bubblewrap, repo code is refused unless the user opts out explicitly with
//! `CHECKS_SANDBOX=off`.

use std::path::{Path, PathBuf};

/// Whether repo code must run sandboxed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// bubblewrap or nothing (the default).
    On,
    /// Run repo code directly, with only a scrubbed environment (`CHECKS_SANDBOX=off`).
    Off,
}

/// Directories (under a hidden one) whose tools a check may need: whole toolchain roots
/// that hold no credentials. Other PATH entries under a hidden directory are bound alone.
const TOOL_ROOTS: &[&str] = &[
    ".pyenv", ".rustup", ".nvm", ".rbenv", ".asdf", ".volta", ".bun", ".deno", ".sdkman", "go",
    ".go",
];

/// What the sandbox hides and how it is enforced.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub mode: SandboxMode,
    /// gaffer's data directory and the root of all clones.
    pub hidden_dirs: Vec<PathBuf>,
    /// Files masked with an empty one (`.env` files holding tokens).
    pub hidden_files: Vec<PathBuf>,
}

/// Why repo code could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("bubblewrap (bwrap) is not installed, so repo code cannot run sandboxed: install it (apt-get install bubblewrap) or set CHECKS_SANDBOX=off to run it unsandboxed at your own risk")]
    Missing,
}

impl Sandbox {
    /// A command that runs `script` with `sh -c` in `workdir` (a clone), sandboxed as
    /// described above; `network` is for set-up steps that download dependencies.
    pub fn command(
        &self,
        workdir: &Path,
        script: &str,
        network: bool,
    ) -> Result<tokio::process::Command, SandboxError> {
        self.command_with(workdir, script, network, None)
    }

    /// [`Sandbox::command`] with one more writable directory, `cache` (the repo's own
    /// dependency cache, bound at its real path so a venv made there works in both modes).
    pub fn command_with(
        &self,
        workdir: &Path,
        script: &str,
        network: bool,
        cache: Option<&Path>,
    ) -> Result<tokio::process::Command, SandboxError> {
        let path = super::git::safe_path();
        let mut command = match (self.mode, crate::which("bwrap")) {
            (SandboxMode::On, None) => return Err(SandboxError::Missing),
            (SandboxMode::On, Some(bwrap)) => {
                let mut c = tokio::process::Command::new(bwrap);
                c.args(self.bwrap_args(workdir, network, cache));
                c.args(["sh", "-c", script]);
                c.env_clear().env("HOME", "/tmp");
                c
            }
            (SandboxMode::Off, _) => {
                let mut c = tokio::process::Command::new("sh");
                c.args(["-c", script]).current_dir(workdir);
                c.env_clear().env("HOME", workdir);
                c
            }
        };
        command
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("CI", "true");
        // rustup's proxies look for their toolchains under $HOME, which is not the host's.
        if let Some(rustup) = rustup_home() {
            command.env("RUSTUP_HOME", rustup);
        }
        Ok(command)
    }

    /// Whether commands will really be sandboxed (for reports and PRs).
    pub fn enforced(&self) -> bool {
        self.mode == SandboxMode::On
    }

    fn bwrap_args(&self, workdir: &Path, network: bool, cache: Option<&Path>) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |a: &str, b: &Path, c: Option<&Path>| {
            args.push(a.to_string());
            args.push(b.to_string_lossy().into_owned());
            if let Some(c) = c {
                args.push(c.to_string_lossy().into_owned());
            }
        };
        push("--ro-bind", Path::new("/"), Some(Path::new("/")));
        push("--tmpfs", Path::new("/tmp"), None);
        let mut hidden: Vec<PathBuf> = ["/root", "/home", "/run"]
            .iter()
            .map(PathBuf::from)
            .collect();
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            hidden.push(home);
        }
        hidden.extend(self.hidden_dirs.iter().cloned());
        let mut hidden: Vec<PathBuf> = hidden
            .into_iter()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .filter(|d| d.is_dir() && d != Path::new("/"))
            .collect();
        // Outer directories first, so inner tmpfs mounts are not hidden again.
        hidden.sort_by_key(|d| d.components().count());
        hidden.dedup();
        for dir in &hidden {
            push("--tmpfs", dir, None);
        }
        // Tools on PATH that live under a hidden directory (pyenv under $HOME, say).
        for entry in std::env::split_paths(&super::git::safe_path()) {
            let Ok(entry) = std::fs::canonicalize(&entry) else {
                continue;
            };
            let Some(under) = hidden.iter().find(|h| entry.starts_with(h)) else {
                continue;
            };
            let rel = entry.strip_prefix(under).unwrap_or(Path::new(""));
            let top = rel.components().next().map(|c| c.as_os_str().to_owned());
            let bind = match top {
                Some(top) if TOOL_ROOTS.iter().any(|t| *t == top) => under.join(top),
                _ => entry.clone(),
            };
            if bind.is_dir() && !workdir.starts_with(&bind) {
                push("--ro-bind", &bind, Some(&bind));
            }
        }
        if let Some(rustup) = rustup_home() {
            push("--ro-bind", &rustup, Some(&rustup));
        }
        for file in &self.hidden_files {
            if file.is_file() {
                push("--ro-bind", Path::new("/dev/null"), Some(file));
            }
        }
        if network {
            // DNS: resolv.conf may point into /run, which is hidden.
            if let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf") {
                if hidden.iter().any(|h| resolv.starts_with(h)) && resolv.is_file() {
                    push("--ro-bind", &resolv, Some(&resolv));
                }
            }
        }
        if let Some(cache) = cache.filter(|c| c.is_dir()) {
            push("--bind", cache, Some(cache));
        }
        push("--bind", workdir, Some(workdir));
        let git_dir = workdir.join(".git");
        if git_dir.is_dir() {
            push("--ro-bind", &git_dir, Some(&git_dir));
        }
        push("--proc", Path::new("/proc"), None);
        push("--dev", Path::new("/dev"), None);
        push("--chdir", workdir, None);
        args.extend(
            [
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
            ]
            .map(String::from),
        );
        if network {
            args.push("--share-net".into());
        }
        args
    }
}

/// The host's rustup directory, when there is one (bound read-only, named by RUSTUP_HOME).
fn rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .filter(|d| d.is_dir())
}
