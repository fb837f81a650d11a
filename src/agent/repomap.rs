//! The repo map the Developer starts from: the task's most relevant files first, each with
//! its size and outline, then the rest of the tree by name; the most relevant small code
//! files are shown whole (numbered as `read_file` shows them) while they fit a share of the
//! window. Files the task names, files whose path or text carries the task's words, and
//! code over prose rank higher ([`super::outline::relevance`]).

use super::outline;
use super::tools::READ_MAX_LINES;
use crate::llm::prompt::estimate_tokens;
use crate::team::task::Task;
use crate::team::team_config::TeamConfig;
use crate::workspace::Clone;

/// Files listed with their outline at most (the rest are names only).
const OUTLINED: usize = 40;
/// Files shown whole at most.
const SHOWN: usize = 3;

/// The map as text, within about `budget` tokens.
pub fn build(
    clone: &Clone,
    task: &Task,
    config: &TeamConfig,
    files: &[String],
    budget: u64,
) -> String {
    let task_text = format!(
        "{} {} {} {}",
        task.title,
        task.acceptance.join(" "),
        task.body,
        task.id
    );
    let words = outline::task_words(&task_text);
    let tasks_prefix = format!("{}/", config.tasks_dir);
    let mut ranked: Vec<(u32, &String, String)> = files
        .iter()
        .filter(|f| !f.starts_with(&tasks_prefix))
        .map(|f| {
            let text = clone.read(f).unwrap_or_default();
            (outline::relevance(f, &text, &words, &task_text), f, text)
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut out = String::from("Files, most relevant to the task first (path, lines, outline):\n");
    for (_, path, text) in ranked.iter().take(OUTLINED) {
        let symbols = outline::symbols(path, text);
        let lines = text.lines().count();
        if symbols.is_empty() {
            out.push_str(&format!("{path} ({lines} lines)\n"));
        } else {
            out.push_str(&format!(
                "{path} ({lines} lines): {}\n",
                outline::outline_line(&symbols)
            ));
        }
    }
    if ranked.len() > OUTLINED {
        let rest: Vec<&str> = ranked[OUTLINED..]
            .iter()
            .map(|(_, p, _)| p.as_str())
            .collect();
        let listed = rest
            .iter()
            .take(300)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!("Other files: {listed}"));
        if rest.len() > 300 {
            out.push_str(&format!(" ... and {} more", rest.len() - 300));
        }
        out.push('\n');
    }
    let mut shown = 0;
    for (_, path, text) in &ranked {
        if shown >= SHOWN {
            break;
        }
        let lines = text.lines().count();
        if outline::symbols(path, text).is_empty() || lines > READ_MAX_LINES {
            continue;
        }
        let numbered: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{:4} | {l}", i + 1))
            .collect();
        let block = format!("\nread_file {path}\n{}\n", numbered.join("\n"));
        if estimate_tokens(&out) + estimate_tokens(&block) > budget {
            break;
        }
        out.push_str(&block);
        shown += 1;
    }
    out
}
