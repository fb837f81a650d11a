//! The Reviewer: for a task PR with a head SHA it has not reviewed, one review (a single
//! API call): a summary, the CI state of that SHA, the repo's checks run on that SHA, each
//! acceptance item met or not with a reason, and risks. Exactly once per head SHA (stored,
//! and recognised by its marker if a run died after posting); a newer push gets a new
//! review. Without a model the review is deterministic. It never approves or merges.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{marker, Action, Outcome, PrRef};
use crate::error::AppResult;
use crate::forge::{
    once, CiState, CiStatus, NewReview, PullFile, PullRequest, PullState, ReviewEvent,
};
use crate::llm::prompt::{Prompt, Source, REVIEWER_SYSTEM};
use crate::llm::{ask_structured, Llm, Role};
use crate::pipeline::{read_task, read_team_config};
use crate::registry::{Mode, Repo};
use crate::team::{classify_branch, PullKind};
use crate::workspace::checks::CheckRun;
use crate::Gaffer;

const ROLE: &str = "reviewer";
/// How a criterion left for a person starts: not a finding for the Developer to fix.
pub const BY_HAND: &str = "not verified automatically";

mod evidence;

/// One acceptance criterion, judged.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct Judged {
    criterion: String,
    met: bool,
    reason: String,
    /// Where it shows: `file:lines` of the diff, or the check / test that proves it.
    #[serde(default)]
    evidence: String,
}

/// What the model returns.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct Verdict {
    summary: String,
    acceptance: Vec<Judged>,
    risks: Vec<String>,
}

/// Reviews every open task PR whose head SHA was not reviewed yet.
pub async fn review_open(gaffer: &Gaffer, repo: &Repo) -> AppResult<Vec<Outcome>> {
    let forge = gaffer.forge(repo);
    let mut outcomes = Vec::new();
    for pull in forge.list_pulls(&repo.full_name(), PullState::Open).await? {
        if gaffer
            .store
            .was_reviewed(&repo.full_name(), pull.number, &pull.head_sha)
            .await?
        {
            continue;
        }
        outcomes.push(review(gaffer, repo, pull.number).await?);
    }
    Ok(outcomes)
}

/// Reviews PR `number` at its current head, unless that head was reviewed already.
pub async fn review(gaffer: &Gaffer, repo: &Repo, number: u64) -> AppResult<Outcome> {
    let _turn = gaffer.turns.lock(&repo.full_name).await;
    let name = repo.full_name();
    let forge = gaffer.forge(repo);
    let pull = forge.pull(&name, number).await?;
    let nothing = |why: String| Ok(Outcome::new(ROLE, repo, Action::Nothing, why));
    if pull.state != PullState::Open {
        return nothing(format!("PR #{number} is closed"));
    }
    if let Err(why) = super::trusted_author(gaffer, forge.as_ref(), repo, &pull).await? {
        return nothing(format!("PR #{number} skipped: {why}"));
    }
    let config = read_team_config(forge.as_ref(), repo, &pull.head_sha).await?;
    let Some((PullKind::Develop, task_id)) = classify_branch(&config.branch_prefix, &pull.head_ref)
    else {
        return nothing(format!(
            "PR #{number} ({}) is not a task's work PR",
            pull.head_ref
        ));
    };
    if !config.roles.reviewer {
        return nothing("the Reviewer is disabled in .llm-team.yml".into());
    }
    let sha = pull.head_sha.clone();
    let short = &sha[..sha.len().min(7)];
    if gaffer.store.was_reviewed(&name, number, &sha).await? {
        return nothing(format!("PR #{number} at {short} was reviewed already"));
    }
    let review_marker = format!(
        "{} sha={sha} -->",
        marker(&task_id, ROLE).trim_end_matches(" -->")
    );
    if let Some(existing) = once::find_review(forge.as_ref(), &name, number, &review_marker).await?
    {
        // A run that died after posting: remember, do not post again.
        gaffer
            .store
            .mark_reviewed(&name, number, &sha, existing.id)
            .await?;
        return nothing(format!(
            "PR #{number} at {short} was reviewed already (review {})",
            existing.id
        ));
    }
    if repo.mode != Mode::Pr || config.dry_run {
        let mut o = Outcome::new(
            ROLE,
            repo,
            Action::Preview,
            format!("would review PR #{number} at {short}"),
        );
        o.task = Some(task_id);
        return Ok(o);
    }

    let task = read_task(forge.as_ref(), repo, &config, &task_id, &sha)
        .await?
        .map(|(t, _)| t);
    let acceptance = task
        .as_ref()
        .map(|t| t.acceptance.clone())
        .unwrap_or_default();
    let files = forge.pull_files(&name, number).await?;
    let ci = forge.ci_status(&name, &sha).await?;
    let checks = run_checks(gaffer, repo, &pull, &config).await?;
    let llm = gaffer.llm_for(repo);
    let model = llm.model(Role::Reviewer);
    let proof = match &task {
        Some(t)
            if super::developer::needs_proof(t, &config)
                && !super::bootstrap::is_bootstrap(&t.title) =>
        {
            prove_head(gaffer, repo, &pull, &config, &checks).await
        }
        _ => None,
    };
    let mut fell_back: Option<String> = None;
    let mut verdict = match &model {
        Some(_) => match ask_model(
            gaffer,
            &llm,
            &task_id,
            task.as_ref().map(|t| t.title.as_str()),
            &acceptance,
            &files,
            &checks,
        )
        .await
        {
            Ok(verdict) => verdict,
            Err(e) => {
                // The model failed: the built-in review stands in, and says so.
                fell_back = Some(e.to_string());
                let mut v = deterministic(&acceptance, &files, &checks);
                v.summary = format!(
                    "The reviewer model failed ({e}), so this is gaffer's built-in review. {}",
                    v.summary
                );
                v
            }
        },
        None => deterministic(&acceptance, &files, &checks),
    };
    let downgraded = evidence::judge(
        &mut verdict.acceptance,
        &files,
        &evidence::CheckFacts::of(&checks),
        proof.as_ref(),
    );
    let reviewer_name = match (&model, &fell_back) {
        (Some(m), None) => m.clone(),
        (Some(m), Some(_)) => format!("{m} failed: built-in review"),
        (None, _) => "no model: deterministic review".to_string(),
    };
    let body = review_body(
        &review_marker,
        &sha,
        &ci,
        &checks,
        &verdict,
        proof.as_ref(),
        &reviewer_name,
    );
    let review = NewReview {
        commit_id: sha.clone(),
        body,
        event: ReviewEvent::Comment,
    };
    let (posted, _) = once::post_review(forge.as_ref(), &name, number, &review, &review_marker)
        .await?
        .into_parts();
    gaffer
        .store
        .mark_reviewed(&name, number, &sha, posted.id)
        .await?;
    let met = verdict.acceptance.iter().filter(|j| j.met).count();
    // Per model: the built-in review without a model is no model's verdict.
    if let Some(model) = &model {
        gaffer
            .store
            .record_review_verdict(&crate::store::ReviewVerdict {
                repo: name.to_string(),
                pr: number,
                sha: sha.clone(),
                model: model.clone(),
                criteria: verdict.acceptance.len() as u32,
                met: met as u32,
                downgraded,
                fell_back: fell_back.is_some(),
                checks_passed: checks.passed,
                fail_to_pass: proof.as_ref().map(|p| p.proven),
            })
            .await?;
    }
    let judged = match model {
        Some(_) => format!("{met}/{} acceptance items met", verdict.acceptance.len()),
        None => format!(
            "{} acceptance items left to check by hand (no reviewer model)",
            verdict.acceptance.len()
        ),
    };
    let summary = format!(
        "reviewed PR #{number} at {short}: {judged}, checks {}",
        if checks.passed { "passed" } else { "failed" }
    );
    gaffer.store.add_event(&name, ROLE, &summary).await?;
    let mut o = Outcome::new(ROLE, repo, Action::Reviewed, summary);
    o.task = Some(task_id);
    o.pr = Some(PrRef::from(&pull));
    o.checks = Some(checks);
    o.detail = json!({"review_id": posted.id, "sha": sha, "met": met,
        "criteria": verdict.acceptance.len(), "downgraded": downgraded,
        "fell_back": fell_back, "proof": proof,
        "unmet": verdict.acceptance.iter().filter(|j| !j.met && !j.reason.starts_with(BY_HAND)).map(|j| format!("{}: {}", j.criterion, j.reason)).collect::<Vec<_>>()});
    Ok(o)
}

/// The fail-to-pass proof of the PR's change, run by the Reviewer itself: the clone at
/// the merge base with the head's tree as the change (`None` when it cannot be run).
async fn prove_head(
    gaffer: &Gaffer,
    repo: &Repo,
    pull: &PullRequest,
    config: &crate::team::team_config::TeamConfig,
    head_checks: &CheckRun,
) -> Option<crate::agent::proof::Proof> {
    let clone = gaffer.workspace.checkout(repo).await.ok()?;
    let base = clone
        .merge_base(&pull.head_sha, &format!("origin/{}", repo.default_branch))
        .await
        .ok()?;
    clone
        .start_branch("gaffer-review-proof", &base)
        .await
        .ok()?;
    let checks = super::RepoChecks::new(gaffer, repo, &clone, config).await;
    let baseline = checks.baseline(gaffer, repo, &clone, &base).await.ok()?;
    clone.take_tree_of(&pull.head_sha).await.ok()?;
    let tasks = format!("{}/", config.tasks_dir);
    let changed: Vec<String> = clone
        .uncommitted_changes()
        .await
        .ok()?
        .into_iter()
        .filter(|f| !f.starts_with(&tasks))
        .collect();
    let proof = crate::agent::proof::prove(&clone, &checks, &baseline, head_checks, &changed)
        .await
        .ok();
    let _ = clone.reset().await;
    proof
}

/// The repo's checks on the PR head, judged against the commit the change grew from
/// (its merge base with the default branch), whose results are cached per SHA.
async fn run_checks(
    gaffer: &Gaffer,
    repo: &Repo,
    pull: &PullRequest,
    config: &crate::team::team_config::TeamConfig,
) -> AppResult<CheckRun> {
    let clone = gaffer.workspace.checkout(repo).await?;
    let base = clone
        .merge_base(&pull.head_sha, &format!("origin/{}", repo.default_branch))
        .await
        .ok();
    let mut from_base = None;
    if let Some(base) = &base {
        clone.start_branch("gaffer-review-base", base).await?;
        let base_checks = super::RepoChecks::new(gaffer, repo, &clone, config).await;
        let baseline = base_checks.baseline(gaffer, repo, &clone, base).await?;
        from_base = Some((
            crate::workspace::checks::plan_key(&base_checks.plan),
            baseline,
        ));
    }
    clone.start_branch("gaffer-review", &pull.head_sha).await?;
    let checks = super::RepoChecks::new(gaffer, repo, &clone, config).await;
    // A baseline made with other commands (the PR changed the checks) is not comparable.
    let key = crate::workspace::checks::plan_key(&checks.plan);
    let baseline = from_base
        .filter(|(base_key, _)| *base_key == key)
        .map(|(_, b)| b);
    let run = checks.run(&clone, baseline).await;
    clone.reset().await?;
    Ok(run)
}

async fn ask_model(
    gaffer: &Gaffer,
    llm: &dyn Llm,
    id: &crate::team::task::TaskId,
    title: Option<&str>,
    acceptance: &[String],
    files: &[PullFile],
    checks: &CheckRun,
) -> AppResult<Verdict> {
    let diff: String = files
        .iter()
        .map(|f| {
            format!(
                "--- {} ({}, +{} -{})\n{}\n",
                f.filename,
                f.status,
                f.additions,
                f.deletions,
                f.patch.as_deref().unwrap_or("(no textual diff)")
            )
        })
        .collect();
    let criteria: Vec<String> = acceptance
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}. {a}", i + 1))
        .collect();
    let messages = Prompt::new(REVIEWER_SYSTEM)
        .required(
            "Task",
            &format!(
                "{id}: {}\n\nAcceptance criteria:\n{}",
                title.unwrap_or("(task file not found)"),
                criteria.join("\n")
            ),
            Source::Untrusted,
        )
        .required(
            "Checks",
            &format!(
                "`{}` {}: {} (exit {:?})\n{}",
                checks.command,
                if checks.passed { "passed" } else { "failed" },
                checks.comparison.reason,
                checks.exit_code,
                tail(&checks.output_tail, 1500)
            ),
            Source::Untrusted,
        )
        .trimmable("Diff", &diff, Source::Untrusted, 1)
        .render(Role::Reviewer, llm.prompt_budget(Role::Reviewer))?;
    let (mut verdict, _) = ask_structured::<Verdict>(
        llm,
        Role::Reviewer,
        messages,
        gaffer.settings.llm.structured_retries,
    )
    .await?;
    // One entry per criterion, in order, whatever the model returned.
    let judged = verdict.acceptance.clone();
    verdict.acceptance = acceptance
        .iter()
        .enumerate()
        .map(|(i, criterion)| match judged.get(i) {
            Some(j) => Judged {
                criterion: criterion.clone(),
                met: j.met,
                reason: j.reason.clone(),
                evidence: j.evidence.clone(),
            },
            None => Judged {
                criterion: criterion.clone(),
                met: false,
                reason: "not assessed by the model".into(),
                evidence: String::new(),
            },
        })
        .collect();
    Ok(verdict)
}

/// The review without a model: what the diff and the checks show, each criterion left for
/// a human to tick.
fn deterministic(acceptance: &[String], files: &[PullFile], checks: &CheckRun) -> Verdict {
    let added: u64 = files.iter().map(|f| f.additions).sum();
    let removed: u64 = files.iter().map(|f| f.deletions).sum();
    let names: Vec<&str> = files.iter().map(|f| f.filename.as_str()).collect();
    let mut risks = Vec::new();
    if !checks.passed {
        risks.push(format!(
            "the checks fail on this commit: {}",
            checks.comparison.reason
        ));
    }
    if files.iter().any(|f| f.filename.starts_with(".github/")) {
        risks.push("changes CI configuration under .github/".into());
    }
    if !files.iter().any(|f| f.filename.contains("test")) {
        risks.push("no test file changed".into());
    }
    if added > 500 {
        risks.push(format!("a large change ({added} lines added)"));
    }
    let checks_word = if checks.passed { "pass" } else { "fail" };
    Verdict {
        summary: format!("{} file(s) changed (+{added} -{removed}): {}.", files.len(), names.join(", ")),
        acceptance: acceptance
            .iter()
            .map(|criterion| Judged {
                criterion: criterion.clone(),
                met: false,
                reason: format!("{BY_HAND} (no reviewer model); the checks {checks_word}, so check this by hand"),
                evidence: String::new(),
            })
            .collect(),
        risks,
    }
}

fn review_body(
    review_marker: &str,
    sha: &str,
    ci: &CiStatus,
    checks: &CheckRun,
    verdict: &Verdict,
    proof: Option<&crate::agent::proof::Proof>,
    reviewer: &str,
) -> String {
    let ci_line = match ci.state {
        CiState::None => "no CI reported on this commit".to_string(),
        state => {
            let names: Vec<String> = ci
                .checks
                .iter()
                .map(|c| format!("{} ({:?})", c.name, c.state).to_lowercase())
                .collect();
            format!("{state:?} ({})", names.join(", ")).to_lowercase()
        }
    };
    let items: Vec<String> = verdict
        .acceptance
        .iter()
        .map(|j| {
            let evidence = if j.evidence.trim().is_empty() {
                String::new()
            } else {
                format!(" (evidence: {})", j.evidence.trim())
            };
            format!(
                "- [{}] {}: {}{evidence}",
                if j.met { "x" } else { " " },
                j.criterion,
                j.reason
            )
        })
        .collect();
    let risks = if verdict.risks.is_empty() {
        "- none seen".to_string()
    } else {
        verdict
            .risks
            .iter()
            .map(|r| format!("- {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{review_marker}\n### Summary\n{}\n\n### CI at {}\n{ci_line}\n\n### Checks run by gaffer\n{}\n\n### Proof\n{}\n\n### Acceptance\n{}\n\n### Risks\n{risks}\n\nReviewed by gaffer ({reviewer}). gaffer never approves or merges: that is yours.\n",
        verdict.summary.trim(),
        &sha[..sha.len().min(7)],
        super::checks_markdown(checks),
        super::developer::proof_section(proof),
        if items.is_empty() { "- (the task file lists no acceptance criteria)".to_string() } else { items.join("\n") },
    )
}

fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[start..]
}
