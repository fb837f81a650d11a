//! git hygiene: every git process gaffer starts is built here, so none of them reads the
//! user's or the system's git config, runs a hook, an fsmonitor, an external diff, a
//! text-conversion or signing program, discovers an enclosing repository, or sees gaffer's
//! environment (tokens included). Repo-controlled config (a bare origin on the local
//! forge) is checked by [`dangerous_config`] before gaffer works with it.

use std::path::Path;
use std::process::Stdio;

/// Config set on the command line of every git command; it overrides any repo config.
const HYGIENE: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=false",
    "core.askPass=",
    "credential.helper=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "diff.external=",
    "core.alternateRefsCommand=",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
    "protocol.file.allow=always",
    "submodule.recurse=false",
];

/// The `receive-pack`/`upload-pack` a local (`file://`) remote runs: git clears `-c`
/// settings for the remote side of a local transport, so hooks are switched off there
/// explicitly.
pub const RECEIVE_PACK: &str = "git -c core.hooksPath=/dev/null receive-pack";
pub const UPLOAD_PACK: &str = "git -c core.hooksPath=/dev/null upload-pack";

/// A git command with a minimal environment, no prompts, no user or system config, and
/// the hygiene settings. `dir` is where it runs; callers pass `--git-dir`/`--work-tree`
/// explicitly (see `workspace::git`), so nothing is discovered from the directory.
pub fn command(dir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("git");
    for setting in HYGIENE {
        command.arg("-c").arg(setting);
    }
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", safe_path())
        .env("HOME", "/nonexistent")
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_ATTR_NOSYSTEM", "1")
        .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:file")
        .env("GIT_CEILING_DIRECTORIES", ceiling(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// gaffer's own PATH (where git and the language tools are), nothing else of its env.
pub fn safe_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

fn ceiling(dir: &Path) -> std::ffi::OsString {
    dir.parent()
        .map(|p| p.as_os_str().to_owned())
        .unwrap_or_else(|| "/".into())
}

/// Config keys that make git run a program (or read more config) and that gaffer's
/// command-line settings cannot switch off wholesale: merge and diff drivers, filters,
/// includes, ssh and credential programs. A repository whose own config sets any of
/// them is refused.
pub fn dangerous_config(config_text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut section = String::new();
    for raw in config_text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or_default();
            let name = inner.split_whitespace().next().unwrap_or_default();
            section = name.to_ascii_lowercase();
            continue;
        }
        let key = line
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let risky = matches!(section.as_str(), "filter" | "include" | "includeif")
            || matches!(
                (section.as_str(), key.as_str()),
                ("merge", "driver")
                    | ("diff", "textconv" | "command" | "external")
                    | (
                        "core",
                        "fsmonitor" | "hookspath" | "sshcommand" | "gitproxy"
                    )
                    | (
                        "core",
                        "alternaterefscommand" | "askpass" | "editor" | "pager"
                    )
                    | ("credential", _)
                    | ("gpg", "program")
                    | ("uploadpack", "packobjectshook")
                    | ("sequence", "editor")
            )
            || key.ends_with("program")
            || key.ends_with("command");
        if risky {
            found.push(format!("{section}.{key}"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_that_runs_programs_is_found() {
        let config = "[core]\n\trepositoryformatversion = 0\n\tbare = true\n\tfsmonitor = /tmp/x.sh\n[diff \"evil\"]\n\ttextconv = sh -c id\n[merge \"m\"]\n\tdriver = touch /tmp/p\n[filter \"lfs\"]\n\tclean = x\n[include]\n\tpath = /tmp/more\n[credential]\n\thelper = store\n[remote \"origin\"]\n\turl = x\n";
        let found = dangerous_config(config);
        for key in [
            "core.fsmonitor",
            "diff.textconv",
            "merge.driver",
            "filter.clean",
            "include.path",
            "credential.helper",
        ] {
            assert!(found.iter().any(|f| f == key), "{key}: {found:?}");
        }
        assert_eq!(found.len(), 6, "{found:?}");
        assert!(dangerous_config(
            "[core]\n\tbare = true\n[receive]\n\tdenyCurrentBranch = ignore\n"
        )
        .is_empty());
    }
}
