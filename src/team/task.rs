//! Task files: `tasks/T-NNNN-slug.md`, Markdown with YAML front matter. Parsing is strict
//! and reports every problem with the file and the field; rewriting a field touches only
//! that field's line, so the body, key order, comments and unknown keys survive
//! byte for byte.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use super::Problem;

/// `T-NNNN`: four or more digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    pub fn parse(text: &str) -> Option<TaskId> {
        let digits = text.strip_prefix("T-")?;
        (digits.len() >= 4 && digits.chars().all(|c| c.is_ascii_digit()))
            .then(|| TaskId(text.to_string()))
    }

    pub fn from_number(number: u32) -> TaskId {
        TaskId(format!("T-{number:04}"))
    }

    pub fn number(&self) -> u32 {
        self.0[2..].parse().unwrap_or(0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The task id a file name or branch name starts with (`T-0003-add-cli.md` -> T-0003).
    pub fn prefix_of(text: &str) -> Option<TaskId> {
        let rest = text.strip_prefix("T-")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        if digits.len() >= 4 && (after.is_empty() || after.starts_with(['-', '.'])) {
            Some(TaskId(format!("T-{digits}")))
        } else {
            None
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The allowed spellings, for error messages.
            pub fn allowed() -> String {
                [$($text),+].join(", ")
            }
        }

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a task is in its life.
    Status {
        Queued = "queued",
        InReview = "in_review",
        ReadyForIntegration = "ready_for_integration",
        Done = "done",
        Blocked = "blocked",
    }
);

string_enum!(
    /// What kind of work a task is.
    TaskType {
        Feature = "feature",
        Bugfix = "bugfix",
        Doc = "doc",
        Chore = "chore",
    }
);

string_enum!(
    /// P0 is the most urgent.
    Priority {
        P0 = "P0",
        P1 = "P1",
        P2 = "P2",
        P3 = "P3",
    }
);

impl Status {
    /// The transitions gaffer (or a human through a PR) may make.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Queued, InReview)
                | (InReview, ReadyForIntegration)
                | (InReview, Done)
                | (ReadyForIntegration, Done)
                | (InReview, Queued)
                | (Blocked, Queued)
                | (Queued | InReview | ReadyForIntegration, Blocked)
        )
    }
}

/// A valid task, as read from its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    pub path: String,
    pub id: TaskId,
    pub title: String,
    #[serde(rename = "type")]
    pub task_type: TaskType,
    pub priority: Priority,
    pub depends_on: Vec<TaskId>,
    pub status: Status,
    pub owner: Option<String>,
    pub estimate: Option<String>,
    pub acceptance: Vec<String>,
    pub auto_policy: Option<String>,
    /// Where the task came from, e.g. `issue #12` (a task made from a GitHub issue).
    pub source: Option<String>,
    #[serde(skip)]
    pub body: String,
}

/// Keys a task's front matter is expected to have; others are kept and reported.
pub const KNOWN_KEYS: &[&str] = &[
    "id",
    "title",
    "type",
    "priority",
    "depends_on",
    "status",
    "owner",
    "estimate",
    "acceptance",
    "auto_policy",
    "source",
];

/// The largest task file gaffer reads; a larger one is a problem for that file only.
pub const MAX_TASK_BYTES: usize = 256 * 1024;

/// Splits `---\n<front matter>\n---\n<body>` into its two parts.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches('\u{feff}');
    let first_end = text.find('\n')?;
    if text[..first_end].trim_end() != "---" {
        return None;
    }
    let rest = &text[first_end + 1..];
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            let front = &rest[..offset];
            let body = &rest[offset + line.len()..];
            return Some((front, body.strip_prefix('\n').unwrap_or(body)));
        }
        offset += line.len();
    }
    None
}

/// Parses one task file. Every problem is returned (not only the first), each naming
/// the file and the field; unknown keys are warnings and do not make the task invalid.
pub fn parse_task(path: &str, text: &str) -> (Option<Task>, Vec<Problem>) {
    let mut problems = Vec::new();
    let error = |field: Option<&str>, message: String| Problem::error(path, field, message);
    if !text.trim_start_matches('\u{feff}').starts_with("---") {
        return (
            None,
            vec![error(
                None,
                "no YAML front matter: the file must start with a line `---`".into(),
            )],
        );
    }
    if text.len() > MAX_TASK_BYTES {
        return (
            None,
            vec![error(
                None,
                format!(
                    "the file is {} bytes; task files may be at most {MAX_TASK_BYTES}",
                    text.len()
                ),
            )],
        );
    }
    let Some((front, content)) = split_front_matter(text) else {
        return (
            None,
            vec![error(
                None,
                "the front matter has no closing `---` line".into(),
            )],
        );
    };
    let data = match crate::team::yaml::parse_bounded(front) {
        Ok(data) => data,
        Err(e) => {
            return (
                None,
                vec![error(None, format!("front matter is not valid YAML: {e}"))],
            )
        }
    };
    let Value::Object(data) = data else {
        return (
            None,
            vec![error(
                None,
                "front matter must be a mapping of keys such as id, title, status".into(),
            )],
        );
    };
    for key in data.keys() {
        if !KNOWN_KEYS.contains(&key.as_str()) {
            problems.push(Problem::warning(
                path,
                Some(key),
                format!("unknown key `{key}` (kept as is)"),
            ));
        }
    }
    let text_field = |field: &str, problems: &mut Vec<Problem>, required: bool| -> Option<String> {
        match data.get(field) {
            None | Some(Value::Null) if required => {
                problems.push(error(Some(field), "missing".into()));
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                problems.push(error(Some(field), "empty".into()));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(other) => {
                problems.push(error(
                    Some(field),
                    format!("expected text, found {}", kind_of(other)),
                ));
                None
            }
        }
    };
    fn choice<T: FromStr>(
        value: Option<String>,
        field: &str,
        allowed: String,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        let value = value?;
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                problems.push(Problem::error(
                    path,
                    Some(field),
                    format!("{value:?} is not one of {allowed}"),
                ));
                None
            }
        }
    }

    let id = text_field("id", &mut problems, true).and_then(|raw| match TaskId::parse(&raw) {
        Some(id) => Some(id),
        None => {
            problems.push(error(
                Some("id"),
                format!("{raw:?} is not a task id like T-0001"),
            ));
            None
        }
    });
    if let (Some(id), Some(file_name)) = (&id, path.rsplit('/').next()) {
        if TaskId::prefix_of(file_name).is_some_and(|from_name| &from_name != id) {
            problems.push(error(
                Some("id"),
                format!("{id} does not match the file name {file_name}"),
            ));
        }
    }
    let title = text_field("title", &mut problems, true);
    let task_type = choice::<TaskType>(
        text_field("type", &mut problems, true),
        "type",
        TaskType::allowed(),
        path,
        &mut problems,
    );
    let priority = choice::<Priority>(
        text_field("priority", &mut problems, true),
        "priority",
        Priority::allowed(),
        path,
        &mut problems,
    );
    let status = choice::<Status>(
        text_field("status", &mut problems, true),
        "status",
        Status::allowed(),
        path,
        &mut problems,
    );
    let depends_on = match data.get("depends_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item.as_str().and_then(TaskId::parse) {
                Some(dep) => Some(dep),
                None => {
                    problems.push(error(
                        Some("depends_on"),
                        format!("{item} is not a task id like T-0001"),
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(error(
                Some("depends_on"),
                format!("expected a list of task ids, found {}", kind_of(other)),
            ));
            Vec::new()
        }
    };
    let acceptance = match data.get("acceptance") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.clone()),
                other => {
                    problems.push(error(
                        Some("acceptance"),
                        format!("each item must be text, found {}", kind_of(other)),
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(error(
                Some("acceptance"),
                format!("expected a list of criteria, found {}", kind_of(other)),
            ));
            Vec::new()
        }
    };
    let owner = text_field("owner", &mut problems, false);
    let estimate = text_field("estimate", &mut problems, false);
    let auto_policy = text_field("auto_policy", &mut problems, false);
    let source = text_field("source", &mut problems, false);
    let has_errors = problems.iter().any(Problem::is_error);
    let task = match (id, title, task_type, priority, status) {
        (Some(id), Some(title), Some(task_type), Some(priority), Some(status)) if !has_errors => {
            Some(Task {
                path: path.to_string(),
                id,
                title,
                task_type,
                priority,
                depends_on,
                status,
                owner,
                estimate,
                acceptance,
                auto_policy,
                source,
                body: content.to_string(),
            })
        }
        _ => None,
    };
    (task, problems)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Sets a top-level scalar field of the front matter (e.g. `status`), changing only that
/// line; the line is added at the end of the front matter when the key is absent.
pub fn set_front_matter_field(text: &str, key: &str, value: &str) -> Result<String, String> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return Err("no front matter: the file must start with `---`".into());
    }
    let Some(end) = lines
        .iter()
        .skip(1)
        .position(|l| l.trim_end() == "---")
        .map(|i| i + 1)
    else {
        return Err("the front matter is not closed by a `---` line".into());
    };
    let replacement = format!("{key}: {value}{newline}");
    let prefix = format!("{key}:");
    match (1..end).find(|&i| lines[i].starts_with(&prefix)) {
        Some(i) => {
            let line = lines[i];
            let rest = &line[prefix.len()..];
            // Keep a trailing comment (`status: queued  # why`).
            let comment = rest
                .find(" #")
                .map(|at| rest[rest[..at].trim_end().len()..].trim_end_matches(['\r', '\n']))
                .unwrap_or("");
            let ending = if line.ends_with('\n') { newline } else { "" };
            let updated = format!("{key}: {value}{comment}{ending}");
            let mut out = String::with_capacity(text.len() + value.len());
            for (j, l) in lines.iter().enumerate() {
                out.push_str(if j == i { &updated } else { l });
            }
            Ok(out)
        }
        None => {
            lines.insert(end, &replacement);
            Ok(lines.concat())
        }
    }
}

/// The file name for a new task: `T-NNNN-slug.md`.
pub fn file_name(id: &TaskId, title: &str) -> String {
    format!("{id}-{}.md", slug(title))
}

/// A short, branch- and file-safe form of a title.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "task".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The next free id, above every id in use (valid tasks or just file names).
pub fn next_id<'a>(ids_in_use: impl IntoIterator<Item = &'a TaskId>) -> TaskId {
    let highest = ids_in_use
        .into_iter()
        .map(TaskId::number)
        .max()
        .unwrap_or(0);
    TaskId::from_number(highest + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nid: T-0003\ntitle: Add a CLI\ntype: feature\npriority: P1\ndepends_on: [T-0001]\nstatus: queued   # picked next\nowner: developer\nestimate: 2h\nacceptance:\n  - prints --help\n  - exits 0\nauto_policy: pr\nreviewer_notes: keep me\n---\n# Add a CLI\n\nBody text.\n";

    #[test]
    fn parses_a_good_task_and_warns_on_unknown_keys() {
        let (task, problems) = parse_task("tasks/T-0003-add-a-cli.md", GOOD);
        let task = task.expect("valid");
        assert_eq!(task.id.as_str(), "T-0003");
        assert_eq!(task.status, Status::Queued);
        assert_eq!(task.priority, Priority::P1);
        assert_eq!(task.depends_on, vec![TaskId::parse("T-0001").unwrap()]);
        assert_eq!(task.acceptance, ["prints --help", "exits 0"]);
        assert_eq!(task.estimate.as_deref(), Some("2h"));
        assert!(task.body.contains("Body text."));
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].is_error());
        assert_eq!(problems[0].field.as_deref(), Some("reviewer_notes"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let text = "---\nid: 3\ntitle: ''\ntype: epic\npriority: P9\nstatus: doing\ndepends_on: T-0001\nacceptance: yes\n---\n";
        let (task, problems) = parse_task("tasks/bad.md", text);
        assert!(task.is_none());
        let fields: Vec<&str> = problems.iter().filter_map(|p| p.field.as_deref()).collect();
        for field in [
            "id",
            "title",
            "type",
            "priority",
            "status",
            "depends_on",
            "acceptance",
        ] {
            assert!(fields.contains(&field), "{field} reported: {problems:?}");
        }
        assert!(problems.iter().all(|p| p.file == "tasks/bad.md"));
        let status = problems
            .iter()
            .find(|p| p.field.as_deref() == Some("status"))
            .unwrap();
        assert!(
            status.message.contains("queued, in_review"),
            "{}",
            status.message
        );
    }

    #[test]
    fn broken_files_are_reported_not_panicked_on() {
        for text in [
            "no front matter",
            "---\nid: [unclosed\n---\n",
            "---\n- a list\n---\n",
            "---\n---\n",
            "",
        ] {
            let (task, problems) = parse_task("tasks/x.md", text);
            assert!(task.is_none(), "{text:?}");
            assert!(problems.iter().any(Problem::is_error), "{text:?}");
        }
    }

    #[test]
    fn the_id_must_match_the_file_name() {
        let (task, problems) = parse_task("tasks/T-0009-other.md", GOOD);
        assert!(task.is_none());
        assert!(problems
            .iter()
            .any(|p| p.message.contains("does not match the file name")));
    }

    #[test]
    fn a_status_change_rewrites_only_that_line() {
        let updated = set_front_matter_field(GOOD, "status", "in_review").unwrap();
        assert_eq!(
            updated,
            GOOD.replace(
                "status: queued   # picked next",
                "status: in_review   # picked next"
            )
        );
        let crlf = GOOD.replace('\n', "\r\n");
        let updated = set_front_matter_field(&crlf, "status", "done").unwrap();
        assert_eq!(
            updated,
            crlf.replace(
                "status: queued   # picked next",
                "status: done   # picked next"
            )
        );
        // A body line that looks like a key is not touched.
        let tricky = "---\nid: T-0001\nstatus: queued\n---\nstatus: queued is what the body says\n";
        let updated = set_front_matter_field(tricky, "status", "done").unwrap();
        assert_eq!(
            updated,
            "---\nid: T-0001\nstatus: done\n---\nstatus: queued is what the body says\n"
        );
        let added = set_front_matter_field("---\nid: T-0001\n---\nx\n", "owner", "bot").unwrap();
        assert_eq!(added, "---\nid: T-0001\nowner: bot\n---\nx\n");
        assert!(set_front_matter_field("no matter", "status", "done").is_err());
        assert!(set_front_matter_field("---\nid: T-1\n", "status", "done").is_err());
    }

    #[test]
    fn transitions() {
        use Status::*;
        assert!(Queued.can_become(InReview));
        assert!(InReview.can_become(Done));
        assert!(InReview.can_become(ReadyForIntegration));
        assert!(ReadyForIntegration.can_become(Done));
        assert!(Queued.can_become(Blocked));
        assert!(Blocked.can_become(Queued));
        assert!(!Done.can_become(Queued));
        assert!(!Queued.can_become(Done));
        assert!(!Done.can_become(Blocked));
    }

    #[test]
    fn ids_names_and_slugs() {
        let ids: Vec<TaskId> = ["T-0001", "T-0007", "T-0003"]
            .iter()
            .map(|s| TaskId::parse(s).unwrap())
            .collect();
        assert_eq!(next_id(&ids).as_str(), "T-0008");
        assert_eq!(next_id(&[]).as_str(), "T-0001");
        assert_eq!(
            file_name(&TaskId::from_number(12), "Initialize basic CI for Python!"),
            "T-0012-initialize-basic-ci-for-python.md"
        );
        assert_eq!(slug("  ***  "), "task");
        assert_eq!(
            TaskId::prefix_of("T-0003-add.md").unwrap().as_str(),
            "T-0003"
        );
        assert!(TaskId::prefix_of("T-03-x").is_none());
        assert!(TaskId::parse("T-12").is_none());
    }
}
