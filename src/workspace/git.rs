//! Running git for a clone. Every command is built by [`crate::safety::git::command`]
//! (no hooks, no user or system config, a minimal environment) and names the clone
//! explicitly (`--git-dir`, `--work-tree`), so it can never act on an enclosing
//! repository. The token is passed as an HTTP auth header through `GIT_CONFIG_*`
//! variables of that one command, only to the configured git host (redirects off), so it
//! is never in a remote URL, in `.git/config`, in the process arguments, or printed.

use std::path::Path;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::safety::git::{RECEIVE_PACK, UPLOAD_PACK};

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
    /// Sent only to `token_origin`, only for commands that talk to the remote.
    pub token: Option<SecretString>,
    /// `scheme://host[:port]` of `GITHUB_GIT_URL`: the one place the token may go.
    pub token_origin: Option<String>,
    pub author_name: String,
    pub author_email: String,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_origin", &self.token_origin)
            .field("author_name", &self.author_name)
            .finish()
    }
}

/// `scheme://host[:port]` of an http(s) URL (lower-cased), the unit the token is bound
/// to: it goes only to the exact origin of `GITHUB_GIT_URL` (https for github.com; plain
/// http only if that is what the user configured, e.g. a test server).
pub fn token_origin(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    let host = parsed.host_str()?.to_ascii_lowercase();
    let port = parsed.port_or_known_default()?;
    Some(format!("{}://{host}:{port}", parsed.scheme()))
}

impl Git {
    /// Runs a local git command on the clone at `dir` and returns its trimmed stdout.
    pub async fn run(&self, dir: &Path, args: &[&str]) -> Result<String, GitError> {
        self.exec(dir, Some(dir), args, false).await
    }

    /// Runs a git command on the clone at `dir` that talks to `remote_url` (fetch, push),
    /// with the token when the remote is the configured git host.
    pub async fn run_remote(
        &self,
        dir: &Path,
        remote_url: &str,
        args: &[&str],
    ) -> Result<String, GitError> {
        self.exec(dir, Some(dir), args, self.token_goes_to(remote_url))
            .await
    }

    /// Clones `remote_url` into `target` (run from `parent`, with no repository yet).
    pub async fn clone_into(
        &self,
        parent: &Path,
        remote_url: &str,
        target: &Path,
    ) -> Result<String, GitError> {
        let target = target.to_string_lossy();
        let args = [
            "clone",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--upload-pack",
            UPLOAD_PACK,
            remote_url,
            &target,
        ];
        self.exec(parent, None, &args, self.token_goes_to(remote_url))
            .await
    }

    /// Makes a bare copy of the local repository `source` at `target` (no token, no hooks).
    pub async fn clone_bare(
        &self,
        parent: &Path,
        source: &Path,
        target: &Path,
    ) -> Result<String, GitError> {
        let (source, target) = (source.to_string_lossy(), target.to_string_lossy());
        let args = [
            "clone",
            "--quiet",
            "--bare",
            "--upload-pack",
            UPLOAD_PACK,
            &source,
            &target,
        ];
        self.exec(parent, None, &args, false).await
    }

    /// Whether the token may be sent to `remote_url`: only to the configured git host.
    pub fn token_goes_to(&self, remote_url: &str) -> bool {
        match (&self.token_origin, token_origin(remote_url)) {
            (Some(allowed), Some(origin)) => *allowed == origin,
            _ => false,
        }
    }

    async fn exec(
        &self,
        dir: &Path,
        clone: Option<&Path>,
        args: &[&str],
        with_token: bool,
    ) -> Result<String, GitError> {
        let mut command = crate::safety::git::command(dir);
        if let Some(clone) = clone {
            command
                .arg("--git-dir")
                .arg(clone.join(".git"))
                .arg("--work-tree")
                .arg(clone);
        }
        // Local remotes run their side of a push or fetch with hooks off too.
        let args: Vec<&str> = match args.first() {
            Some(&"push") => [&["push", "--receive-pack", RECEIVE_PACK][..], &args[1..]].concat(),
            Some(&"fetch") => [&["fetch", "--upload-pack", UPLOAD_PACK][..], &args[1..]].concat(),
            _ => args.to_vec(),
        };
        command
            .args(&args)
            .env("GIT_AUTHOR_NAME", &self.author_name)
            .env("GIT_AUTHOR_EMAIL", &self.author_email)
            .env("GIT_COMMITTER_NAME", &self.author_name)
            .env("GIT_COMMITTER_EMAIL", &self.author_email);
        if let (true, Some(token)) = (with_token, &self.token) {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("x-access-token:{}", token.expose_secret()));
            command
                .env("GIT_CONFIG_COUNT", "2")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env(
                    "GIT_CONFIG_VALUE_0",
                    format!("Authorization: Basic {basic}"),
                )
                .env("GIT_CONFIG_KEY_1", "http.followRedirects")
                .env("GIT_CONFIG_VALUE_1", "false");
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
                stderr = crate::safety::redact(&stderr, &[token]);
            }
            Err(GitError {
                command: args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                stderr,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_the_configured_git_host() {
        let git = Git {
            token: Some(SecretString::from("ghp_secret")),
            token_origin: token_origin("https://GitHub.com"),
            author_name: "a".into(),
            author_email: "a@b".into(),
        };
        assert!(git.token_goes_to("https://github.com/acme/widget.git"));
        assert!(git.token_goes_to("https://github.com:443/acme/widget.git"));
        for url in [
            "https://evil.example/acme/widget.git",
            "https://github.com.evil.example/a/b.git",
            "https://github.com:8443/a/b.git",
            "http://github.com/a/b.git",
            "ssh://git@github.com/a/b.git",
            "file:///tmp/a.git",
        ] {
            assert!(!git.token_goes_to(url), "{url}");
        }
    }
}
