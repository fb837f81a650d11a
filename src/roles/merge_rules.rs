//! When gaffer may merge a PR itself (`.llm-team.yml` `workflow.auto_merge`): a pure
//! function of facts gathered through the forge and the store, so every safety condition
//! is unit-tested without one. The answer is the first condition that fails, worded for
//! the person reading the repo's history.
//!
//! The rules (all must hold):
//! - the PR's kind is opted in (`plan`, `integration`, `code`);
//! - it is open, not a draft, into the default branch, and its author is gaffer's own
//!   login (the only fact that makes a PR "gaffer's": its text can be anyone's);
//! - a plan or integration PR changes task files only, and only its own task's file;
//! - a code PR's task says `auto_policy: auto` (on the default branch, so the PR cannot
//!   grant itself), and the Reviewer's model judged this very head: every criterion met
//!   with evidence, the checks passed, and the fail-to-pass proof passed when required;
//! - CI on the head is green (no CI at all is not green);
//! - GitHub says it is mergeable;
//! - no reviewer's latest word is "changes requested" (a later comment does not lift it,
//!   as on GitHub; an approval or a dismissal does).

use crate::forge::CiState;
use crate::team::task::TaskId;
use crate::team::team_config::AutoMerge;
use crate::team::PullKind;

/// `auto_policy` values that let gaffer merge a task's code PR.
pub const AUTO_POLICIES: &[&str] = &["auto", "auto_merge"];

/// What the Reviewer's model found on the PR's current head (see
/// [`crate::store::ReviewVerdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    pub criteria: u32,
    pub met: u32,
    pub fell_back: bool,
    pub checks_passed: bool,
    /// `None`: no proof was run.
    pub fail_to_pass: Option<bool>,
}

/// The facts only a code PR needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFacts {
    /// The task's `auto_policy` on the default branch (`None`: not set, or no task file).
    pub auto_policy: Option<String>,
    /// The verdict on the PR's current head, if the Reviewer's model judged it.
    pub verdict: Option<Judged>,
    /// Whether the task needs a fail-to-pass proof (tests).
    pub proof_required: bool,
    /// How many acceptance criteria the task lists: a verdict judging fewer is not "every
    /// criterion met".
    pub expected_criteria: u32,
}

/// One review as the merge rule sees it, in the order they were posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewFact {
    pub author: String,
    pub state: String,
}

/// Everything [`may_merge`] decides on.
#[derive(Debug, Clone)]
pub struct MergeFacts<'a> {
    pub number: u64,
    pub kind: PullKind,
    pub task: &'a TaskId,
    pub auto_merge: &'a [AutoMerge],
    /// gaffer's own login, when the forge said it.
    pub identity: Option<&'a str>,
    pub author: &'a str,
    pub open: bool,
    pub draft: bool,
    pub into_default_branch: bool,
    pub tasks_dir: &'a str,
    /// `(path, status)` of every file the PR changes.
    pub files: &'a [(String, String)],
    pub ci: CiState,
    pub mergeable: Option<bool>,
    pub reviews: &'a [ReviewFact],
    /// `Some` for a code (work) PR.
    pub code: Option<&'a CodeFacts>,
}

/// The `workflow.auto_merge` kind a PR kind falls under.
pub fn kind_of(kind: PullKind) -> AutoMerge {
    match kind {
        PullKind::Plan => AutoMerge::Plan,
        PullKind::Integrate => AutoMerge::Integration,
        PullKind::Develop => AutoMerge::Code,
    }
}

/// Whether `kind` is opted in at all: the cheap first question, before any forge call.
pub fn opted_in(kind: PullKind, auto_merge: &[AutoMerge]) -> Result<(), String> {
    let wanted = kind_of(kind);
    if auto_merge.contains(&wanted) {
        return Ok(());
    }
    Err(format!(
        "{} PRs are not auto-merged here (.llm-team.yml workflow.auto_merge does not list {})",
        wanted.as_str(),
        wanted.as_str()
    ))
}

/// Whether an `auto_policy` lets gaffer merge the task's code.
pub fn allows_auto(policy: Option<&str>) -> bool {
    policy.is_some_and(|p| {
        AUTO_POLICIES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(p.trim()))
    })
}

/// `Ok` when gaffer may merge the PR now; else the first reason it may not.
pub fn may_merge(f: &MergeFacts<'_>) -> Result<(), String> {
    opted_in(f.kind, f.auto_merge)?;
    if !f.open {
        return Err(format!("PR #{} is not open", f.number));
    }
    match f.identity {
        None => return Err(
            "gaffer's own login is unknown (GET /user failed): only gaffer's own PRs are merged"
                .into(),
        ),
        Some(me) if me.is_empty() || !me.eq_ignore_ascii_case(f.author) => {
            return Err(format!(
                "PR #{} is by {}, not by gaffer ({me}): only gaffer's own PRs are merged",
                f.number,
                if f.author.is_empty() {
                    "a deleted account"
                } else {
                    f.author
                }
            ))
        }
        Some(_) => {}
    }
    if f.draft {
        return Err(format!("PR #{} is a draft", f.number));
    }
    if !f.into_default_branch {
        return Err(format!("PR #{} is not into the default branch", f.number));
    }
    match f.code {
        None => task_files_only(f)?,
        Some(code) => code_rules(f.task, code)?,
    }
    match f.ci {
        CiState::Success => {}
        CiState::Pending => return Err("CI is still running on the head (pending)".into()),
        CiState::Failure => return Err("CI failed on the head".into()),
        CiState::None => return Err(
            "no CI reported on the head: no CI is not green, and auto-merge needs a passing check"
                .into(),
        ),
    }
    match f.mergeable {
        Some(true) => {}
        Some(false) => return Err("GitHub says the PR cannot be merged (conflicts)".into()),
        None => return Err("GitHub has not worked out yet whether the PR can be merged".into()),
    }
    let blocking = changes_requested_by(f.reviews);
    if !blocking.is_empty() {
        return Err(format!("changes were requested by {}", blocking.join(", ")));
    }
    Ok(())
}

/// A plan or integration PR touches only its own task's file, added or modified.
fn task_files_only(f: &MergeFacts<'_>) -> Result<(), String> {
    if f.files.is_empty() {
        return Err(format!("PR #{} changes no file", f.number));
    }
    let dir = format!("{}/", f.tasks_dir.trim_end_matches('/'));
    for (path, status) in f.files {
        let name = path.strip_prefix(&dir).unwrap_or("");
        let own_task_file = !name.is_empty()
            && !name.contains('/')
            && name.ends_with(".md")
            && TaskId::prefix_of(name).as_ref() == Some(f.task);
        if !own_task_file {
            return Err(format!(
                "PR #{} changes {path}, which is not {}'s task file in {dir}: only task-file PRs are auto-merged",
                f.number, f.task
            ));
        }
        if !matches!(status.as_str(), "added" | "modified" | "changed") {
            return Err(format!(
                "PR #{} has {path} {status}: only added or modified task files are auto-merged",
                f.number
            ));
        }
    }
    Ok(())
}

fn code_rules(task: &TaskId, code: &CodeFacts) -> Result<(), String> {
    if !allows_auto(code.auto_policy.as_deref()) {
        return Err(match &code.auto_policy {
            Some(p) => format!("{task} has auto_policy: {p}: a person merges its code (auto_policy: auto lets gaffer)"),
            None => format!("{task} sets no auto_policy: a person merges its code (auto_policy: auto lets gaffer)"),
        });
    }
    let Some(v) = code.verdict else {
        return Err(
            "the Reviewer's model has not judged this head (no stored verdict): code is merged only on a review of its head"
                .into(),
        );
    };
    if v.fell_back {
        return Err(
            "the Reviewer's model failed on this head; the built-in review never approves a merge"
                .into(),
        );
    }
    if v.criteria == 0 {
        return Err(format!("{task} has no acceptance criteria to check"));
    }
    if v.criteria < code.expected_criteria {
        return Err(format!(
            "the Reviewer judged {} of the task's {} acceptance criteria",
            v.criteria, code.expected_criteria
        ));
    }
    if v.met < v.criteria {
        return Err(format!(
            "the Reviewer found {} of {} acceptance criteria met with evidence",
            v.met, v.criteria
        ));
    }
    if !v.checks_passed {
        return Err("the checks failed on this head".into());
    }
    if code.proof_required {
        match v.fail_to_pass {
            Some(true) => {}
            Some(false) => {
                return Err(
                    "the fail-to-pass proof failed: the tests do not show the change".into(),
                )
            }
            None => {
                return Err(
                    "the task needs a fail-to-pass proof and none was run on this head".into(),
                )
            }
        }
    }
    Ok(())
}

/// Reviewers whose latest decisive review (approved, changes requested, dismissed) asks
/// for changes; comments and pending reviews decide nothing.
pub fn changes_requested_by(reviews: &[ReviewFact]) -> Vec<String> {
    let mut latest: Vec<(String, bool)> = Vec::new();
    for r in reviews {
        let blocks = match r.state.to_ascii_uppercase().as_str() {
            "CHANGES_REQUESTED" => true,
            "APPROVED" | "DISMISSED" => false,
            _ => continue,
        };
        let who = if r.author.is_empty() {
            "a deleted account".to_string()
        } else {
            r.author.clone()
        };
        match latest
            .iter_mut()
            .find(|(a, _)| a.eq_ignore_ascii_case(&who))
        {
            Some(entry) => entry.1 = blocks,
            None => latest.push((who, blocks)),
        }
    }
    latest
        .into_iter()
        .filter(|(_, blocks)| *blocks)
        .map(|(a, _)| a)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[AutoMerge] = &[AutoMerge::Plan, AutoMerge::Integration, AutoMerge::Code];

    fn id() -> TaskId {
        TaskId::parse("T-0003").unwrap()
    }

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    }

    fn green_code() -> CodeFacts {
        CodeFacts {
            auto_policy: Some("auto".into()),
            verdict: Some(Judged {
                criteria: 2,
                met: 2,
                fell_back: false,
                checks_passed: true,
                fail_to_pass: Some(true),
            }),
            proof_required: true,
            expected_criteria: 2,
        }
    }

    /// Facts of an integration PR that may be merged; tests change one thing each.
    fn facts<'a>(
        task: &'a TaskId,
        changed: &'a [(String, String)],
        reviews: &'a [ReviewFact],
    ) -> MergeFacts<'a> {
        MergeFacts {
            number: 7,
            kind: PullKind::Integrate,
            task,
            auto_merge: ALL,
            identity: Some("gaffer-bot"),
            author: "gaffer-bot",
            open: true,
            draft: false,
            into_default_branch: true,
            tasks_dir: "tasks",
            files: changed,
            ci: CiState::Success,
            mergeable: Some(true),
            reviews,
            code: None,
        }
    }

    fn task_file() -> Vec<(String, String)> {
        files(&[("tasks/T-0003-add-a-cli.md", "modified")])
    }

    fn err(f: &MergeFacts<'_>) -> String {
        may_merge(f).expect_err("must not merge")
    }

    #[test]
    fn a_green_task_file_pr_by_gaffer_may_be_merged() {
        let (task, changed) = (id(), task_file());
        assert_eq!(may_merge(&facts(&task, &changed, &[])), Ok(()));
        let added = files(&[("tasks/T-0003-add-a-cli.md", "added")]);
        let mut plan = facts(&task, &added, &[]);
        plan.kind = PullKind::Plan;
        assert_eq!(may_merge(&plan), Ok(()));
    }

    #[test]
    fn a_kind_not_opted_in_is_never_merged() {
        let (task, changed) = (id(), task_file());
        let mut f = facts(&task, &changed, &[]);
        f.auto_merge = &[AutoMerge::Plan];
        assert_eq!(
            err(&f),
            "integration PRs are not auto-merged here (.llm-team.yml workflow.auto_merge does not list integration)"
        );
        f.auto_merge = &[];
        f.kind = PullKind::Plan;
        assert!(err(&f).starts_with("plan PRs are not auto-merged"));
        f.kind = PullKind::Develop;
        let code = green_code();
        f.code = Some(&code);
        f.auto_merge = &[AutoMerge::Plan, AutoMerge::Integration];
        assert!(err(&f).starts_with("code PRs are not auto-merged"));
    }

    #[test]
    fn only_gaffers_own_prs_are_merged() {
        let (task, changed) = (id(), task_file());
        let mut f = facts(&task, &changed, &[]);
        f.author = "mallory";
        assert_eq!(
            err(&f),
            "PR #7 is by mallory, not by gaffer (gaffer-bot): only gaffer's own PRs are merged"
        );
        f.author = "";
        assert!(err(&f).contains("a deleted account"));
        f.author = "GAFFER-BOT";
        assert_eq!(may_merge(&f), Ok(()), "logins compare case-insensitively");
        f.identity = None;
        assert!(err(&f).contains("own login is unknown"));
    }

    #[test]
    fn closed_draft_and_off_base_prs_are_not_merged() {
        let (task, changed) = (id(), task_file());
        let mut f = facts(&task, &changed, &[]);
        f.open = false;
        assert_eq!(err(&f), "PR #7 is not open");
        f.open = true;
        f.draft = true;
        assert_eq!(err(&f), "PR #7 is a draft");
        f.draft = false;
        f.into_default_branch = false;
        assert_eq!(err(&f), "PR #7 is not into the default branch");
    }

    #[test]
    fn a_file_that_is_not_the_tasks_own_file_blocks() {
        let task = id();
        for (path, status, says) in [
            (
                "src/main.rs",
                "modified",
                "changes src/main.rs, which is not T-0003's task file in tasks/",
            ),
            (
                "tasks/T-0004-other.md",
                "modified",
                "changes tasks/T-0004-other.md",
            ),
            (
                "tasks/sub/T-0003-x.md",
                "added",
                "changes tasks/sub/T-0003-x.md",
            ),
            ("tasks/T-0003-x.txt", "added", "changes tasks/T-0003-x.txt"),
            ("tasksX/T-0003-x.md", "added", "changes tasksX/T-0003-x.md"),
            (".llm-team.yml", "modified", "changes .llm-team.yml"),
            (
                "tasks/T-0003-x.md",
                "removed",
                "has tasks/T-0003-x.md removed",
            ),
        ] {
            let changed = files(&[("tasks/T-0003-add-a-cli.md", "modified"), (path, status)]);
            let reason = err(&facts(&task, &changed, &[]));
            assert!(reason.contains(says), "{path}: {reason}");
        }
        let none: Vec<(String, String)> = Vec::new();
        assert_eq!(err(&facts(&task, &none, &[])), "PR #7 changes no file");
    }

    #[test]
    fn ci_must_be_green_and_no_ci_is_not_green() {
        let (task, changed) = (id(), task_file());
        let mut f = facts(&task, &changed, &[]);
        f.ci = CiState::Pending;
        assert_eq!(err(&f), "CI is still running on the head (pending)");
        f.ci = CiState::Failure;
        assert_eq!(err(&f), "CI failed on the head");
        f.ci = CiState::None;
        assert!(err(&f).contains("no CI is not green"), "{}", err(&f));
    }

    #[test]
    fn github_must_say_mergeable() {
        let (task, changed) = (id(), task_file());
        let mut f = facts(&task, &changed, &[]);
        f.mergeable = Some(false);
        assert_eq!(err(&f), "GitHub says the PR cannot be merged (conflicts)");
        f.mergeable = None;
        assert!(err(&f).contains("has not worked out yet"));
    }

    fn review(author: &str, state: &str) -> ReviewFact {
        ReviewFact {
            author: author.into(),
            state: state.into(),
        }
    }

    #[test]
    fn requested_changes_block_until_approved_or_dismissed() {
        let (task, changed) = (id(), task_file());
        let asked = [review("alice", "CHANGES_REQUESTED")];
        assert_eq!(
            err(&facts(&task, &changed, &asked)),
            "changes were requested by alice"
        );
        let then_commented = [
            review("alice", "CHANGES_REQUESTED"),
            review("alice", "COMMENTED"),
            review("gaffer-bot", "COMMENTED"),
        ];
        assert!(may_merge(&facts(&task, &changed, &then_commented)).is_err());
        let then_approved = [
            review("alice", "CHANGES_REQUESTED"),
            review("Alice", "APPROVED"),
        ];
        assert_eq!(may_merge(&facts(&task, &changed, &then_approved)), Ok(()));
        let dismissed = [review("alice", "DISMISSED"), review("bob", "APPROVED")];
        assert_eq!(may_merge(&facts(&task, &changed, &dismissed)), Ok(()));
        let others = [
            review("alice", "APPROVED"),
            review("bob", "CHANGES_REQUESTED"),
            review("", "CHANGES_REQUESTED"),
        ];
        assert_eq!(
            err(&facts(&task, &changed, &others)),
            "changes were requested by bob, a deleted account"
        );
    }

    fn code_facts<'a>(
        task: &'a TaskId,
        changed: &'a [(String, String)],
        code: &'a CodeFacts,
    ) -> MergeFacts<'a> {
        MergeFacts {
            kind: PullKind::Develop,
            code: Some(code),
            ..facts(task, changed, &[])
        }
    }

    #[test]
    fn code_is_merged_only_on_auto_policy_and_a_full_verdict() {
        let task = id();
        let changed = files(&[
            ("src/main.rs", "modified"),
            ("tasks/T-0003-x.md", "modified"),
        ]);
        let ok = green_code();
        assert_eq!(may_merge(&code_facts(&task, &changed, &ok)), Ok(()));
        let alias = CodeFacts {
            auto_policy: Some("AUTO_MERGE".into()),
            ..green_code()
        };
        assert_eq!(may_merge(&code_facts(&task, &changed, &alias)), Ok(()));

        let with = |change: &dyn Fn(&mut CodeFacts)| {
            let mut c = green_code();
            change(&mut c);
            err(&code_facts(&task, &changed, &c))
        };
        assert_eq!(
            with(&|c| c.auto_policy = None),
            "T-0003 sets no auto_policy: a person merges its code (auto_policy: auto lets gaffer)"
        );
        assert!(with(&|c| c.auto_policy = Some("review".into())).contains("auto_policy: review"));
        assert!(with(&|c| c.verdict = None).contains("has not judged this head"));
        assert_eq!(
            with(&|c| c.verdict.as_mut().unwrap().met = 1),
            "the Reviewer found 1 of 2 acceptance criteria met with evidence"
        );
        assert!(with(&|c| {
            let v = c.verdict.as_mut().unwrap();
            v.criteria = 0;
            v.met = 0;
        })
        .contains("no acceptance criteria"));
        assert!(with(&|c| c.verdict.as_mut().unwrap().fell_back = true).contains("model failed"));
        assert_eq!(
            with(&|c| c.expected_criteria = 3),
            "the Reviewer judged 2 of the task's 3 acceptance criteria"
        );
        assert_eq!(
            with(&|c| c.verdict.as_mut().unwrap().checks_passed = false),
            "the checks failed on this head"
        );
        assert!(
            with(&|c| c.verdict.as_mut().unwrap().fail_to_pass = Some(false))
                .contains("fail-to-pass proof failed")
        );
        assert!(with(&|c| c.verdict.as_mut().unwrap().fail_to_pass = None).contains("none was run"));
        // No proof needed: none is fine.
        let mut unproven = green_code();
        unproven.proof_required = false;
        unproven.verdict.as_mut().unwrap().fail_to_pass = None;
        assert_eq!(may_merge(&code_facts(&task, &changed, &unproven)), Ok(()));
        // The verdict never overrides CI or a person's request for changes.
        let mut f = code_facts(&task, &changed, &ok);
        f.ci = CiState::Pending;
        assert!(may_merge(&f).is_err());
    }

    #[test]
    fn auto_policy_vocabulary() {
        assert!(allows_auto(Some("auto")));
        assert!(allows_auto(Some(" Auto_Merge ")));
        for other in [None, Some("review"), Some("manual"), Some(""), Some("pr")] {
            assert!(!allows_auto(other), "{other:?}");
        }
    }
}
