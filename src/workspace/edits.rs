//! Model edits as SEARCH/REPLACE blocks: parsed strictly but tolerantly of what real
//! models write (fences, stray prose, CRLF, trailing-space drift), applied exactly and then
//! whitespace-insensitively, and only inside the clone: no absolute paths, no `..`, no
//! path through a symlink, nothing under `.git/` or a protected path, within a diff budget.
//!
//! ```text
//! src/app.py
//! <<<<<<< SEARCH
//! old lines
//! =======
//! new lines
//! >>>>>>> REPLACE
//! ```
//! An empty SEARCH creates the file (or replaces a whole empty file).

use std::path::Path;

use serde::Serialize;

use crate::safety::paths::{self, RepoPath};

use crate::team::team_config::TeamConfig;

/// One parsed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditBlock {
    pub path: String,
    pub search: String,
    pub replace: String,
}

/// Limits on how much one task may change.
#[derive(Debug, Clone, Copy)]
pub struct DiffBudget {
    pub max_files: usize,
    pub max_added_lines: usize,
}

/// What applying a reply did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub applied: usize,
    pub files: Vec<String>,
    /// One precise line per block that failed, to send back to the model.
    pub failures: Vec<String>,
    /// Placeholders such as "... rest of code unchanged" (a lazy model).
    pub lazy_placeholders: usize,
}

/// Text a lazy model writes instead of code.
const PLACEHOLDERS: &[&str] = &[
    "rest of code",
    "rest of the code",
    "existing code",
    "rest of file",
    "rest of the file",
    "remains unchanged",
    "... unchanged",
    "code unchanged",
    "same as before",
];

/// Whether text carries a placeholder a lazy model writes instead of code.
pub fn has_placeholder(text: &str) -> bool {
    let lowered = text.to_ascii_lowercase();
    PLACEHOLDERS.iter().any(|p| lowered.contains(p))
}

/// Parses every block of a reply. `Err` when the reply has no well-formed block at all.
pub fn parse(reply: &str) -> Result<Vec<EditBlock>, String> {
    let text = reply.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_marker(lines[i], '<', "SEARCH") {
            i += 1;
            continue;
        }
        let path = lines[..i]
            .iter()
            .rev()
            .map(|l| clean_path_line(l))
            .find(|l| !l.is_empty());
        let Some(path) = path else {
            return Err(format!(
                "the SEARCH block at line {} has no file path on the line before it",
                i + 1
            ));
        };
        let start = i + 1;
        let Some(divider) = (start..lines.len()).find(|&j| is_divider(lines[j])) else {
            return Err(format!("the SEARCH block for {path} has no ======= line"));
        };
        let Some(end) = (divider + 1..lines.len()).find(|&j| is_marker(lines[j], '>', "REPLACE"))
        else {
            return Err(format!(
                "the SEARCH block for {path} has no >>>>>>> REPLACE line"
            ));
        };
        blocks.push(EditBlock {
            path,
            search: join_lines(&lines[start..divider]),
            replace: join_lines(&lines[divider + 1..end]),
        });
        i = end + 1;
    }
    if blocks.is_empty() {
        return Err("no SEARCH/REPLACE block found: each edit must be a file path line, then <<<<<<< SEARCH, the old text, =======, the new text, >>>>>>> REPLACE".into());
    }
    Ok(blocks)
}

/// A `<<<<<<< SEARCH` / `>>>>>>> REPLACE` marker line (five or more of `c`, then `word`).
pub fn is_marker(line: &str, c: char, word: &str) -> bool {
    let t = line.trim();
    let n = t.chars().take_while(|x| *x == c).count();
    n >= 5 && t[n..].trim() == word
}

/// The `=======` line between SEARCH and REPLACE.
pub fn is_divider(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 5 && t.chars().all(|c| c == '=')
}

fn join_lines(lines: &[&str]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("{}\n", lines.join("\n"))
    }
}

/// A path line as models write it: `src/app.py`, `` `src/app.py` ``, `**src/app.py**`,
/// `File: src/app.py`, or a fence with the path (` ```python src/app.py `).
fn clean_path_line(line: &str) -> String {
    let mut t = line.trim();
    if t.starts_with("```") {
        t = t.trim_start_matches('`');
        // "```python src/app.py" -> the last word, if it looks like a path.
        match t.split_whitespace().last() {
            Some(word) if word.contains('.') || word.contains('/') => t = word,
            _ => return String::new(),
        }
    }
    for prefix in ["File:", "file:", "Path:", "path:", "#"] {
        t = t.strip_prefix(prefix).unwrap_or(t).trim();
    }
    let t = t
        .trim_matches(|c| c == '`' || c == '*' || c == '"' || c == '\'' || c == ':')
        .trim();
    // "./src/app.py" is how many models write a path; the guard sees "src/app.py".
    t.strip_prefix("./").unwrap_or(t).to_string()
}

/// Checks that `path` stays inside the clone and outside protected paths, through the one
/// path guard ([`crate::safety::paths`]), and returns it normalised.
pub fn check_path(clone: &Path, path: &str, config: &TeamConfig) -> Result<RepoPath, String> {
    let checked = RepoPath::parse(path).map_err(|e| e.to_string())?;
    if config.is_protected(&checked) || checked.is_under(crate::team::team_config::PATH) {
        return Err(format!(
            "{path}: protected by .llm-team.yml (project.protected_paths); leave it alone"
        ));
    }
    paths::resolve(clone, &checked).map_err(|e| e.to_string())?;
    Ok(checked)
}

/// Applies blocks inside `clone`; every failure is described precisely, and a failed
/// block changes nothing.
pub fn apply(clone: &Path, blocks: &[EditBlock], config: &TeamConfig) -> ApplyReport {
    let mut report = ApplyReport::default();
    for (n, block) in blocks.iter().enumerate() {
        let label = format!("block {} ({})", n + 1, block.path);
        let checked = match check_path(clone, &block.path, config) {
            Ok(checked) => checked,
            Err(why) => {
                report.failures.push(format!("{label}: {why}"));
                continue;
            }
        };
        let lowered = block.replace.to_ascii_lowercase();
        if PLACEHOLDERS.iter().any(|p| lowered.contains(p))
            && !block.search.to_ascii_lowercase().contains("rest of")
        {
            report.lazy_placeholders += 1;
            report.failures.push(format!("{label}: the replacement contains a placeholder instead of code (like \"... rest of code unchanged\"); write out the full text"));
            continue;
        }
        let existing = match paths::read_to_string(clone, &checked) {
            Ok(existing) => existing,
            Err(why) => {
                report.failures.push(format!("{label}: {why}"));
                continue;
            }
        };
        let updated = match (&existing, block.search.trim().is_empty()) {
            (None, true) => Ok(block.replace.clone()),
            (Some(old), true) if old.trim().is_empty() => Ok(block.replace.clone()),
            (Some(_), true) => Err("the file exists, so SEARCH must quote the lines to replace (an empty SEARCH only creates new files)".to_string()),
            (None, false) => Err("the file does not exist; to create it, leave SEARCH empty".to_string()),
            (Some(old), false) => replace_once(old, &block.search, &block.replace),
        };
        match updated {
            Ok(text) => match paths::write(clone, &checked, &text) {
                Ok(()) => {
                    report.applied += 1;
                    let name = checked.to_string();
                    if !report.files.contains(&name) {
                        report.files.push(name);
                    }
                }
                Err(why) => report.failures.push(format!("{label}: {why}")),
            },
            Err(why) => report.failures.push(format!("{label}: {why}")),
        }
    }
    report
}

/// Replaces the one place `search` occurs: exactly first, then ignoring trailing spaces,
/// then ignoring indentation. Zero or several matches are failures.
fn replace_once(text: &str, search: &str, replace: &str) -> Result<String, String> {
    let crlf = text.contains("\r\n");
    let text_lf = text.replace("\r\n", "\n");
    let search = search.replace("\r\n", "\n");
    let replace = replace.replace("\r\n", "\n");
    // Exact matches count only where they start a line: a SEARCH quoted without its
    // indentation must not match the middle of an indented line and leave the
    // replacement mis-indented.
    let at_line_starts: Vec<usize> = text_lf
        .match_indices(search.as_str())
        .map(|(at, _)| at)
        .filter(|&at| at == 0 || text_lf.as_bytes()[at - 1] == b'\n')
        .collect();
    let result = match at_line_starts.len() {
        1 => {
            let at = at_line_starts[0];
            Ok(format!(
                "{}{replace}{}",
                &text_lf[..at],
                &text_lf[at + search.len()..]
            ))
        }
        n if n > 1 => Err(format!(
            "SEARCH matches {n} places; quote more lines so it matches exactly one"
        )),
        _ => replace_lines(&text_lf, &search, &replace, false)
            .or_else(|_| replace_lines(&text_lf, &search, &replace, true)),
    }?;
    Ok(if crlf {
        result.replace('\n', "\r\n")
    } else {
        result
    })
}

/// Replaces the one run of lines matching `search` ignoring trailing spaces, or, with
/// `ignore_indent`, ignoring indentation too: then the replacement is shifted by the same
/// indentation the match was off by (see [`reindent`]), so a method quoted at column 0
/// stays inside its class.
fn replace_lines(
    text: &str,
    search: &str,
    replace: &str,
    ignore_indent: bool,
) -> Result<String, String> {
    let norm = |l: &str| {
        if ignore_indent {
            l.trim().to_string()
        } else {
            l.trim_end().to_string()
        }
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let wanted: Vec<String> = search.lines().map(norm).collect();
    if wanted.is_empty() {
        return Err("SEARCH is empty".into());
    }
    let starts: Vec<usize> = (0..lines.len().saturating_sub(wanted.len() - 1))
        .filter(|&i| {
            (0..wanted.len()).all(|k| norm(lines[i + k].trim_end_matches('\n')) == wanted[k])
        })
        .collect();
    match starts.as_slice() {
        [start] => {
            let matched: Vec<&str> = lines[*start..start + wanted.len()]
                .iter()
                .map(|l| l.trim_end_matches('\n'))
                .collect();
            let replace = if ignore_indent {
                reindent(&matched, search, replace)?
            } else {
                replace.to_string()
            };
            let mut out: String = lines[..*start].concat();
            out.push_str(&replace);
            if !replace.ends_with('\n') && !replace.is_empty() {
                out.push('\n');
            }
            out.push_str(&lines[start + wanted.len()..].concat());
            Ok(out)
        }
        [] => {
            let first = wanted
                .iter()
                .find(|l| !l.is_empty())
                .cloned()
                .unwrap_or_default();
            let near = lines
                .iter()
                .position(|l| norm(l.trim_end_matches('\n')) == first);
            Err(match near {
                Some(at) => format!("SEARCH text not found as written; its first line matches line {} but the following lines differ. Quote the current text exactly", at + 1),
                None => format!("SEARCH text not found; no line reads {first:?}. Quote the current text exactly"),
            })
        }
        many => Err(format!(
            "SEARCH matches {} places; quote more lines so it matches exactly one",
            many.len()
        )),
    }
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The indentation change that turns SEARCH's lines into the matched ones.
#[derive(Debug, PartialEq, Eq)]
enum Shift<'a> {
    Add(&'a str),
    Remove(&'a str),
}

/// Shifts `replace` by the indentation `search` was off by against `matched` (the file's
/// lines), keeping the replacement's relative indentation. Refuses when the offset is not
/// one consistent shift (tabs against spaces, lines that disagree) or when a replacement
/// line is less indented than the shift removes.
pub fn reindent(matched: &[&str], search: &str, replace: &str) -> Result<String, String> {
    let pairs: Vec<(&str, &str)> = matched
        .iter()
        .zip(search.lines())
        .filter(|(file, _)| !file.trim().is_empty())
        .map(|(file, quoted)| (indent_of(file), indent_of(quoted)))
        .collect();
    let Some((file0, quoted0)) = pairs.first().copied() else {
        return Ok(replace.to_string());
    };
    let shift = if let Some(extra) = file0.strip_suffix(quoted0) {
        Shift::Add(extra)
    } else if let Some(extra) = quoted0.strip_suffix(file0) {
        Shift::Remove(extra)
    } else {
        return Err(format!(
            "SEARCH matches only when indentation is ignored, and its indentation ({quoted0:?}) cannot be shifted to the file's ({file0:?}): tabs and spaces differ. Quote the lines with the file's own indentation"
        ));
    };
    for (n, (file, quoted)) in pairs.iter().enumerate() {
        let consistent = match shift {
            Shift::Add(extra) => *file == format!("{extra}{quoted}"),
            Shift::Remove(extra) => *quoted == format!("{extra}{file}"),
        };
        if !consistent {
            return Err(format!(
                "SEARCH matches only when indentation is ignored, and its lines are off by different amounts (line {} of SEARCH); quote the lines with the file's own indentation",
                n + 1
            ));
        }
    }
    let mut out = String::new();
    for (n, line) in replace.split_inclusive('\n').enumerate() {
        if line.trim().is_empty() {
            out.push_str(line);
            continue;
        }
        match shift {
            Shift::Add(extra) => {
                out.push_str(extra);
                out.push_str(line);
            }
            Shift::Remove(extra) => match line.strip_prefix(extra) {
                Some(rest) => out.push_str(rest),
                None => {
                    return Err(format!(
                        "line {} of REPLACE is less indented than SEARCH, so it cannot be shifted to the file's indentation; quote the lines with the file's own indentation",
                        n + 1
                    ))
                }
            },
        }
    }
    Ok(out)
}

/// Files among `files` that no longer parse, one line each (file, line, what): Python
/// (the standard library's `ast`, which parses without running anything) and JSON. The
/// file's text goes to the parser on stdin, with an empty environment.
pub async fn syntax_errors(clone: &Path, files: &[String]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let Ok(checked) = RepoPath::parse(file) else {
            continue;
        };
        let Ok(Some(text)) = paths::read_to_string(clone, &checked) else {
            continue;
        };
        let lower = file.to_ascii_lowercase();
        if lower.ends_with(".json") {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
                broken.push(format!("{file}: invalid JSON: {e}"));
            }
        } else if lower.ends_with(".py") {
            if let Some(why) = python_syntax_error(&text).await {
                broken.push(format!("{file}: {why}"));
            }
        } else if lower.ends_with(".js") || lower.ends_with(".mjs") || lower.ends_with(".cjs") {
            let flavour = if lower.ends_with(".mjs") {
                "module"
            } else {
                "commonjs"
            };
            let args = ["--input-type", flavour, "--check"];
            if let Some(why) = checker_error("node", &args, &text).await {
                broken.push(format!("{file}: {why}"));
            }
        } else if lower.ends_with(".sh") || lower.ends_with(".bash") {
            if let Some(why) = checker_error("bash", &["-n"], &text).await {
                broken.push(format!("{file}: {why}"));
            }
        }
    }
    broken
}

/// Runs a syntax checker that reads `source` on stdin and runs nothing (Python's `ast`,
/// `node --check`, `bash -n`) with an empty environment; its exit code, stdout and stderr,
/// or `None` when it is not there or hangs.
async fn run_checker(program: &str, args: &[&str], source: &str) -> Option<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", crate::safety::git::safe_path())
        .current_dir("/")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let text = source.to_string();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(text.as_bytes()).await;
    });
    let output = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .ok()?
        .ok()?;
    let _ = writer.await;
    Some(output)
}

/// `Some(first error lines)` when `node --check` or `bash -n` refuses `source`; `None`
/// when it accepts it or is not there.
async fn checker_error(program: &str, args: &[&str], source: &str) -> Option<String> {
    let output = run_checker(program, args, source).await?;
    if output.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let why: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.trim().is_empty() && !l.starts_with("Node.js") && !l.trim_start().starts_with("at ")
        })
        .take(4)
        .collect();
    Some(why.join(" | "))
}

/// `Some(message)` when `source` is not valid Python (or `None` when it is, or when no
/// Python is there to say).
async fn python_syntax_error(source: &str) -> Option<String> {
    const CHECK: &str = "import ast, sys\ntry:\n    ast.parse(sys.stdin.read())\nexcept SyntaxError as e:\n    print(f'line {e.lineno}: {e.msg}'); sys.exit(1)\n";
    let output = run_checker("python3", &["-I", "-c", CHECK], source).await?;
    (output.status.code() == Some(1))
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Whether the changes are within budget; `Err` says by how much they are not.
pub fn check_budget(files: usize, added: usize, budget: DiffBudget) -> Result<(), String> {
    if files > budget.max_files {
        return Err(format!(
            "the change touches {files} files; at most {} are allowed",
            budget.max_files
        ));
    }
    if added > budget.max_added_lines {
        return Err(format!(
            "the change adds {added} lines; at most {} are allowed",
            budget.max_added_lines
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    fn config() -> TeamConfig {
        crate::team::team_config::parse(Some("project:\n  protected_paths: [.github/, secrets/]\n"))
            .0
    }

    #[test]
    fn parses_blocks_wrapped_the_way_models_wrap_them() {
        let reply = "Sure! Here are the edits.\r\n\r\n**src/app.py**\r\n```python\r\n<<<<<<< SEARCH\r\ndef main():\r\n    pass\r\n=======\r\ndef main():\r\n    return 0\r\n>>>>>>> REPLACE\r\n```\r\n\r\nFile: `tests/test_new.py`\n<<<<<<< SEARCH\n=======\nimport unittest\n>>>>>>> REPLACE\nDone.";
        let blocks = parse(reply).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].path, "src/app.py");
        assert_eq!(blocks[0].search, "def main():\n    pass\n");
        assert_eq!(blocks[0].replace, "def main():\n    return 0\n");
        assert_eq!(blocks[1].path, "tests/test_new.py");
        assert_eq!(blocks[1].search, "");
    }

    #[test]
    fn malformed_replies_say_what_is_missing() {
        assert!(parse("I changed the code, it should work now.")
            .unwrap_err()
            .contains("no SEARCH/REPLACE block"));
        assert!(parse("a.py\n<<<<<<< SEARCH\nx\n")
            .unwrap_err()
            .contains("no ======="));
        assert!(parse("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n")
            .unwrap_err()
            .contains("REPLACE"));
        assert!(parse("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE")
            .unwrap_err()
            .contains("no file path"));
    }

    #[test]
    fn applies_exactly_then_tolerating_whitespace_drift() {
        let dir = TempDir::new().unwrap();
        std::fs::write(
            dir.path().join("a.py"),
            "def f():\n    return 1\n\ndef g():\n    return 2\n",
        )
        .unwrap();
        let exact = EditBlock {
            path: "a.py".into(),
            search: "    return 1\n".into(),
            replace: "    return 10\n".into(),
        };
        // The model added trailing spaces.
        let drift = EditBlock {
            path: "a.py".into(),
            search: "def g():   \n    return 2\n".into(),
            replace: "def g():\n    return 20\n".into(),
        };
        let report = apply(dir.path(), &[exact, drift], &config());
        assert_eq!(report.failures, Vec::<String>::new());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.py")).unwrap(),
            "def f():\n    return 10\n\ndef g():\n    return 20\n"
        );
    }

    /// Issue 22: a SEARCH that matches only ignoring indentation shifts its REPLACE by the
    /// same offset, keeping relative indentation; ambiguous offsets are refused.
    #[test]
    fn replacements_are_reindented_to_where_the_search_matched() {
        let class = "class Tally:\n    def __init__(self):\n        self.n = 0\n\n    def add(self, k):\n        self.n += k\n\n    def total(self):\n        return self.n\n";
        let nested = "def outer():\n    def inner(x):\n        return x\n    return inner\n";
        let tabs = "class T:\n\tdef f(self):\n\t\treturn 1\n";
        /// name, file, SEARCH, REPLACE, the file after (or the refusal's words)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Result<&'a str, &'a str>);
        let cases: &[Case] = &[
            (
                "method in a class, quoted at column 0",
                class,
                "def add(self, k):\n    self.n += k\n",
                "def add(self, k, times=1):\n    self.n += k * times\n",
                Ok("class Tally:\n    def __init__(self):\n        self.n = 0\n\n    def add(self, k, times=1):\n        self.n += k * times\n\n    def total(self):\n        return self.n\n"),
            ),
            (
                "a replacement with deeper blocks",
                class,
                "def total(self):\n    return self.n\n",
                "def total(self):\n    if self.n < 0:\n        raise ValueError(\"negative\")\n\n    return self.n\n",
                Ok("class Tally:\n    def __init__(self):\n        self.n = 0\n\n    def add(self, k):\n        self.n += k\n\n    def total(self):\n        if self.n < 0:\n            raise ValueError(\"negative\")\n\n        return self.n\n"),
            ),
            (
                "nested function, quoted one level too shallow",
                nested,
                "def inner(x):\n    return x\n",
                "def inner(x):\n    return x * 2\n",
                Ok("def outer():\n    def inner(x):\n        return x * 2\n    return inner\n"),
            ),
            (
                "quoted too deep",
                nested,
                "            def inner(x):\n                return x\n",
                "            def inner(x):\n                return -x\n",
                Ok("def outer():\n    def inner(x):\n        return -x\n    return inner\n"),
            ),
            (
                "tabs, quoted at column 0",
                tabs,
                "def f(self):\n\treturn 1\n",
                "def f(self):\n\treturn 2\n",
                Ok("class T:\n\tdef f(self):\n\t\treturn 2\n"),
            ),
            (
                "spaces quoted against a file indented with tabs",
                tabs,
                "    def f(self):\n        return 1\n",
                "    def f(self):\n        return 3\n",
                Err("tabs and spaces differ"),
            ),
            (
                "lines that disagree",
                class,
                "def add(self, k):\n        self.n += k\n",
                "def add(self, k):\n    self.n -= k\n",
                Err("off by different amounts"),
            ),
            (
                "a replacement less indented than the shift removes",
                nested,
                "            def inner(x):\n                return x\n",
                "def inner(x):\n    return x\n",
                Err("less indented"),
            ),
        ];
        for (name, file, search, replace, expected) in cases {
            let dir = TempDir::new().unwrap();
            std::fs::write(dir.path().join("m.py"), file).unwrap();
            let block = EditBlock {
                path: "m.py".into(),
                search: search.to_string(),
                replace: replace.to_string(),
            };
            let report = apply(dir.path(), &[block], &config());
            let after = std::fs::read_to_string(dir.path().join("m.py")).unwrap();
            match expected {
                Ok(want) => {
                    assert!(report.failures.is_empty(), "{name}: {:?}", report.failures);
                    assert_eq!(&after, want, "{name}");
                }
                Err(why) => {
                    assert!(
                        report.failures.len() == 1 && report.failures[0].contains(why),
                        "{name}: {:?}",
                        report.failures
                    );
                    assert_eq!(&after, file, "{name}: the file is unchanged");
                }
            }
        }
    }

    #[tokio::test]
    async fn files_that_no_longer_parse_are_named_with_the_line() {
        let dir = TempDir::new().unwrap();
        std::fs::write(
            dir.path().join("ok.py"),
            "class A:\n    def f(self):\n        return 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bad.py"),
            "class A:\ndef f(self):\n        return 1\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("bad.json"), "{\"a\": }").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "def (").unwrap();
        let files: Vec<String> = ["ok.py", "bad.py", "bad.json", "notes.txt"]
            .map(String::from)
            .to_vec();
        let broken = syntax_errors(dir.path(), &files).await;
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken[0].starts_with("bad.py: line 2:"), "{broken:?}");
        assert!(
            broken[1].starts_with("bad.json: invalid JSON"),
            "{broken:?}"
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("w.txt"), "one\r\ntwo\r\n").unwrap();
        let block = EditBlock {
            path: "w.txt".into(),
            search: "two\n".into(),
            replace: "2\n".into(),
        };
        assert!(apply(dir.path(), &[block], &config()).failures.is_empty());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("w.txt")).unwrap(),
            "one\r\n2\r\n"
        );
    }

    #[test]
    fn failures_are_precise_and_change_nothing() {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("a.py"), "x = 1\nx = 1\ny = 2\n").unwrap();
        let blocks = [
            EditBlock {
                path: "a.py".into(),
                search: "x = 1\n".into(),
                replace: "x = 3\n".into(),
            },
            EditBlock {
                path: "a.py".into(),
                search: "z = 9\n".into(),
                replace: "z = 0\n".into(),
            },
            EditBlock {
                path: "new.py".into(),
                search: "q\n".into(),
                replace: "r\n".into(),
            },
            EditBlock {
                path: "a.py".into(),
                search: String::new(),
                replace: "all new\n".into(),
            },
        ];
        let report = apply(dir.path(), &blocks, &config());
        assert_eq!(report.applied, 0);
        assert!(
            report.failures[0].contains("matches 2 places"),
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[1].contains("no line reads \"z = 9\""),
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[2].contains("does not exist"),
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[3].contains("SEARCH must quote"),
            "{:?}",
            report.failures
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.py")).unwrap(),
            "x = 1\nx = 1\ny = 2\n"
        );
    }

    #[test]
    fn paths_outside_the_clone_or_protected_are_refused() {
        let dir = TempDir::new().unwrap();
        let outside = TempDir::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        for (path, why) in [
            ("../evil.py", "`..`"),
            ("src/../../evil.py", "`..`"),
            ("/etc/passwd", "inside the repository"),
            ("~/.ssh/authorized_keys", "inside the repository"),
            (".git/hooks/pre-commit", ".git/"),
            (".github/workflows/ci.yml", "protected"),
            ("secrets/key.txt", "protected"),
            (".llm-team.yml", "protected"),
            ("link/owned.py", "symlink"),
        ] {
            let block = EditBlock {
                path: path.into(),
                search: String::new(),
                replace: "x\n".into(),
            };
            let report = apply(dir.path(), &[block], &config());
            assert_eq!(report.applied, 0, "{path}");
            assert!(
                report.failures[0].contains(why),
                "{path}: {:?}",
                report.failures
            );
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
    }

    #[test]
    fn lazy_placeholders_are_caught() {
        let dir = TempDir::new().unwrap();
        std::fs::write(dir.path().join("a.py"), "a = 1\n").unwrap();
        let block = EditBlock {
            path: "a.py".into(),
            search: "a = 1\n".into(),
            replace: "a = 2\n# ... rest of code unchanged\n".into(),
        };
        let report = apply(dir.path(), &[block], &config());
        assert_eq!(report.lazy_placeholders, 1);
        assert!(report.failures[0].contains("placeholder"));
    }

    #[test]
    fn the_diff_budget() {
        let budget = DiffBudget {
            max_files: 3,
            max_added_lines: 100,
        };
        assert!(check_budget(3, 100, budget).is_ok());
        assert!(check_budget(4, 1, budget).unwrap_err().contains("4 files"));
        assert!(check_budget(1, 101, budget)
            .unwrap_err()
            .contains("101 lines"));
    }
}
