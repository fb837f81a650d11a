//! Running git for a clone: a scrubbed environment, no prompts, and the token passed as an
//! HTTP auth header through `GIT_CONFIG_*` variables of that one command, so it is never in
//! a remote URL, in `.git/config`, in the process arguments, or printed.

use std::path::Path;
use std::process::Stdio;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// A failed git command, with its stderr (which never holds the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("git {command} failed: {stderr}")]
pub struct GitError {
    pub command: String,
    pub stderr: String,
}

/// How to run git for one repository.
#[derive(Clone)]
pub struct Git {
    /// Sent only to https remotes, only for commands that talk to the remote.
    pub token: Option<SecretString>,
    pub author_name: String,
    pub author_email: String,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("author_name", &self.author_name)
            .finish()
    }
}

impl Git {
    /// Runs a local git command in `dir` and returns its trimmed stdout.
    pub async fn run(&self, dir: &Path, args: &[&str]) -> Result<String, GitError> {
        self.exec(dir, args, false).await
    }

    /// Runs a git command that talks to `remote_url` (clone, fetch, push), with the token
    /// as an auth header when the remote is https.
    pub async fn run_remote(
        &self,
        dir: &Path,
        remote_url: &str,
        args: &[&str],
    ) -> Result<String, GitError> {
        self.exec(dir, args, remote_url.starts_with("https://"))
            .await
    }

    async fn exec(&self, dir: &Path, args: &[&str], with_token: bool) -> Result<String, GitError> {
        let mut command = tokio::process::Command::new("git");
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()),
            )
            .env("LANG", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", &self.author_name)
            .env("GIT_AUTHOR_EMAIL", &self.author_email)
            .env("GIT_COMMITTER_NAME", &self.author_name)
            .env("GIT_COMMITTER_EMAIL", &self.author_email)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let (true, Some(token)) = (with_token, &self.token) {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{}", token.expose_secret()));
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                );
        }
        let output = command.output().await.map_err(|e| GitError {
            command: args.first().unwrap_or(&"").to_string(),
            stderr: format!("cannot run git: {e}"),
        })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_string())
        } else {
            let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if let Some(token) = &self.token {
                stderr = stderr.replace(token.expose_secret(), "<redacted>");
            }
            Err(GitError {
                command: args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                stderr,
            })
        }
    }
}
