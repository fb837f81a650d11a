//! Outlines and the repo map: the symbols of a file (functions, classes, types, with their
//! lines) found by per-language patterns, and the repository's files ranked by how much
//! they have to do with the task's words and paths. This is what a small model starts from
//! instead of a dump of every file: it shows where things are, and the model reads what it
//! needs.
//!
//! Patterns rather than a parser: they cover the languages the checks detect (Python,
//! JavaScript/TypeScript, Rust, Go, Java/Kotlin, Ruby, C/C++ declarations roughly), cost no
//! C build, and a missed symbol only means the model reads the file instead.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

/// One symbol of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// "def", "class", "fn", ...
    pub kind: String,
    pub name: String,
    /// 1-based.
    pub line: usize,
}

fn patterns(path: &str) -> &'static [(&'static str, Regex)] {
    static PY: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static JS: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static RS: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static GO: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static JAVA: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static RB: OnceLock<Vec<(&str, Regex)>> = OnceLock::new();
    static NONE: Vec<(&str, Regex)> = Vec::new();
    let re = |s: &str| Regex::new(s).expect("outline pattern");
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "py" => PY.get_or_init(|| {
            vec![
                ("class", re(r"^\s*class\s+([A-Za-z_]\w*)")),
                ("def", re(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)")),
            ]
        }),
        "js" | "mjs" | "cjs" | "ts" | "tsx" | "jsx" => JS.get_or_init(|| {
            vec![
                ("class", re(r"^\s*(?:export\s+)?(?:default\s+)?class\s+([A-Za-z_$][\w$]*)")),
                ("function", re(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)")),
                ("const", re(r"^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=\s*(?:async\s*)?(?:\([^)]*\)|[A-Za-z_$][\w$]*)\s*=>")),
            ]
        }),
        "rs" => RS.get_or_init(|| {
            vec![
                ("fn", re(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w*)")),
                ("struct", re(r"^\s*(?:pub(?:\([^)]*\))?\s+)?struct\s+([A-Za-z_]\w*)")),
                ("enum", re(r"^\s*(?:pub(?:\([^)]*\))?\s+)?enum\s+([A-Za-z_]\w*)")),
                ("trait", re(r"^\s*(?:pub(?:\([^)]*\))?\s+)?trait\s+([A-Za-z_]\w*)")),
                ("impl", re(r"^\s*impl(?:<[^>]*>)?\s+([A-Za-z_][\w:<>, ]*)")),
            ]
        }),
        "go" => GO.get_or_init(|| {
            vec![
                ("func", re(r"^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)")),
                ("type", re(r"^type\s+([A-Za-z_]\w*)")),
            ]
        }),
        "java" | "kt" | "cs" | "scala" => JAVA.get_or_init(|| {
            vec![
                ("class", re(r"^\s*(?:(?:public|private|protected|internal|abstract|final|static|data|sealed|open)\s+)*(?:class|interface|enum|record|object)\s+([A-Za-z_]\w*)")),
                ("method", re(r"^\s*(?:(?:public|private|protected|internal|static|final|abstract|override|suspend|synchronized)\s+)+[\w<>\[\], ?]*?\s*([a-zA-Z_]\w*)\s*\(")),
                ("fun", re(r"^\s*(?:\w+\s+)*fun\s+([A-Za-z_]\w*)")),
            ]
        }),
        "rb" => RB.get_or_init(|| {
            vec![
                ("class", re(r"^\s*(?:class|module)\s+([A-Z]\w*)")),
                ("def", re(r"^\s*def\s+(?:self\.)?([a-z_]\w*[?!]?)")),
            ]
        }),
        _ => &NONE,
    }
}

/// The symbols of one file, in order.
pub fn symbols(path: &str, text: &str) -> Vec<Symbol> {
    let patterns = patterns(path);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for (kind, re) in patterns {
            if let Some(name) = re.captures(line).and_then(|c| c.get(1)) {
                out.push(Symbol {
                    kind: kind.to_string(),
                    name: name.as_str().trim().to_string(),
                    line: i + 1,
                });
                break;
            }
        }
    }
    out
}

/// A file's outline as the model sees it: `def count [18], class Counter [30]`.
pub fn outline_line(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|s| format!("{} {} [{}]", s.kind, s.name, s.line))
        .collect::<Vec<_>>()
        .join(", ")
}

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "into", "when", "then", "than", "are",
    "was", "were", "has", "have", "not", "but", "all", "any", "each", "one", "two", "more", "its",
    "it's", "must", "should", "can", "does", "add", "use", "uses", "used", "new", "same", "file",
    "files", "test", "tests", "unit", "covers", "code", "line", "lines", "print", "prints",
    "given", "like", "only", "also", "other", "out", "after", "before", "what", "which", "their",
    "them", "they", "there", "here", "how", "why", "who", "where", "task", "option", "without",
    "under",
];

/// The task's words worth looking for: identifiers and words of three letters or more,
/// lower-cased, minus common English and gaffer's own vocabulary.
pub fn task_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
        .flat_map(|w| {
            let w = w.trim_matches('-').to_ascii_lowercase();
            let mut parts: Vec<String> = w
                .split(['-', '_'])
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            parts.push(w.replace('-', "_"));
            parts
        })
        .filter(|w| w.len() >= 3 && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// How much a file has to do with the task: task words in its path count most, then
/// distinct task words in its text; source and test directories get a small lift, and
/// paths the task names outright win.
pub fn relevance(path: &str, text: &str, words: &BTreeSet<String>, task_text: &str) -> u32 {
    let lower_path = path.to_ascii_lowercase();
    let mut score = 0;
    if task_text.contains(path) {
        score += 50;
    }
    for word in words {
        if lower_path.contains(word.as_str()) {
            score += 6;
        }
    }
    let lower = text.to_ascii_lowercase();
    score += words.iter().filter(|w| lower.contains(w.as_str())).count() as u32;
    let code = !patterns(path).is_empty();
    if code {
        score += 3;
    }
    if lower_path.starts_with("src/") || lower_path.starts_with("lib/") {
        score += 2;
    }
    if is_test_path(path) && code {
        score += 2;
    }
    score
}

/// Whether a path is a test by the common conventions: `tests/`, `test/`, `spec/`,
/// `__tests__/`, `test_*.py`, `*_test.py`, `*_test.go`, `*.test.js`, `*.spec.ts`, ...
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let in_test_dir = lower.split('/').rev().skip(1).any(|d| {
        matches!(
            d,
            "tests" | "test" | "spec" | "specs" | "__tests__" | "testing"
        )
    });
    in_test_dir
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("_spec.rb")
        || name.ends_with("test.java")
        || name.ends_with("tests.java")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_symbols_with_their_lines() {
        let text = "import x\n\nclass Counter:\n    def add(self):\n        pass\n\nasync def main():\n    pass\n";
        let found = symbols("src/app.py", text);
        assert_eq!(
            outline_line(&found),
            "class Counter [3], def add [4], def main [7]"
        );
    }

    #[test]
    fn other_languages_are_outlined() {
        assert_eq!(
            outline_line(&symbols(
                "a.rs",
                "pub struct A;\nimpl A {\n    pub async fn go(&self) {}\n}\n"
            )),
            "struct A [1], impl A [2], fn go [3]"
        );
        assert_eq!(
            outline_line(&symbols(
                "a.js",
                "export function run(x) {}\nconst f = async (a) => a;\nclass B {}\n"
            )),
            "function run [1], const f [2], class B [3]"
        );
        assert_eq!(
            outline_line(&symbols("a.go", "func (s *S) Do() {}\ntype S struct{}\n")),
            "func Do [1], type S [2]"
        );
        assert!(symbols("README.md", "# def x\n").is_empty());
    }

    #[test]
    fn the_file_the_task_is_about_ranks_first() {
        let task = "Add a --json option to tally's main so counts print as JSON";
        let words = task_words(task);
        assert!(words.contains("json") && words.contains("tally") && !words.contains("the"));
        let app = relevance(
            "src/app.py",
            "def main(argv):\n    parser = build_parser()\n",
            &words,
            task,
        );
        let readme = relevance("README.md", "tally counts words\n", &words, task);
        let json_mod = relevance("src/json_out.py", "import json\n", &words, task);
        assert!(
            json_mod > readme && app > readme,
            "{json_mod} {app} {readme}"
        );
    }

    #[test]
    fn test_paths_by_convention() {
        for p in [
            "tests/test_app.py",
            "src/app_test.go",
            "web/a.test.js",
            "spec/x_spec.rb",
            "pkg/__tests__/a.js",
            "test_x.py",
        ] {
            assert!(is_test_path(p), "{p}");
        }
        for p in ["src/app.py", "docs/testing.md", "src/contest.py"] {
            assert!(!is_test_path(p), "{p}");
        }
    }
}
