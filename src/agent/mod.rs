//! The Developer as an agent: it explores the clone with tools, edits in steps, runs the
//! checks, and finishes only when they pass and (when tests are asked for) a new test
//! fails on the base and passes with the change. One conversation per run, append-only so
//! the model server can reuse its cache of the prompt prefix; old tool output is elided to
//! a one-line note when the window fills.
//!
//! - Native tool calls when the model has them (Ollama's `/api/show` capabilities), else the
//!   text protocol of [`protocol`] (chosen by `LLM_DEVELOPER_EDIT_FORMAT`, recorded).
//! - Each edit is a checkpoint: a file that no longer parses (Python, JSON, JavaScript,
//!   shell) is put back at once and the model is told why.
//! - Budgets: replies, tokens, wall time, the diff budget; finishing claims that fail are
//!   bounded by `DEV_MAX_ATTEMPTS`. A reply identical to the one before gets a different
//!   answer, and a third is the end.

pub mod outline;
pub mod proof;
pub mod protocol;
pub mod repomap;
pub mod tools;

use std::time::Instant;

use serde::Serialize;

use crate::llm::prompt::{estimate_messages, fence};
use crate::llm::{Llm, LlmError, Message, Role, Speaker, ToolCall};
use crate::roles::RepoChecks;
use crate::team::task::Task;
use crate::team::team_config::TeamConfig;
use crate::workspace::checks::{Baseline, CheckRun};
use crate::workspace::edits::{self, DiffBudget};
use crate::workspace::Clone;
use tools::{Action, Observation, Workbench};

/// How the Developer's model acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EditFormat {
    /// Native tools when the model has them, else the text protocol with SEARCH/REPLACE.
    Auto,
    /// Native tool calls (the model must support them).
    Tools,
    /// The text protocol, edits as SEARCH/REPLACE blocks (whole files accepted too).
    Diff,
    /// The text protocol, edits as whole files (SEARCH/REPLACE accepted too).
    Whole,
}

impl EditFormat {
    /// Parses a setting's value.
    pub fn parse(value: &str) -> Option<EditFormat> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(EditFormat::Auto),
            "tools" => Some(EditFormat::Tools),
            "diff" => Some(EditFormat::Diff),
            "whole" => Some(EditFormat::Whole),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EditFormat::Auto => "auto",
            EditFormat::Tools => "tools",
            EditFormat::Diff => "diff",
            EditFormat::Whole => "whole",
        }
    }
}

/// The limits of one run.
#[derive(Debug, Clone)]
pub struct Budget {
    pub max_steps: u32,
    pub max_tokens: u64,
    pub max_wall: std::time::Duration,
    /// Finishing claims that fail (checks, proof) before the task is blocked.
    pub max_finishes: u32,
    pub diff: DiffBudget,
}

/// What the run did, for the PR, `/stats/models` and the benchmark.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AgentStats {
    /// The format used: `tools`, `diff` or `whole`.
    pub edit_format: String,
    pub steps: u32,
    /// Replies that held at least one usable action.
    pub well_formed: u32,
    pub malformed: u32,
    pub edits_applied: u32,
    pub edits_refused: u32,
    /// Edits put back because the file no longer parsed.
    pub edits_undone: u32,
    pub check_runs: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Old tool output elided to fit the window.
    pub elided: u32,
}

/// A finished change: the checks that passed and the proof, if one was asked for.
#[derive(Debug)]
pub struct Finished {
    pub checks: CheckRun,
    pub proof: Option<proof::Proof>,
    pub summary: String,
}

/// Why the run stopped without a change to propose, with the full last failure.
#[derive(Debug)]
pub struct Stopped {
    pub reason: String,
    pub checks: Option<CheckRun>,
}

/// Everything one run works with.
pub struct Agent<'a> {
    pub llm: &'a dyn Llm,
    pub clone: &'a Clone,
    pub task: &'a Task,
    pub config: &'a TeamConfig,
    pub checks: &'a RepoChecks,
    pub baseline: Baseline,
    pub budget: Budget,
    pub format: EditFormat,
    /// Tests are required: the change must carry a fail-to-pass test.
    pub require_proof: bool,
    /// Feedback on an earlier round (review, CI, a `/gaffer fix` comment): an iteration.
    pub feedback: Option<String>,
}

const SYSTEM_TEXT: &str = include_str!("../llm/prompts/developer.txt");
const SYSTEM_TOOLS: &str = include_str!("../llm/prompts/developer_tools.txt");
const WHOLE_NOTE: &str = "Prefer whole files: for a new or small file, give its path on a line and then the complete file in a ``` fence.";
/// Characters of one tool result kept in the conversation.
const OBSERVATION_MAX_CHARS: usize = 6_000;

impl Agent<'_> {
    /// Runs the loop until the model finishes with passing checks (and proof), or a budget
    /// ends it. The clone keeps the work: the caller commits it or throws it away.
    pub async fn run(&self, stats: &mut AgentStats) -> Result<Finished, Stopped> {
        let started = Instant::now();
        let native = match self.format {
            EditFormat::Tools => true,
            EditFormat::Auto => self.llm.supports_tools(Role::Developer).await,
            EditFormat::Diff | EditFormat::Whole => false,
        };
        stats.edit_format = if native {
            "tools".into()
        } else if self.format == EditFormat::Whole {
            "whole".into()
        } else {
            "diff".into()
        };
        crate::engine::transcript::progress(format!(
            "developer: working as an agent ({} format)",
            stats.edit_format
        ))
        .await;
        let mut guarded = self.config.clone();
        guarded
            .protected_paths
            .push(format!("{}/", self.config.tasks_dir));
        let files = self.clone.files().await;
        let budget_tokens = self.llm.prompt_budget(Role::Developer);
        let map = repomap::build(
            self.clone,
            self.task,
            self.config,
            &files,
            budget_tokens / 3,
        );
        // The opening without the files shown whole, for when the window is full.
        let small_opening = self.opening(&repomap::build(
            self.clone,
            self.task,
            self.config,
            &files,
            0,
        ));
        let mut messages = vec![
            Message::system(self.system_prompt(native)),
            Message::user(self.opening(&map)),
        ];
        let mut bench = Workbench {
            dir: self.clone.dir(),
            guarded: &guarded,
            files,
        };
        let mut last_reply = String::new();
        let mut reply_before_last = String::new();
        let mut repeats = 0;
        let mut idle_steps = 0;
        let mut finishes = 0;
        let mut last_checks: Option<CheckRun> = None;
        let mut last_problem = String::from("the model never finished");
        let mut dirty_since_checks = true;
        let tool_specs = tools::specs();
        loop {
            if stats.steps >= self.budget.max_steps {
                return Err(self.stop(
                    format!("the step budget ran out ({} model replies, DEV_MAX_STEPS); last problem: {last_problem}", self.budget.max_steps),
                    last_checks,
                ));
            }
            if stats.prompt_tokens + stats.completion_tokens >= self.budget.max_tokens {
                return Err(self.stop(
                    format!("the token budget ran out ({} tokens, DEV_MAX_TOKENS); last problem: {last_problem}", self.budget.max_tokens),
                    last_checks,
                ));
            }
            if started.elapsed() >= self.budget.max_wall {
                return Err(self.stop(
                    format!("the time budget ran out ({} min, DEV_MAX_MINUTES); last problem: {last_problem}", self.budget.max_wall.as_secs() / 60),
                    last_checks,
                ));
            }
            stats.elided += fit(&mut messages, budget_tokens, &small_opening);
            stats.steps += 1;
            let reply = if native {
                self.llm
                    .chat_with_tools(Role::Developer, &messages, &tool_specs)
                    .await
            } else {
                self.llm
                    .chat_until(Role::Developer, &messages, &protocol::stop_sequences())
                    .await
            };
            let reply = match reply {
                Ok(reply) => reply,
                // A rambling answer cut off after complete actions: keep those (the last,
                // incomplete one is dropped by the parser's own rules).
                Err(LlmError::CutOff {
                    ref partial,
                    tokens,
                    ..
                }) if !native && !salvage(partial).is_empty() => crate::llm::Reply {
                    text: salvage(partial),
                    usage: crate::llm::Usage {
                        completion_tokens: tokens,
                        ..crate::llm::Usage::default()
                    },
                    tool_calls: Vec::new(),
                },
                Err(e @ (LlmError::Empty { .. } | LlmError::CutOff { .. })) => {
                    stats.malformed += 1;
                    last_problem = e.to_string();
                    messages.push(Message::user(format!(
                        "Your last reply could not be used: {e}. Keep replies short: one or a few actions, small edits."
                    )));
                    continue;
                }
                Err(e) => return Err(self.stop(e.to_string(), last_checks)),
            };
            stats.prompt_tokens += reply.usage.prompt_tokens;
            stats.completion_tokens += reply.usage.completion_tokens;
            let (actions, problems) = if native {
                native_actions(&reply.tool_calls, &reply.text)
            } else {
                let parsed = protocol::parse(&reply.text);
                (parsed.actions, parsed.problems)
            };
            messages.push(if native {
                Message::assistant_calls(reply.text.clone(), reply.tool_calls.clone())
            } else {
                Message::assistant(reply.text.clone())
            });
            let signature = format!("{}{:?}", reply.text, reply.tool_calls);
            // The same reply again, or a two-step cycle (A, B, A, B), gets nowhere.
            if signature == last_reply || signature == reply_before_last {
                repeats += 1;
            } else {
                repeats = 0;
            }
            reply_before_last = std::mem::replace(&mut last_reply, signature);
            if repeats >= 2 {
                if actions.is_empty() {
                    stats.malformed += 1;
                }
                return Err(self.stop(
                    format!("the model kept repeating itself (the same reply, or the same two in turn, three times); last problem: {last_problem}"),
                    last_checks,
                ));
            }
            if actions.is_empty() {
                stats.malformed += 1;
                last_problem = if problems.is_empty() {
                    "the reply held no action".to_string()
                } else {
                    problems.join("; ")
                };
                let mut note = format!(
                    "Your reply held no action I could run: {last_problem}.\n{}",
                    self.reminder(native)
                );
                if repeats == 1 {
                    note.push_str("\nThat was the same reply as before: do something different.");
                }
                messages.push(Message::user(note));
                continue;
            }
            stats.well_formed += 1;
            let mut results: Vec<(String, String)> = Vec::new();
            let mut finish: Option<String> = None;
            let mut changed_now = false;
            for problem in &problems {
                results.push(("not understood".into(), problem.clone()));
            }
            for action in &actions {
                match action {
                    Action::Finish { summary } => {
                        finish = Some(summary.clone());
                    }
                    Action::RunChecks => {
                        let (run, text) = self.run_checks(stats).await;
                        if !run.passed {
                            last_problem = format!("the checks fail: {}", run.comparison.reason);
                        }
                        dirty_since_checks = false;
                        last_checks = Some(run);
                        results.push((action.label(), text));
                    }
                    _ => {
                        let observation = self.apply(&bench, action, stats).await;
                        if observation.changed.is_some() {
                            dirty_since_checks = true;
                            changed_now = true;
                            bench.files = self.current_files().await;
                        }
                        if !observation.ok {
                            last_problem =
                                format!("{}: {}", action.label(), first_line(&observation.text));
                        }
                        results.push((action.label(), observation.text));
                    }
                }
            }
            // Edits without a word about finishing: check them at once, and finish when
            // they are enough (small models rarely say DONE; this also saves a step).
            let edited = changed_now && dirty_since_checks;
            let finish = match finish {
                Some(summary) => Some(summary),
                None if edited && !actions.contains(&Action::RunChecks) => {
                    match self.try_finish(stats, true, &mut last_checks).await {
                        Ok(mut finished) => {
                            finished.summary = reply_summary(&reply.text);
                            return Ok(finished);
                        }
                        Err(why) => {
                            dirty_since_checks = false;
                            last_problem = why.clone();
                            results.push((
                                "checks after your edits".into(),
                                format!("Not done yet: {why}"),
                            ));
                        }
                    }
                    None
                }
                None => None,
            };
            if let Some(summary) = finish {
                match self
                    .try_finish(stats, dirty_since_checks, &mut last_checks)
                    .await
                {
                    Ok(mut finished) => {
                        finished.summary = summary;
                        return Ok(finished);
                    }
                    Err(why) => {
                        finishes += 1;
                        dirty_since_checks = false;
                        last_problem = why.clone();
                        if finishes >= self.budget.max_finishes {
                            return Err(self.stop(
                                format!("the change was still not done after {finishes} attempts to finish (DEV_MAX_ATTEMPTS): {why}"),
                                last_checks,
                            ));
                        }
                        results.push((
                            "finish".into(),
                            format!("Not done yet: {why}\nFix that, then finish again."),
                        ));
                    }
                }
            }
            if changed_now {
                idle_steps = 0;
            } else {
                idle_steps += 1;
            }
            if repeats == 1 {
                results.push((
                    "note".into(),
                    "That was the same reply as before, and it got the same result: try something different.".into(),
                ));
            }
            if idle_steps >= 2 {
                results.push(("note".into(), self.nudge(native)));
            }
            self.answer(&mut messages, native, &reply.tool_calls, results);
        }
    }

    fn system_prompt(&self, native: bool) -> String {
        let base = if native { SYSTEM_TOOLS } else { SYSTEM_TEXT };
        let mut text = base.trim().to_string();
        if self.format == EditFormat::Whole && !native {
            text.push_str("\n\n");
            text.push_str(WHOLE_NOTE);
        }
        text.push_str("\n\n");
        text.push_str(crate::llm::prompt::UNTRUSTED_PREAMBLE.trim());
        text
    }

    /// The first user message: the task, the checks, the proof rule, and the repo map.
    fn opening(&self, map: &str) -> String {
        let task = self.task;
        let acceptance: Vec<String> = task.acceptance.iter().map(|a| format!("- {a}")).collect();
        let task_text = format!(
            "{}: {}\n\nAcceptance criteria:\n{}\n\n{}",
            task.id,
            task.title,
            acceptance.join("\n"),
            task.body
        );
        let coverage = match self.checks.coverage_min {
            Some(min) if self.checks.plan.measured_test.is_some() => format!(
                "\nline coverage must be at least {}: test the code you add",
                crate::workspace::checks::coverage::fmt_percent(min)
            ),
            _ => String::new(),
        };
        let settings = format!(
            "checks command: {}{coverage}\nprotected paths (do not edit): {}, {}/",
            self.checks.plan.test,
            self.config.protected_paths.join(", "),
            self.config.tasks_dir
        );
        let proof = if self.require_proof {
            "You are done only when the checks pass AND you added or changed a test that fails on the current code and passes with your change."
        } else {
            "You are done when the checks pass."
        };
        let mut text = format!(
            "{}\n\n{}\n\n{proof}\n\n{}",
            fence("task", &task_text),
            fence("repository settings", &settings),
            fence("repository map", map)
        );
        if let Some(feedback) = &self.feedback {
            text.push_str("\n\nThe work so far is already in the files. What to fix:\n");
            text.push_str(&fence("feedback", feedback));
        }
        text.push_str("\n\nThe most relevant files are shown above in full. Read another only if you need it; otherwise make the change now, with a test.");
        text
    }

    /// Said after steps that changed nothing: the model has seen enough, it must write.
    fn nudge(&self, native: bool) -> String {
        let how = if native {
            "call edit or write_file now"
        } else {
            "write the edit blocks (or the whole new file after its path line) now"
        };
        format!(
            "You have looked around without changing any file. You have what you need: {how}, for the code and for a test file under tests/. Then the checks run by themselves."
        )
    }

    fn reminder(&self, native: bool) -> &'static str {
        if native {
            "Call one of the tools (read_file, search, edit, write_file, run_checks, finish, ...)."
        } else {
            "Write actions such as `READ path`, `FIND regex`, an edit block (path line, <<<<<<< SEARCH, old lines, =======, new lines, >>>>>>> REPLACE), a path line followed by a whole file in a ``` fence, `CHECKS`, or `DONE summary`."
        }
    }

    /// Runs one file action; an edit that leaves the file unparsable is put back.
    async fn apply(
        &self,
        bench: &Workbench<'_>,
        action: &Action,
        stats: &mut AgentStats,
    ) -> Observation {
        let before = action.edits().map(|p| bench.read(p));
        let mut observation = bench.execute(action);
        let Some(path) = observation.changed.clone() else {
            if action.edits().is_some() {
                stats.edits_refused += 1;
            }
            return observation;
        };
        let broken = edits::syntax_errors(self.clone.dir(), std::slice::from_ref(&path)).await;
        if !broken.is_empty() {
            stats.edits_undone += 1;
            self.put_back(&path, before.flatten());
            observation.ok = false;
            observation.changed = None;
            observation.text = format!(
                "{path}: the edit was undone because the file no longer parses: {}",
                broken.join("; ")
            );
            return observation;
        }
        match self.clone.diff_size().await {
            Ok((files, added)) => {
                if let Err(why) = edits::check_budget(files, added, self.budget.diff) {
                    stats.edits_undone += 1;
                    self.put_back(&path, before.flatten());
                    observation.ok = false;
                    observation.changed = None;
                    observation.text =
                        format!("{path}: the edit was undone: {why}. Make a smaller change.");
                    return observation;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not measure the diff"),
        }
        stats.edits_applied += 1;
        observation
    }

    /// Restores a file's earlier content (or removes a file that did not exist).
    fn put_back(&self, path: &str, before: Option<String>) {
        let Ok(checked) = crate::safety::paths::RepoPath::parse(path) else {
            return;
        };
        let dir = self.clone.dir();
        let _ = match before {
            Some(text) => crate::safety::paths::write(dir, &checked, &text),
            None => crate::safety::paths::remove(dir, &checked),
        };
    }

    async fn current_files(&self) -> Vec<String> {
        let _ = self.clone.uncommitted_changes().await;
        self.clone.files().await
    }

    /// The checks on the work so far; the tree is put back afterwards so only the
    /// model's change stays.
    async fn run_checks(&self, stats: &mut AgentStats) -> (CheckRun, String) {
        stats.check_runs += 1;
        let snapshot = self.clone.snapshot().await;
        let run = self
            .checks
            .run(self.clone, Some(self.baseline.clone()))
            .await;
        if let Ok(snapshot) = snapshot {
            let _ = self.clone.restore(&snapshot).await;
        }
        let text = if run.passed {
            format!(
                "The checks (`{}`) pass: {}",
                run.command, run.comparison.reason
            )
        } else {
            format!("The {}", checks_failure(&run))
        };
        (run, text)
    }

    /// A claim to be done: the checks must pass on the current work, the change must not
    /// be empty, and with tests required the proof must hold.
    async fn try_finish(
        &self,
        stats: &mut AgentStats,
        dirty: bool,
        last_checks: &mut Option<CheckRun>,
    ) -> Result<Finished, String> {
        let changed: Vec<String> = self
            .clone
            .uncommitted_changes()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|f| !f.starts_with(&format!("{}/", self.config.tasks_dir)))
            .collect();
        if changed.is_empty() && self.feedback.is_none() {
            return Err("you have not changed any file yet".into());
        }
        if dirty || last_checks.is_none() {
            let (run, _) = self.run_checks(stats).await;
            *last_checks = Some(run);
        }
        let run = last_checks.clone().expect("set above");
        // `checks.require_tests: false`: the checks inform, they do not block.
        if !run.passed && self.config.require_tests {
            return Err(format!("the {}", checks_failure(&run)));
        }
        if !self.require_proof {
            return Ok(Finished {
                checks: run,
                proof: None,
                summary: String::new(),
            });
        }
        let proof = proof::prove(self.clone, self.checks, &self.baseline, &run, &changed).await?;
        if !proof.proven {
            return Err(format!("no proof that the change works: {}", proof.summary));
        }
        Ok(Finished {
            checks: run,
            proof: Some(proof),
            summary: String::new(),
        })
    }

    /// Sends the results back: one tool message per native call, or one user message.
    fn answer(
        &self,
        messages: &mut Vec<Message>,
        native: bool,
        calls: &[ToolCall],
        results: Vec<(String, String)>,
    ) {
        // One result gets at most a quarter of the window (about 3 characters a token).
        let max = (self.llm.prompt_budget(Role::Developer) as usize * 3 / 4)
            .clamp(800, OBSERVATION_MAX_CHARS);
        if native && !calls.is_empty() {
            let mut results = results.into_iter();
            for _ in calls {
                let (label, text) = results
                    .next()
                    .unwrap_or(("note".into(), "no result".into()));
                messages.push(Message::tool(fence(&label, &bounded(&text, max))));
            }
            let rest: Vec<String> = results.map(|(l, t)| format!("{l}: {t}")).collect();
            if !rest.is_empty() {
                messages.push(Message::user(rest.join("\n")));
            }
            return;
        }
        let body: Vec<String> = results
            .iter()
            .enumerate()
            .map(|(i, (label, text))| {
                format!("[{}] {label}\n{}", i + 1, fence(label, &bounded(text, max)))
            })
            .collect();
        messages.push(Message::user(format!(
            "Results:\n{}\n\nNext actions?",
            body.join("\n\n")
        )));
    }

    fn stop(&self, reason: String, checks: Option<CheckRun>) -> Stopped {
        Stopped { reason, checks }
    }
}

/// The actions of native tool calls (or, when the model wrote its calls as text, the text
/// protocol's reading of it).
fn native_actions(calls: &[ToolCall], text: &str) -> (Vec<Action>, Vec<String>) {
    if calls.is_empty() {
        let parsed = protocol::parse(text);
        return (parsed.actions, parsed.problems);
    }
    let mut actions = Vec::new();
    let mut problems = Vec::new();
    for call in calls {
        match Action::from_tool_call(&call.name, &call.arguments) {
            Ok(action) => actions.push(action),
            Err(e) => problems.push(e),
        }
    }
    (actions, problems)
}

/// "checks (`cmd`) fail: why" and the output's last part, for the model and the PR.
fn checks_failure(run: &CheckRun) -> String {
    format!(
        "checks (`{}`) fail: {}\n{}",
        run.command,
        run.comparison.reason,
        crate::workspace::checks::tail(&run.output_tail, 3000)
    )
}

/// The complete part of a cut-off reply: up to the end of its last complete edit block
/// (a `>>>>>>> REPLACE` line) or closing fence; empty when there is none.
fn salvage(partial: &str) -> String {
    let lines: Vec<&str> = partial.lines().collect();
    let last_complete = lines.iter().rposition(|l| {
        let t = l.trim();
        t.starts_with(">>>>>>>") || t == "```"
    });
    // Without a complete block, only the command lines before any fence or block (a
    // model that wrote `READ x` and then invented its output).
    let end = last_complete.map(|e| e + 1).unwrap_or_else(|| {
        lines
            .iter()
            .position(|l| {
                let t = l.trim_start();
                t.starts_with("```") || t.starts_with("<<<<<<<") || t.starts_with("WRITE")
            })
            .unwrap_or(lines.len())
    });
    let kept = lines[..end].join("\n");
    let parsed = protocol::parse(&kept);
    if parsed.actions.is_empty() {
        return String::new();
    }
    if last_complete.is_none()
        && parsed
            .actions
            .iter()
            .any(|a| matches!(a, Action::WriteFile { .. }))
    {
        // A whole file written without its closing fence was cut: never keep half a file.
        return String::new();
    }
    kept
}

/// The prose of a reply (what the model said it did), without its edit blocks and fences.
fn reply_summary(text: &str) -> String {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") || t.starts_with("<<<<<<<") {
            in_block = !in_block || t.starts_with("<<<<<<<");
            continue;
        }
        if t.starts_with(">>>>>>>") {
            in_block = false;
            continue;
        }
        if !in_block && !t.is_empty() && protocol::path_line(t).is_none() {
            out.push(t);
        }
    }
    out.join(" ").chars().take(500).collect()
}

fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}\n[... cut: ask for a narrower range]")
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Makes the conversation fit `budget` tokens: first the oldest tool results (user and tool
/// messages after the opening) become a one-line note, and long old replies are cut; if
/// that is not enough, the opening loses the files it showed whole (`small_opening`), and
/// old replies are cut shorter. The last message is never touched. Returns how many
/// messages were shortened.
fn fit(messages: &mut [Message], budget: u64, small_opening: &str) -> u32 {
    let mut elided = 0;
    let last = messages.len().saturating_sub(1);
    for i in 2..last {
        if estimate_messages(messages) <= budget {
            return elided;
        }
        let m = &mut messages[i];
        if matches!(m.speaker, Speaker::User | Speaker::Tool) && !m.content.starts_with("[elided") {
            let first = m
                .content
                .lines()
                .nth(1)
                .unwrap_or("")
                .chars()
                .take(80)
                .collect::<String>();
            m.content = format!(
                "[elided to save room: an earlier result ({first} ...); ask again if needed]"
            );
            elided += 1;
        } else if m.speaker == Speaker::Assistant && m.content.len() > 600 {
            let head: String = m.content.chars().take(200).collect();
            m.content =
                format!("{head}\n[... the rest of this earlier reply was elided to save room]");
            elided += 1;
        }
    }
    if estimate_messages(messages) > budget && messages.len() > 2 && last > 1 {
        messages[1].content = small_opening.to_string();
        elided += 1;
        for i in 2..last {
            if estimate_messages(messages) <= budget {
                break;
            }
            let m = &mut messages[i];
            if m.content.chars().count() > 120 {
                let head: String = m.content.chars().take(100).collect();
                m.content = format!("{head} [...]");
                elided += 1;
            }
        }
    }
    elided
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_results_are_elided_first_and_the_opening_kept() {
        let mut messages = vec![
            Message::system("s"),
            Message::user("opening"),
            Message::assistant("READ a"),
            Message::user(format!("Results:\n[1] read_file a\n{}", "x".repeat(3000))),
            Message::assistant("READ b"),
            Message::user("Results: small"),
        ];
        let elided = fit(&mut messages, 200, "small opening");
        assert_eq!(elided, 1);
        assert_eq!(messages[1].content, "opening");
        assert!(messages[3].content.starts_with("[elided"));
        assert_eq!(messages[5].content, "Results: small");
    }

    #[test]
    fn a_cut_off_reply_keeps_its_complete_edits() {
        let partial =
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n\nb.py\n<<<<<<< SEARCH\np\n===";
        assert_eq!(
            salvage(partial),
            "a.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE"
        );
        assert_eq!(salvage("I think that the best way to do this is"), "");
        assert_eq!(
            salvage("READ src/app.py\n   1 | import sys\n   2 | invented"),
            "READ src/app.py\n   1 | import sys\n   2 | invented",
            "the command stands; the invented lines are no action"
        );
        assert_eq!(
            salvage("WRITE src/app.py\nimport sys\nx ="),
            "",
            "half a file is never kept"
        );
        assert_eq!(
            salvage("some prose\n```\n"),
            "",
            "a fence without a path is no action"
        );
    }

    #[test]
    fn a_full_window_drops_the_shown_files_from_the_opening() {
        let mut messages = vec![
            Message::system("s"),
            Message::user(format!("task and map and files {}", "f".repeat(3000))),
            Message::assistant("x".repeat(700)),
            Message::user("Results: more"),
        ];
        let elided = fit(&mut messages, 300, "task and map");
        assert_eq!(messages[1].content, "task and map");
        assert!(estimate_messages(&messages) <= 300, "{messages:?}");
        assert!(elided >= 2);
        assert_eq!(
            messages[3].content, "Results: more",
            "the last message is kept"
        );
    }

    #[test]
    fn edit_formats_parse() {
        assert_eq!(EditFormat::parse("TOOLS"), Some(EditFormat::Tools));
        assert_eq!(EditFormat::parse("whole"), Some(EditFormat::Whole));
        assert_eq!(EditFormat::parse("udiff"), None);
    }
}
