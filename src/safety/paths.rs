//! The one path guard: every read and write gaffer makes inside a clone on behalf of a
//! repo or a model goes through [`RepoPath`] and the functions here, so "inside the
//! repository, never `.git`, never through a symlink" is decided in one place.
//!
//! A path is checked in its normalised form: no empty, `.` or `..` components, not
//! absolute, no backslashes or NUL, no `.git` component anywhere (compared
//! case-insensitively, trailing dots and spaces ignored, since some filesystems fold those).
//! Opening never follows a symlink: each existing component is checked with
//! `symlink_metadata` and the final file is opened with `O_NOFOLLOW`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The largest file gaffer reads from a clone for a prompt or a parse.
pub const MAX_READ_BYTES: u64 = 1024 * 1024;

/// A repository-relative path that passed the guard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(String);

/// Why a path was refused, in words a model (or a user) can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {why}")]
pub struct PathError {
    pub path: String,
    pub why: String,
}

fn refuse(path: &str, why: impl Into<String>) -> PathError {
    PathError {
        path: path.chars().take(200).collect(),
        why: why.into(),
    }
}

impl RepoPath {
    /// Checks `raw` and returns it normalised (components joined with `/`).
    pub fn parse(raw: &str) -> Result<RepoPath, PathError> {
        if raw.is_empty() {
            return Err(refuse(raw, "an empty path is not a file of the repository"));
        }
        if raw.contains('\0') {
            return Err(refuse(raw, "NUL is not allowed in paths"));
        }
        if raw.contains('\\') {
            return Err(refuse(raw, "use / between directories, not \\"));
        }
        if raw.starts_with('/') || raw.starts_with('~') {
            return Err(refuse(raw, "only paths inside the repository are allowed"));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {
                    return Err(refuse(
                        raw,
                        "empty and `.` components are not allowed: write the path from the repository root, like src/app.py",
                    ))
                }
                ".." => return Err(refuse(raw, "`..` is not allowed in paths")),
                _ if is_git_dir_name(part) => {
                    return Err(refuse(raw, ".git is not part of the repository"))
                }
                _ => parts.push(part),
            }
        }
        Ok(RepoPath(parts.join("/")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the path is `prefix` or lies under it, compared case-insensitively (the
    /// filesystem a repo is checked out on may fold case). A `prefix` ending in `/` names a
    /// directory; a leading `./` is ignored.
    pub fn is_under(&self, prefix: &str) -> bool {
        let prefix = prefix.trim_start_matches("./");
        let dir = prefix.trim_end_matches('/');
        if dir.is_empty() {
            return false;
        }
        let path = self.0.to_ascii_lowercase();
        let dir = dir.to_ascii_lowercase();
        path == dir || path.starts_with(&format!("{dir}/"))
    }
}

impl std::fmt::Display for RepoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `.git`, `.GIT`, `.git.`, `.git ` ...: names some filesystem may treat as `.git`.
fn is_git_dir_name(part: &str) -> bool {
    part.trim_end_matches(['.', ' '])
        .eq_ignore_ascii_case(".git")
}

/// The absolute path of `path` under `root`, after checking that no existing component
/// is a symlink (writing or reading through one could leave the clone).
pub fn resolve(root: &Path, path: &RepoPath) -> Result<PathBuf, PathError> {
    let mut current = root.to_path_buf();
    for part in path.0.split('/') {
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(
                    path.as_str(),
                    format!(
                        "goes through a symlink ({}); not allowed",
                        current.strip_prefix(root).unwrap_or(&current).display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(_) => break, // the rest does not exist yet
        }
    }
    Ok(current)
}

/// Reads a text file of the clone: `Ok(None)` when it does not exist; refused when it is
/// reached through a symlink, is not a regular file, or is larger than [`MAX_READ_BYTES`].
pub fn read_to_string(root: &Path, path: &RepoPath) -> Result<Option<String>, PathError> {
    let full = resolve(root, path)?;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&full)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(refuse(path.as_str(), format!("cannot open: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| refuse(path.as_str(), format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(path.as_str(), "not a regular file"));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(refuse(
            path.as_str(),
            format!(
                "{} bytes is more than the {MAX_READ_BYTES} gaffer reads",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(path.as_str(), format!("cannot read: {e}")))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Writes a file of the clone, creating its directories; never through a symlink (each
/// directory is checked as it is created, the file is opened with `O_NOFOLLOW`).
pub fn write(root: &Path, path: &RepoPath, text: &str) -> Result<(), PathError> {
    let mut current = root.to_path_buf();
    let parts: Vec<&str> = path.0.split('/').collect();
    for dir in &parts[..parts.len() - 1] {
        current.push(dir);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(path.as_str(), "goes through a symlink; not allowed"))
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(refuse(
                    path.as_str(),
                    format!("{dir} is a file, not a directory"),
                ))
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir(&current)
                .map_err(|e| refuse(path.as_str(), format!("cannot create {dir}/: {e}")))?,
        }
    }
    current.push(parts[parts.len() - 1]);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&current)
        .map_err(|e| {
            refuse(
                path.as_str(),
                if e.raw_os_error() == Some(libc::ELOOP) {
                    "is a symlink; not allowed".to_string()
                } else {
                    format!("cannot write: {e}")
                },
            )
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| refuse(path.as_str(), format!("cannot write: {e}")))
}

/// Removes a file of the clone (never through a symlink); absent is fine.
pub fn remove(root: &Path, path: &RepoPath) -> Result<(), PathError> {
    let full = resolve(root, path)?;
    match std::fs::remove_file(&full) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refuse(path.as_str(), format!("cannot delete: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricky_paths_are_refused_with_the_reason() {
        for (raw, why) in [
            ("", "empty path"),
            ("./.git/config", "`.` components"),
            (".//.github/workflows/x.yml", "`.` components"),
            ("./.llm-team.yml", "`.` components"),
            (".//tasks/T-0001-x.md", "`.` components"),
            ("src//app.py", "empty and `.`"),
            ("src/./app.py", "`.` components"),
            ("src/", "empty and `.`"),
            (".git/config", ".git is not"),
            (".GIT/hooks/pre-commit", ".git is not"),
            (".Git./config", ".git is not"),
            (".git /config", ".git is not"),
            ("sub/.git/config", ".git is not"),
            ("vendor/lib/.git", ".git is not"),
            ("../evil.py", "`..`"),
            ("src/../../evil.py", "`..`"),
            ("src/..", "`..`"),
            ("/etc/passwd", "inside the repository"),
            ("~/.ssh/authorized_keys", "inside the repository"),
            ("src\\..\\evil.py", "not \\"),
            ("a\0b", "NUL"),
        ] {
            let err = RepoPath::parse(raw).unwrap_err();
            assert!(err.why.contains(why), "{raw:?}: {err}");
        }
    }

    #[test]
    fn ordinary_paths_pass_unchanged() {
        for raw in [
            "src/app.py",
            ".github/workflows/ci.yml",
            ".gitignore",
            ".gitmodules",
            "docs/.gitkeep",
            "a.git/x",
            "weird name/with spaces.txt",
        ] {
            assert_eq!(RepoPath::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn protection_is_checked_case_insensitively_on_components() {
        let p = RepoPath::parse(".GitHub/Workflows/x.yml").unwrap();
        assert!(p.is_under(".github/"));
        assert!(p.is_under("./.github"));
        let t = RepoPath::parse("Tasks/T-0001.md").unwrap();
        assert!(t.is_under("tasks/"));
        assert!(!RepoPath::parse("tasks2/x").unwrap().is_under("tasks/"));
        assert!(!RepoPath::parse("x").unwrap().is_under(""));
    }

    #[test]
    fn reads_and_writes_never_follow_symlinks() {
        let clone = tempfile::TempDir::new().unwrap();
        let outside = tempfile::TempDir::new().unwrap();
        std::fs::write(outside.path().join("secret"), "GH_TOKEN=ghp_x").unwrap();
        let root = clone.path();
        std::os::unix::fs::symlink(outside.path(), root.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("notes.txt")).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", root.join("env")).unwrap();
        for raw in ["notes.txt", "dir/secret", "env"] {
            let p = RepoPath::parse(raw).unwrap();
            assert!(read_to_string(root, &p).is_err(), "read {raw}");
            assert!(write(root, &p, "x").is_err(), "write {raw}");
        }
        assert!(write(root, &RepoPath::parse("dir/new.py").unwrap(), "x").is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "GH_TOKEN=ghp_x"
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        // Ordinary files work, directories are created.
        let ok = RepoPath::parse("src/pkg/new.py").unwrap();
        write(root, &ok, "print(1)\n").unwrap();
        assert_eq!(read_to_string(root, &ok).unwrap().unwrap(), "print(1)\n");
        assert_eq!(
            read_to_string(root, &RepoPath::parse("missing.txt").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn fifos_and_huge_files_are_not_read() {
        let clone = tempfile::TempDir::new().unwrap();
        let root = clone.path();
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_to_string(root, &RepoPath::parse("pipe").unwrap()).unwrap_err();
        assert!(err.why.contains("not a regular file"), "{err}");
        std::fs::write(root.join("big"), vec![b'a'; MAX_READ_BYTES as usize + 1]).unwrap();
        let err = read_to_string(root, &RepoPath::parse("big").unwrap()).unwrap_err();
        assert!(err.why.contains("more than"), "{err}");
    }
}
