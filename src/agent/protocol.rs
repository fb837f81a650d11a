//! The text protocol for models without native tool calling, parsed tolerantly of what
//! small models really write. One reply may hold several actions:
//!
//! ~~~text
//! READ src/app.py 1-80            LIST src/**/*.py      FIND def main
//! OUTLINE src/app.py              CHECKS                DONE added the total line
//! DELETE old.txt
//!
//! src/app.py
//! <<<<<<< SEARCH
//! old lines
//! =======
//! new lines
//! >>>>>>> REPLACE
//!
//! WRITE tests/test_total.py
//! ```python
//! the whole new file
//! ```
//! ~~~
//!
//! Accepted as well: whole-file answers (a path line, or a path in the fence's info string,
//! then the file in a fence), language fences inside SEARCH/REPLACE sections, a missing
//! `>>>>>>> REPLACE` when the block is the reply's last, line-number prefixes copied from
//! `READ` output, snake_case tool names (`read_file src/app.py`), and Qwen-style
//! `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` objects. What cannot be read
//! unambiguously is reported, precisely, in [`Parsed::problems`].

use std::sync::OnceLock;

use regex::Regex;

use super::tools::Action;
use crate::workspace::edits::{is_divider, is_marker};

/// Where a text-protocol reply ends: before the model starts writing the results of its
/// own actions (small models invent `READ` output, numbered like gaffer's, or a whole
/// "Results:" message).
pub fn stop_sequences() -> Vec<String> {
    vec![
        "\nResults:".into(),
        "\n   1 | ".into(),
        "\n[1] ".into(),
        "<<<DATA".into(),
        "<<<END DATA".into(),
        "Next actions?".into(),
    ]
}

/// The actions of one reply and what could not be understood.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub actions: Vec<Action>,
    /// One precise line per thing that looked like an action but was not usable.
    pub problems: Vec<String>,
}

/// Parses a reply of the text protocol.
pub fn parse(reply: &str) -> Parsed {
    let text = reply.replace("\r\n", "\n");
    let mut parsed = Parsed::default();
    tool_call_objects(&text, &mut parsed);
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_marker(line, '<', "SEARCH") {
            i = edit_block(&lines, i, &mut parsed);
            continue;
        }
        if is_fence(line) {
            i = fenced(&lines, i, &mut parsed);
            continue;
        }
        if let Some(path) = write_command(line) {
            i = write_block(&lines, i, path, &mut parsed);
            continue;
        }
        if let Some(action) = command(line) {
            parsed.actions.push(action);
        }
        i += 1;
    }
    parsed
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~")
}

/// A SEARCH/REPLACE block starting at `start` (the SEARCH marker); returns the next line.
fn edit_block(lines: &[&str], start: usize, parsed: &mut Parsed) -> usize {
    let path = path_before(lines, start);
    let next_search = (start + 1..lines.len()).find(|&j| is_marker(lines[j], '<', "SEARCH"));
    let limit = next_search.unwrap_or(lines.len());
    let Some(path) = path else {
        parsed.problems.push(format!(
            "the SEARCH block at line {} has no file path on the line before it",
            start + 1
        ));
        return start + 1;
    };
    let Some(divider) = (start + 1..limit).find(|&j| is_divider(lines[j])) else {
        parsed
            .problems
            .push(format!("the SEARCH block for {path} has no ======= line"));
        return limit;
    };
    let (end, resume) = match (divider + 1..limit).find(|&j| is_marker(lines[j], '>', "REPLACE")) {
        Some(end) => (end, end + 1),
        // The reply's last block may end without the marker: everything up to the end
        // (but a closing fence) is the replacement. Before another block it is ambiguous.
        None if next_search.is_none() => (lines.len(), lines.len()),
        None => {
            parsed.problems.push(format!(
                "the SEARCH block for {path} has no >>>>>>> REPLACE line before the next block"
            ));
            return limit;
        }
    };
    parsed.actions.push(Action::Edit {
        path,
        old: section(&lines[start + 1..divider]),
        new: section(&lines[divider + 1..end]),
    });
    resume
}

/// A section's text without the language fences models put around or inside it.
fn section(lines: &[&str]) -> String {
    let mut body: &[&str] = lines;
    while body.first().is_some_and(|l| is_fence(l)) {
        body = &body[1..];
    }
    while body.last().is_some_and(|l| is_fence(l)) {
        body = &body[..body.len() - 1];
    }
    if body.is_empty() {
        String::new()
    } else {
        format!("{}\n", body.join("\n"))
    }
}

/// The file path written before line `at`: the nearest non-empty line, or a path in the
/// fence just before (` ```python src/app.py `), skipping a bare opening fence.
fn path_before(lines: &[&str], at: usize) -> Option<String> {
    let mut j = at;
    let mut skipped_fence = false;
    while j > 0 {
        j -= 1;
        let line = lines[j].trim();
        if line.is_empty() {
            continue;
        }
        if is_fence(line) {
            if let Some(path) = fence_path(line) {
                return Some(path);
            }
            if skipped_fence {
                return None;
            }
            skipped_fence = true;
            continue;
        }
        return path_line(line);
    }
    None
}

/// `src/app.py` from a line that names one file (`### src/app.py`, `File: src/app.py`,
/// `` `src/app.py` ``, `**src/app.py**`, `src/app.py:`).
pub fn path_line(line: &str) -> Option<String> {
    let mut t = line.trim();
    for prefix in ["File:", "file:", "Path:", "path:", "Filename:", "filename:"] {
        t = t.strip_prefix(prefix).unwrap_or(t).trim();
    }
    let t = t.trim_start_matches('#').trim();
    let t = t
        .trim_matches(|c| c == '`' || c == '*' || c == '"' || c == '\'' || c == ':')
        .trim();
    let t = t.strip_prefix("./").unwrap_or(t);
    looks_like_path(t).then(|| t.to_string())
}

fn looks_like_path(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 200
        && !t.contains(char::is_whitespace)
        && (t.contains('/') || t.contains('.'))
        && !t.ends_with('.')
        && !t.starts_with("http")
        && t.chars()
            .all(|c| c.is_alphanumeric() || "._-/+@".contains(c))
}

/// A path in a fence's info string: "```python src/app.py" or "```src/app.py".
fn fence_path(line: &str) -> Option<String> {
    let info = line.trim().trim_start_matches(['`', '~']).trim();
    let word = info.split_whitespace().last()?;
    let word = word.strip_prefix("./").unwrap_or(word);
    (looks_like_path(word) && (word.contains('/') || word.contains('.'))).then(|| word.to_string())
}

/// A fenced block at `start`: a whole file when a path names it, else prose (skipped).
/// Returns the line after it.
fn fenced(lines: &[&str], start: usize, parsed: &mut Parsed) -> usize {
    let close =
        (start + 1..lines.len()).find(|&j| lines[j].trim() == "```" || lines[j].trim() == "~~~");
    let end = close.unwrap_or(lines.len());
    let body = &lines[start + 1..end];
    if body.iter().any(|l| is_marker(l, '<', "SEARCH")) {
        // SEARCH/REPLACE blocks wrapped in a fence: parse what is inside.
        return start + 1;
    }
    let path = fence_path(lines[start]).or_else(|| path_before(lines, start));
    let Some(path) = path else {
        return end + 1;
    };
    if close.is_none() && body.is_empty() {
        return end;
    }
    let content = strip_line_numbers(body);
    parsed.actions.push(Action::WriteFile { path, content });
    end + 1
}

/// Lines copied from `READ` output keep their `  12 | ` prefixes; a file where every
/// non-empty line has one loses them.
fn strip_line_numbers(body: &[&str]) -> String {
    static NUMBERED: OnceLock<Regex> = OnceLock::new();
    let re = NUMBERED.get_or_init(|| Regex::new(r"^\s*\d+ \| ?").expect("pattern"));
    let numbered = !body.is_empty()
        && body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .all(|l| re.is_match(l));
    let mut out: Vec<String> = body
        .iter()
        .map(|l| {
            if numbered {
                re.replace(l, "").into_owned()
            } else {
                l.to_string()
            }
        })
        .collect();
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    format!("{}\n", out.join("\n"))
}

/// `WRITE path` (or `CREATE path`, `write_file path`): the whole file follows.
fn write_command(line: &str) -> Option<String> {
    let t = line
        .trim()
        .trim_start_matches(['-', '*', '>', ' '])
        .trim_matches('`')
        .trim();
    let (word, rest) = t.split_once(char::is_whitespace)?;
    if !matches!(word, "WRITE" | "CREATE" | "write_file") {
        return None;
    }
    path_line(rest.trim().trim_end_matches(':'))
}

/// The file after a `WRITE path` line at `start`: a fenced block, or, unfenced, every line
/// to the end of the reply (line numbers copied from `READ` output removed).
fn write_block(lines: &[&str], start: usize, path: String, parsed: &mut Parsed) -> usize {
    let Some(first) = (start + 1..lines.len()).find(|&j| !lines[j].trim().is_empty()) else {
        parsed.problems.push(format!(
            "WRITE {path} is not followed by the file's content: write the whole file in a ``` fence right after it, without line numbers"
        ));
        return lines.len();
    };
    if is_fence(lines[first]) {
        let close = (first + 1..lines.len())
            .find(|&j| lines[j].trim() == "```" || lines[j].trim() == "~~~");
        let end = close.unwrap_or(lines.len());
        parsed.actions.push(Action::WriteFile {
            path,
            content: strip_line_numbers(&lines[first + 1..end]),
        });
        return end + 1;
    }
    parsed.actions.push(Action::WriteFile {
        path,
        content: strip_line_numbers(&lines[first..]),
    });
    lines.len()
}

/// One command line: `READ path [a-b]`, `LIST [glob]`, `FIND regex`, `OUTLINE [path]`,
/// `CHECKS`, `DONE summary`, `DELETE path`, or the tool names in snake_case.
fn command(line: &str) -> Option<Action> {
    let t = line
        .trim()
        .trim_start_matches(['-', '*', '>', ' '])
        .trim_start_matches("Action:")
        .trim()
        .trim_matches('`')
        .trim();
    let (word, rest) = match t.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (t, ""),
    };
    let (word, rest) = match word.split_once('(') {
        // read_file("src/app.py")
        Some((w, inner)) => (w, format!("{inner} {rest}")),
        None => (word, rest.to_string()),
    };
    let rest = rest
        .trim()
        .trim_end_matches(')')
        .trim()
        .trim_matches(['"', '\'', '`'])
        .trim()
        .to_string();
    let arg = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Some(match word {
        "READ" | "read_file" => read_command(&rest)?,
        "LIST" | "list_files" => Action::ListFiles { glob: arg(&rest) },
        "FIND" | "GREP" => Action::Search {
            pattern: arg(&rest)?,
        },
        "OUTLINE" => Action::Outline { path: arg(&rest) },
        "CHECKS" | "TEST" | "run_checks" if rest.is_empty() || word == "CHECKS" => {
            Action::RunChecks
        }
        "DONE" | "FINISH" => Action::Finish { summary: rest },
        "DELETE" => Action::Delete {
            path: path_line(&rest)?,
        },
        _ => return None,
    })
}

fn read_command(rest: &str) -> Option<Action> {
    let mut words = rest.split_whitespace();
    let path = path_line(words.next()?)?;
    let range = words.collect::<Vec<_>>().join("");
    let range = range.trim_start_matches("lines").trim_start_matches(':');
    let (from, to) = match range.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok(), b.trim().parse().ok()),
        None => (range.trim().parse().ok(), None),
    };
    Some(Action::ReadFile { path, from, to })
}

/// `<tool_call>{"name": "read_file", "arguments": {"path": "src/app.py"}}</tool_call>`, as
/// Qwen models write when they have seen tools, and bare lines holding such an object.
fn tool_call_objects(text: &str, parsed: &mut Parsed) {
    let mut rest = text;
    while let Some(start) = rest.find("<tool_call>") {
        let after = &rest[start + "<tool_call>".len()..];
        let end = after.find("</tool_call>").unwrap_or(after.len());
        tool_call_json(after[..end].trim(), parsed);
        rest = &after[end..];
    }
}

fn tool_call_json(json: &str, parsed: &mut Parsed) {
    let value: serde_json::Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            parsed
                .problems
                .push(format!("a <tool_call> is not valid JSON: {e}"));
            return;
        }
    };
    let name = value.get("name").and_then(|n| n.as_str()).unwrap_or("");
    let arguments = value
        .get("arguments")
        .map(|a| match a {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "{}".into());
    match Action::from_tool_call(name, &arguments) {
        Ok(action) => parsed.actions.push(action),
        Err(e) => parsed.problems.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(path: &str, old: &str, new: &str) -> Action {
        Action::Edit {
            path: path.into(),
            old: old.into(),
            new: new.into(),
        }
    }

    #[test]
    fn commands_one_per_line() {
        let parsed = parse("Let me look first.\nREAD src/app.py 10-40\nLIST tests/*.py\nFIND def main\nOUTLINE\nCHECKS\n");
        assert_eq!(
            parsed.actions,
            vec![
                Action::ReadFile {
                    path: "src/app.py".into(),
                    from: Some(10),
                    to: Some(40)
                },
                Action::ListFiles {
                    glob: Some("tests/*.py".into())
                },
                Action::Search {
                    pattern: "def main".into()
                },
                Action::Outline { path: None },
                Action::RunChecks,
            ]
        );
    }

    #[test]
    fn tool_names_and_call_syntax() {
        let parsed =
            parse("read_file(\"src/app.py\")\n- `read_file tests/test_smoke.py`\nDONE all good\n");
        assert_eq!(parsed.actions.len(), 3);
        assert_eq!(
            parsed.actions[2],
            Action::Finish {
                summary: "all good".into()
            }
        );
    }

    #[test]
    fn a_plain_search_replace_block() {
        let parsed = parse("src/app.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n");
        assert_eq!(parsed.actions, vec![edit("src/app.py", "old\n", "new\n")]);
    }

    #[test]
    fn language_fences_inside_the_sections_are_dropped() {
        let parsed = parse("src/app.py\n<<<<<<< SEARCH\n```python\nold\n```\n=======\n```python\nnew\n```\n>>>>>>> REPLACE\n");
        assert_eq!(parsed.actions, vec![edit("src/app.py", "old\n", "new\n")]);
    }

    #[test]
    fn a_fence_around_the_whole_block_with_the_path_in_it() {
        let parsed = parse(
            "```python src/app.py\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n",
        );
        assert_eq!(parsed.actions, vec![edit("src/app.py", "old\n", "new\n")]);
        let parsed = parse(
            "src/app.py\n```python\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n```\n",
        );
        assert_eq!(parsed.actions, vec![edit("src/app.py", "old\n", "new\n")]);
    }

    #[test]
    fn a_missing_replace_marker_at_the_end_is_accepted() {
        let parsed = parse("src/app.py\n<<<<<<< SEARCH\nold\n=======\nnew\n```\n");
        assert_eq!(parsed.actions, vec![edit("src/app.py", "old\n", "new\n")]);
    }

    #[test]
    fn a_missing_replace_marker_before_another_block_is_a_precise_problem() {
        let parsed = parse("a.py\n<<<<<<< SEARCH\nx\n=======\ny\nb.py\n<<<<<<< SEARCH\np\n=======\nq\n>>>>>>> REPLACE\n");
        assert_eq!(
            parsed.problems,
            vec!["the SEARCH block for a.py has no >>>>>>> REPLACE line before the next block"]
        );
        assert_eq!(parsed.actions, vec![edit("b.py", "p\n", "q\n")]);
    }

    #[test]
    fn a_whole_file_answer_is_a_write() {
        let reply = "Here is the updated file:\n\nsrc/app.py\n```python\nimport sys\n\ndef main():\n    return 0\n```\n";
        assert_eq!(
            parse(reply).actions,
            vec![Action::WriteFile {
                path: "src/app.py".into(),
                content: "import sys\n\ndef main():\n    return 0\n".into()
            }]
        );
        // The "### path" layout of a file dump, and a path in the info string.
        for reply in [
            "### src/app.py\n```\nx = 1\n```\n",
            "```python src/app.py\nx = 1\n```\n",
            "**`src/app.py`**:\n```python\nx = 1\n```\n",
        ] {
            assert_eq!(
                parse(reply).actions,
                vec![Action::WriteFile {
                    path: "src/app.py".into(),
                    content: "x = 1\n".into()
                }],
                "{reply}"
            );
        }
    }

    #[test]
    fn line_numbers_copied_from_read_output_are_removed() {
        let reply = "src/app.py\n```\n   1 | import sys\n   2 | \n   3 | x = 1\n```\n";
        assert_eq!(
            parse(reply).actions,
            vec![Action::WriteFile {
                path: "src/app.py".into(),
                content: "import sys\n\nx = 1\n".into()
            }]
        );
    }

    #[test]
    fn a_code_quote_without_a_path_is_prose() {
        let parsed =
            parse("The function is:\n```python\ndef count(): pass\n```\nREAD src/app.py\n");
        assert_eq!(
            parsed.actions,
            vec![Action::ReadFile {
                path: "src/app.py".into(),
                from: None,
                to: None
            }]
        );
    }

    #[test]
    fn qwen_tool_call_objects() {
        let parsed = parse("<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"src/app.py\"}}\n</tool_call>");
        assert_eq!(
            parsed.actions,
            vec![Action::ReadFile {
                path: "src/app.py".into(),
                from: None,
                to: None
            }]
        );
        let parsed = parse("<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>");
        assert_eq!(parsed.problems, vec!["there is no tool called rm_rf"]);
    }

    #[test]
    fn write_then_the_file_fenced_or_not() {
        let fenced = parse("WRITE src/app.py\n```python\nx = 1\n```\nCHECKS\n");
        assert_eq!(
            fenced.actions,
            vec![
                Action::WriteFile {
                    path: "src/app.py".into(),
                    content: "x = 1\n".into()
                },
                Action::RunChecks
            ]
        );
        let bare = parse("WRITE src/app.py\n   1 | import sys\n   2 | x = 1\n");
        assert_eq!(
            bare.actions,
            vec![Action::WriteFile {
                path: "src/app.py".into(),
                content: "import sys\nx = 1\n".into()
            }]
        );
        assert_eq!(
            parse("WRITE src/app.py").problems,
            vec!["WRITE src/app.py is not followed by the file's content: write the whole file in a ``` fence right after it, without line numbers"]
        );
    }

    #[test]
    fn prose_is_not_a_command() {
        let parsed =
            parse("I read the file and will list what to do. Done soon.\nThe test passes.\n");
        assert!(parsed.actions.is_empty(), "{:?}", parsed.actions);
    }
}
