//! The Developer's tools: what the model may do in the clone, each one step with a bounded,
//! precise answer. Reads and writes go through the one path guard
//! ([`crate::safety::paths`], via [`edits::check_path`] for writes), so no tool reaches
//! outside the clone, into `.git`, a protected path or the task files. Nothing here runs
//! repo code: `run_checks` is the loop's, in the sandbox.

use std::path::Path;

use serde_json::{json, Value};

use super::outline;
use crate::llm::ToolSpec;
use crate::safety::paths::{self, RepoPath};
use crate::team::team_config::TeamConfig;
use crate::workspace::edits::{self, EditBlock};

/// Lines of a file one `read_file` shows at most.
pub const READ_MAX_LINES: usize = 250;
/// Matches one `search` shows at most.
const SEARCH_MAX_MATCHES: usize = 40;
/// A regex longer than this is refused (the regex crate is linear-time; this bounds memory).
const PATTERN_MAX_BYTES: usize = 300;
/// Files larger than this are never rewritten whole: the model edits them instead.
pub const WHOLE_FILE_MAX_LINES: usize = 400;

/// One thing the model asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Files matching a glob (all files without one).
    ListFiles { glob: Option<String> },
    /// A file's lines with numbers, optionally a 1-based inclusive range.
    ReadFile {
        path: String,
        from: Option<usize>,
        to: Option<usize>,
    },
    /// A regex over every file, matching lines with their numbers.
    Search { pattern: String },
    /// The symbols of a file, or of every code file.
    Outline { path: Option<String> },
    /// Replace a snippet that occurs once (SEARCH/REPLACE); an empty `old` creates a file.
    Edit {
        path: String,
        old: String,
        new: String,
    },
    /// Insert lines before 1-based `line` (past the end: append).
    Insert {
        path: String,
        line: usize,
        text: String,
    },
    /// Write a whole file (new, or small enough to rewrite).
    WriteFile { path: String, content: String },
    /// Delete a file.
    Delete { path: String },
    /// Run the repository's checks on the work so far.
    RunChecks,
    /// The model says it is done.
    Finish { summary: String },
}

impl Action {
    /// Whether the action changes files (and so gets a syntax check and a checkpoint).
    pub fn edits(&self) -> Option<&str> {
        match self {
            Action::Edit { path, .. }
            | Action::Insert { path, .. }
            | Action::WriteFile { path, .. }
            | Action::Delete { path } => Some(path),
            _ => None,
        }
    }

    /// A one-line label for results and transcripts.
    pub fn label(&self) -> String {
        match self {
            Action::ListFiles { glob } => format!("list_files {}", glob.as_deref().unwrap_or("")),
            Action::ReadFile { path, from, to } => match (from, to) {
                (Some(f), Some(t)) => format!("read_file {path} {f}-{t}"),
                (Some(f), None) => format!("read_file {path} {f}-"),
                _ => format!("read_file {path}"),
            },
            Action::Search { pattern } => format!("search {pattern}"),
            Action::Outline { path } => format!("outline {}", path.as_deref().unwrap_or("")),
            Action::Edit { path, old, .. } if old.is_empty() => format!("create {path}"),
            Action::Edit { path, .. } => format!("edit {path}"),
            Action::Insert { path, line, .. } => format!("insert {path} at line {line}"),
            Action::WriteFile { path, .. } => format!("write_file {path}"),
            Action::Delete { path } => format!("delete {path}"),
            Action::RunChecks => "run_checks".into(),
            Action::Finish { .. } => "finish".into(),
        }
    }

    /// The action a native tool call names, or why it cannot be one.
    pub fn from_tool_call(name: &str, arguments: &str) -> Result<Action, String> {
        let args: Value = serde_json::from_str(arguments)
            .map_err(|e| format!("the arguments of {name} are not JSON: {e}"))?;
        let text = |key: &str| -> Result<String, String> {
            args.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{name} needs a string argument `{key}`"))
        };
        let optional = |key: &str| args.get(key).and_then(Value::as_str).map(str::to_string);
        let number = |key: &str| {
            args.get(key).and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .map(|n| n as usize)
            })
        };
        Ok(match name {
            "list_files" => Action::ListFiles {
                glob: optional("glob").filter(|g| !g.trim().is_empty()),
            },
            "read_file" => Action::ReadFile {
                path: text("path")?,
                from: number("from_line"),
                to: number("to_line"),
            },
            "search" => Action::Search {
                pattern: text("pattern")?,
            },
            "outline" => Action::Outline {
                path: optional("path").filter(|p| !p.trim().is_empty()),
            },
            "edit" => Action::Edit {
                path: text("path")?,
                old: optional("old").unwrap_or_default(),
                new: text("new")?,
            },
            "insert" => Action::Insert {
                path: text("path")?,
                line: number("line").ok_or("insert needs a number argument `line`")?,
                text: text("text")?,
            },
            "write_file" => Action::WriteFile {
                path: text("path")?,
                content: text("content")?,
            },
            "delete" => Action::Delete {
                path: text("path")?,
            },
            "run_checks" => Action::RunChecks,
            "finish" => Action::Finish {
                summary: optional("summary").unwrap_or_default(),
            },
            other => return Err(format!("there is no tool called {other}")),
        })
    }
}

/// The tools as native tool calling offers them.
pub fn specs() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    };
    let object = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    vec![
        spec("list_files", "List the repository's files, optionally only those matching a glob such as src/**/*.py.",
            object(json!({"glob": {"type": "string"}}), &[])),
        spec("read_file", "Show a file with line numbers, optionally only lines from_line..to_line (at most 250 lines at once).",
            object(json!({"path": {"type": "string"}, "from_line": {"type": "integer"}, "to_line": {"type": "integer"}}), &["path"])),
        spec("search", "Search every file for a regular expression; shows matching lines with their file and line number.",
            object(json!({"pattern": {"type": "string"}}), &["pattern"])),
        spec("outline", "The functions and classes of a file with their line numbers, or of every code file.",
            object(json!({"path": {"type": "string"}}), &[])),
        spec("edit", "Replace the exact text `old`, which must occur once in the file, by `new`. With an empty `old` the file is created.",
            object(json!({"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}}), &["path", "new"])),
        spec("insert", "Insert `text` before line `line` of a file (a line past the end appends).",
            object(json!({"path": {"type": "string"}, "line": {"type": "integer"}, "text": {"type": "string"}}), &["path", "line", "text"])),
        spec("write_file", "Write a whole file: a new file, or a small existing one rewritten completely (no placeholders).",
            object(json!({"path": {"type": "string"}, "content": {"type": "string"}}), &["path", "content"])),
        spec("delete", "Delete a file.", object(json!({"path": {"type": "string"}}), &["path"])),
        spec("run_checks", "Run the repository's tests on your work so far and show the result.", object(json!({}), &[])),
        spec("finish", "Say you are done: the change is complete, tested, and the checks pass.",
            object(json!({"summary": {"type": "string"}}), &["summary"])),
    ]
}

/// Where the tools work: the clone, and the settings that say what may be changed.
pub struct Workbench<'a> {
    pub dir: &'a Path,
    /// The repo's settings with the task directory added to the protected paths.
    pub guarded: &'a TeamConfig,
    /// The clone's files (tracked and new), refreshed by the loop after edits.
    pub files: Vec<String>,
}

/// What one action did, for the model and the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub ok: bool,
    pub text: String,
    /// The file an edit changed (for the syntax check and the checkpoint).
    pub changed: Option<String>,
}

impl Observation {
    fn ok(text: impl Into<String>) -> Observation {
        Observation {
            ok: true,
            text: text.into(),
            changed: None,
        }
    }

    fn failed(text: impl Into<String>) -> Observation {
        Observation {
            ok: false,
            text: text.into(),
            changed: None,
        }
    }

    fn changed(text: impl Into<String>, path: &str) -> Observation {
        Observation {
            ok: true,
            text: text.into(),
            changed: Some(path.to_string()),
        }
    }
}

impl Workbench<'_> {
    /// Reads a file through the path guard.
    pub fn read(&self, path: &str) -> Option<String> {
        let checked = RepoPath::parse(path).ok()?;
        paths::read_to_string(self.dir, &checked).ok().flatten()
    }

    /// Runs one action that is not `run_checks` or `finish` (the loop handles those).
    pub fn execute(&self, action: &Action) -> Observation {
        match action {
            Action::ListFiles { glob } => self.list(glob.as_deref()),
            Action::ReadFile { path, from, to } => self.read_lines(path, *from, *to),
            Action::Search { pattern } => self.search(pattern),
            Action::Outline { path } => self.outline(path.as_deref()),
            Action::Edit { path, old, new } => self.edit(path, old, new),
            Action::Insert { path, line, text } => self.insert(path, *line, text),
            Action::WriteFile { path, content } => self.write_whole(path, content),
            Action::Delete { path } => self.delete(path),
            Action::RunChecks | Action::Finish { .. } => {
                Observation::failed("handled by the loop, not a tool")
            }
        }
    }

    fn list(&self, glob: Option<&str>) -> Observation {
        let matcher = match glob {
            Some(g) => match globset::GlobBuilder::new(g.trim().trim_start_matches("./"))
                .literal_separator(false)
                .build()
            {
                Ok(g) => Some(g.compile_matcher()),
                Err(e) => return Observation::failed(format!("bad glob {g:?}: {e}")),
            },
            None => None,
        };
        let listed: Vec<&String> = self
            .files
            .iter()
            .filter(|f| matcher.as_ref().is_none_or(|m| m.is_match(f.as_str())))
            .collect();
        if listed.is_empty() {
            return Observation::ok("no file matches");
        }
        let shown: Vec<String> = listed.iter().take(300).map(|f| f.to_string()).collect();
        let more = listed.len().saturating_sub(shown.len());
        Observation::ok(format!(
            "{}{}",
            shown.join("\n"),
            if more > 0 {
                format!("\n... and {more} more (use a narrower glob)")
            } else {
                String::new()
            }
        ))
    }

    fn read_lines(&self, path: &str, from: Option<usize>, to: Option<usize>) -> Observation {
        let Some(text) = self.read(path) else {
            return Observation::failed(format!(
                "{path}: no such file (or not readable); list_files shows what exists"
            ));
        };
        let lines: Vec<&str> = text.lines().collect();
        let start = from.unwrap_or(1).max(1);
        if start > lines.len().max(1) {
            return Observation::failed(format!("{path} has only {} lines", lines.len()));
        }
        let end = to
            .unwrap_or(usize::MAX)
            .min(lines.len())
            .min(start + READ_MAX_LINES - 1);
        let mut out: Vec<String> = (start..=end)
            .map(|n| format!("{n:4} | {}", lines[n - 1]))
            .collect();
        if lines.is_empty() {
            out.push("(empty file)".into());
        }
        if end < lines.len() {
            out.push(format!(
                "... {} more lines: read_file {path} {}-{}",
                lines.len() - end,
                end + 1,
                (end + READ_MAX_LINES).min(lines.len())
            ));
        }
        Observation::ok(out.join("\n"))
    }

    fn search(&self, pattern: &str) -> Observation {
        if pattern.len() > PATTERN_MAX_BYTES {
            return Observation::failed("the pattern is too long");
        }
        let re = match regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => re,
            Err(_) => match regex::Regex::new(&regex::escape(pattern)) {
                Ok(re) => re,
                Err(e) => return Observation::failed(format!("bad pattern: {e}")),
            },
        };
        let mut hits = Vec::new();
        let mut total = 0;
        for file in &self.files {
            let Some(text) = self.read(file) else {
                continue;
            };
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    total += 1;
                    if hits.len() < SEARCH_MAX_MATCHES {
                        let shown: String = line.chars().take(200).collect();
                        hits.push(format!("{file}:{}: {shown}", i + 1));
                    }
                }
            }
        }
        if hits.is_empty() {
            return Observation::ok(format!("no line matches {pattern:?}"));
        }
        if total > hits.len() {
            hits.push(format!(
                "... {} more matches (narrow the pattern)",
                total - hits.len()
            ));
        }
        Observation::ok(hits.join("\n"))
    }

    fn outline(&self, path: Option<&str>) -> Observation {
        match path {
            Some(path) => match self.read(path) {
                Some(text) => {
                    let symbols = outline::symbols(path, &text);
                    if symbols.is_empty() {
                        Observation::ok(format!(
                            "{path}: {} lines, no functions or classes found",
                            text.lines().count()
                        ))
                    } else {
                        Observation::ok(format!(
                            "{path} ({} lines): {}",
                            text.lines().count(),
                            outline::outline_line(&symbols)
                        ))
                    }
                }
                None => Observation::failed(format!("{path}: no such file")),
            },
            None => {
                let lines: Vec<String> = self
                    .files
                    .iter()
                    .filter_map(|f| {
                        let text = self.read(f)?;
                        let symbols = outline::symbols(f, &text);
                        (!symbols.is_empty())
                            .then(|| format!("{f}: {}", outline::outline_line(&symbols)))
                    })
                    .take(100)
                    .collect();
                Observation::ok(if lines.is_empty() {
                    "no functions or classes found".to_string()
                } else {
                    lines.join("\n")
                })
            }
        }
    }

    fn edit(&self, path: &str, old: &str, new: &str) -> Observation {
        let block = EditBlock {
            path: path.to_string(),
            search: old.to_string(),
            replace: new.to_string(),
        };
        let report = edits::apply(self.dir, &[block], self.guarded);
        if let Some(failure) = report.failures.first() {
            return Observation::failed(failure.clone());
        }
        let placeholder = if report.lazy_placeholders > 0 {
            " Warning: it contains a placeholder comment such as \"rest of code unchanged\"; write real code."
        } else {
            ""
        };
        let path = report.files.first().cloned().unwrap_or(path.to_string());
        let verb = if old.is_empty() { "created" } else { "edited" };
        Observation::changed(format!("{path}: {verb}.{placeholder}"), &path)
    }

    fn insert(&self, path: &str, line: usize, text: &str) -> Observation {
        let checked = match edits::check_path(self.dir, path, self.guarded) {
            Ok(p) => p,
            Err(e) => return Observation::failed(e),
        };
        let Some(current) = self.read(checked.as_str()) else {
            return Observation::failed(format!(
                "{path}: no such file (create it with write_file)"
            ));
        };
        let mut lines: Vec<&str> = current.lines().collect();
        let at = line.saturating_sub(1).min(lines.len());
        let inserted: Vec<&str> = text.lines().collect();
        lines.splice(at..at, inserted.iter().copied());
        let mut joined = lines.join("\n");
        joined.push('\n');
        if let Err(e) = paths::write(self.dir, &checked, &joined) {
            return Observation::failed(format!("{path}: {e}"));
        }
        Observation::changed(
            format!(
                "{}: inserted {} lines before line {}",
                checked.as_str(),
                inserted.len(),
                at + 1
            ),
            checked.as_str(),
        )
    }

    fn write_whole(&self, path: &str, content: &str) -> Observation {
        let checked = match edits::check_path(self.dir, path, self.guarded) {
            Ok(p) => p,
            Err(e) => return Observation::failed(e),
        };
        let existing = self.read(checked.as_str());
        if let Some(old) = &existing {
            let old_lines = old.lines().count();
            if old_lines > WHOLE_FILE_MAX_LINES {
                return Observation::failed(format!(
                    "{path} has {old_lines} lines: too long to rewrite whole; change it with SEARCH/REPLACE edits"
                ));
            }
            if old == content {
                return Observation::ok(format!("{path}: unchanged (the content is identical)"));
            }
        }
        if edits::has_placeholder(content) {
            return Observation::failed(format!(
                "{path}: the new content contains a placeholder such as \"rest of code unchanged\"; a whole file must be written out in full"
            ));
        }
        let mut text = content.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if let Err(e) = paths::write(self.dir, &checked, &text) {
            return Observation::failed(format!("{path}: {e}"));
        }
        let verb = if existing.is_some() {
            "rewritten"
        } else {
            "created"
        };
        Observation::changed(
            format!(
                "{}: {verb} ({} lines)",
                checked.as_str(),
                text.lines().count()
            ),
            checked.as_str(),
        )
    }

    fn delete(&self, path: &str) -> Observation {
        let checked = match edits::check_path(self.dir, path, self.guarded) {
            Ok(p) => p,
            Err(e) => return Observation::failed(e),
        };
        if self.read(checked.as_str()).is_none() {
            return Observation::failed(format!("{path}: no such file"));
        }
        // A failing test is fixed, never removed to make the checks pass.
        if super::outline::is_test_path(checked.as_str()) {
            return Observation::failed(format!(
                "{path}: deleting a test file is not allowed; fix the code (or the test) instead"
            ));
        }
        match paths::remove(self.dir, &checked) {
            Ok(()) => {
                Observation::changed(format!("{}: deleted", checked.as_str()), checked.as_str())
            }
            Err(e) => Observation::failed(format!("{path}: {e}")),
        }
    }
}
