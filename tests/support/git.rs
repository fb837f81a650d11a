//! Git plumbing on bare repositories, for the fake GitHub and for tests that push
//! commits: no work trees, so a repo can be changed the way a remote push would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs git in `repo` and returns trimmed stdout, or stderr as the error.
pub fn git(repo: &Path, args: &[&str]) -> Result<String, String> {
    git_with(repo, args, &[], None)
}

pub fn git_with(
    repo: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Result<String, String> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Fake GitHub")
        .env("GIT_AUTHOR_EMAIL", "fake@github.invalid")
        .env("GIT_COMMITTER_NAME", "Fake GitHub")
        .env("GIT_COMMITTER_EMAIL", "fake@github.invalid")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .map_err(|e| e.to_string())?;
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

/// Creates a bare repository whose default branch holds the files of `seed` (a
/// directory copied as is) or one README when there is no seed.
pub fn init_bare(bare: &Path, default_branch: &str, seed: Option<&Path>) -> String {
    std::fs::create_dir_all(bare).unwrap();
    git(bare, &["init", "--bare", "-q", "-b", default_branch]).unwrap();
    let mut files = Vec::new();
    match seed {
        Some(dir) => collect_files(dir, dir, &mut files),
        None => files.push(("README.md".to_string(), b"# test repo\n".to_vec())),
    }
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    commit_files(bare, default_branch, &borrowed, &[], "Initial commit")
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == ".git" || n == "__pycache__")
            {
                continue;
            }
            collect_files(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, std::fs::read(&path).unwrap()));
        }
    }
}

/// Commits `files` (written) and `deleted` (removed) on `branch` (created from nothing
/// when absent) and moves the branch: what a `git push` of one commit does.
pub fn commit_files(
    bare: &Path,
    branch: &str,
    files: &[(&str, &[u8])],
    deleted: &[&str],
    message: &str,
) -> String {
    let entries: Vec<(&str, &[u8], &str)> = files.iter().map(|(p, c)| (*p, *c, "100644")).collect();
    commit_entries(bare, branch, &entries, deleted, message)
}

/// Commits symlinks (`path -> target`) to `branch`, as a hostile repo would hold them.
pub fn commit_symlinks(bare: &Path, branch: &str, links: &[(&str, &str)], message: &str) -> String {
    let entries: Vec<(&str, &[u8], &str)> = links
        .iter()
        .map(|(p, target)| (*p, target.as_bytes(), "120000"))
        .collect();
    commit_entries(bare, branch, &entries, &[], message)
}

/// Commits `(path, content, mode)` entries and deletions to `branch` of a bare repo.
fn commit_entries(
    bare: &Path,
    branch: &str,
    files: &[(&str, &[u8], &str)],
    deleted: &[&str],
    message: &str,
) -> String {
    let index = tempfile::NamedTempFile::new().unwrap();
    let index_path = index.path().to_string_lossy().into_owned();
    let env = [("GIT_INDEX_FILE", index_path.as_str())];
    let parent = git(
        bare,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    )
    .ok();
    match &parent {
        Some(sha) => git_with(bare, &["read-tree", sha], &env, None).unwrap(),
        None => git_with(bare, &["read-tree", "--empty"], &env, None).unwrap(),
    };
    for (path, content, mode) in files {
        let blob = git_with(bare, &["hash-object", "-w", "--stdin"], &[], Some(content)).unwrap();
        git_with(
            bare,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("{mode},{blob},{path}"),
            ],
            &env,
            None,
        )
        .unwrap();
    }
    for path in deleted {
        git_with(bare, &["update-index", "--force-remove", path], &env, None).unwrap();
    }
    let tree = git_with(bare, &["write-tree"], &env, None).unwrap();
    let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
    if let Some(p) = &parent {
        args.extend(["-p", p.as_str()]);
    }
    let commit = git(bare, &args).unwrap();
    git(
        bare,
        &["update-ref", &format!("refs/heads/{branch}"), &commit],
    )
    .unwrap();
    commit
}

/// The commit a branch points at.
pub fn branch_sha(bare: &Path, branch: &str) -> Option<String> {
    git(
        bare,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    )
    .ok()
}

/// A file's text at a ref, or `None`.
pub fn show_file(bare: &Path, git_ref: &str, path: &str) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["show", &format!("{git_ref}:{path}")])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
