//! Per-model statistics: how each model did, overall and per repo, computed only from what
//! gaffer records (`llm_calls`, `developer_runs`, `runs`, `integrations`). Served as
//! `GET /stats/models`, printed by `gaffer stats`, drawn on the dashboard's Models page.
//!
//! The figures are an open set: each is a [`Column`] in [`COLUMNS`] (key, label, what it
//! counts) and a number in [`ModelRow::figures`], so a new recorded fact (an edit format,
//! a Reviewer verdict) is one more column and one more query, and readers that render
//! [`COLUMNS`] need no change. A figure nothing recorded is absent, never zero.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::error::AppResult;
use crate::registry::FullName;
use crate::store::Store;

/// One figure the report can hold.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Column {
    pub key: &'static str,
    pub label: &'static str,
    /// What is counted, and from which record.
    pub about: &'static str,
}

/// Every figure, in display order.
pub const COLUMNS: &[Column] = &[
    Column {
        key: "calls",
        label: "model calls",
        about: "calls made to the model (llm_calls); per repo only calls made inside a run",
    },
    Column {
        key: "failed_calls",
        label: "failed calls",
        about: "calls that ended in an error (timeout, refusal, bad answer)",
    },
    Column {
        key: "prompt_tokens",
        label: "prompt tokens",
        about: "prompt tokens the server reported",
    },
    Column {
        key: "completion_tokens",
        label: "answer tokens",
        about: "completion tokens the server reported",
    },
    Column {
        key: "model_ms",
        label: "model time (ms)",
        about: "time spent waiting for answers",
    },
    Column {
        key: "developer_runs",
        label: "developer runs",
        about: "Developer runs with this model (developer_runs)",
    },
    Column {
        key: "replies_well_formed",
        label: "well-formed replies",
        about: "Developer replies with parseable edit blocks",
    },
    Column {
        key: "replies_malformed",
        label: "malformed replies",
        about: "Developer replies gaffer could not parse",
    },
    Column {
        key: "applied_first_try",
        label: "edits applied first try",
        about: "Developer runs whose first reply applied cleanly",
    },
    Column {
        key: "prs_opened",
        label: "PRs opened",
        about: "Developer runs that opened a work PR",
    },
    Column {
        key: "blocked",
        label: "blocked",
        about: "Developer runs that gave up and explained why in a PR",
    },
    Column {
        key: "edits_applied",
        label: "edits applied",
        about: "Developer edits that applied and still parsed (agent runs)",
    },
    Column {
        key: "edits_undone",
        label: "edits undone",
        about: "Developer edits put back at once: the file no longer parsed, or the diff grew past its budget",
    },
    Column {
        key: "checks_passed",
        label: "checks passed",
        about: "Developer runs whose last checks passed",
    },
    Column {
        key: "fail_to_pass",
        label: "fail-to-pass proven",
        about: "Developer runs where a new test failed on the base and passed with the change (of the runs that had to prove it)",
    },
    Column {
        key: "proof_required",
        label: "proof required",
        about: "Developer runs that had to prove their change with a fail-to-pass test",
    },
    Column {
        key: "format_tools",
        label: "runs with native tools",
        about: "Developer runs in the tools edit format",
    },
    Column {
        key: "format_text",
        label: "runs with the text protocol",
        about: "Developer runs in the diff or whole edit format",
    },
    Column {
        key: "reviews",
        label: "reviews",
        about: "reviews posted with this model as the Reviewer (review_verdicts)",
    },
    Column {
        key: "criteria_met",
        label: "criteria met (with evidence)",
        about: "acceptance criteria judged met, after the evidence rules",
    },
    Column {
        key: "criteria_judged",
        label: "criteria judged",
        about: "acceptance criteria the Reviewer judged",
    },
    Column {
        key: "claims_refused",
        label: "met claims refused",
        about: "criteria the model called met without evidence from the diff or the checks",
    },
    Column {
        key: "review_fallbacks",
        label: "reviews by the built-in fallback",
        about: "reviews where the model failed and gaffer's built-in review stood in",
    },
    Column {
        key: "merged",
        label: "merged",
        about: "tasks whose work PR by this model was merged (handed to the Integrator)",
    },
];

/// One model's figures in one scope (a repo, or everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelRow {
    pub model: String,
    /// The roles the model served in this scope.
    pub roles: Vec<String>,
    /// Figures by [`Column::key`]; a figure with no record behind it is absent.
    #[serde(flatten)]
    pub figures: BTreeMap<String, i64>,
}

impl ModelRow {
    /// A figure, if anything was recorded for it.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.figures.get(key).copied()
    }

    fn add(&mut self, key: &str, value: i64) {
        *self.figures.entry(key.to_string()).or_default() += value;
    }

    fn role(&mut self, role: &str) {
        if !role.is_empty() && !self.roles.iter().any(|r| r == role) {
            self.roles.push(role.to_string());
            self.roles.sort();
        }
    }
}

/// One repo's models.
#[derive(Debug, Clone, Serialize)]
pub struct RepoModels {
    pub repo: String,
    pub models: Vec<ModelRow>,
}

/// The whole report: the columns, then the rows overall and per repo.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStats {
    pub columns: &'static [Column],
    pub overall: Vec<ModelRow>,
    pub repos: Vec<RepoModels>,
}

/// Rows keyed by (repo or "" for overall, model).
#[derive(Default)]
struct Rows(BTreeMap<(String, String), ModelRow>);

impl Rows {
    fn row(&mut self, repo: &str, model: &str) -> &mut ModelRow {
        self.0
            .entry((repo.to_string(), model.to_string()))
            .or_insert_with(|| ModelRow {
                model: model.to_string(),
                ..ModelRow::default()
            })
    }

    /// Adds to the repo's row and, when `overall` is true, to the overall row too.
    fn add(&mut self, repo: &str, model: &str, role: &str, figures: &[(&str, i64)], overall: bool) {
        let scopes: &[&str] = if overall { &[repo, ""] } else { &[repo] };
        for scope in scopes {
            let row = self.row(scope, model);
            row.role(role);
            for (key, value) in figures {
                row.add(key, *value);
            }
        }
    }
}

/// Computes the report; `repo` keeps one repo's section (the overall rows stay whole).
pub async fn model_stats(store: &Store, repo: Option<&FullName>) -> AppResult<ModelStats> {
    let pool = store.pool();
    let mut rows = Rows::default();
    // Overall model calls: every recorded call, inside a run or not.
    for r in sqlx::query(
        "SELECT model, role, COUNT(*) AS calls, SUM(1 - ok) AS failed,
                SUM(prompt_tokens) AS pt, SUM(completion_tokens) AS ct, SUM(total_ms) AS ms
         FROM llm_calls GROUP BY model, role",
    )
    .fetch_all(pool)
    .await?
    {
        let model: String = r.try_get("model")?;
        let role: String = r.try_get("role")?;
        rows.add("", &model, &role, &call_figures(&r)?, false);
    }
    // Per repo: the calls made inside a run (the run names the repo).
    for r in sqlx::query(
        "SELECT runs.repo AS repo, c.model AS model, c.role AS role, COUNT(*) AS calls,
                SUM(1 - c.ok) AS failed, SUM(c.prompt_tokens) AS pt,
                SUM(c.completion_tokens) AS ct, SUM(c.total_ms) AS ms
         FROM llm_calls c JOIN runs ON runs.id = c.run_id GROUP BY runs.repo, c.model, c.role",
    )
    .fetch_all(pool)
    .await?
    {
        let repo: String = r.try_get("repo")?;
        let model: String = r.try_get("model")?;
        let role: String = r.try_get("role")?;
        rows.add(&repo, &model, &role, &call_figures(&r)?, false);
    }
    for r in sqlx::query(
        "SELECT repo, model, COUNT(*) AS runs, SUM(well_formed) AS wf, SUM(malformed) AS mf,
                SUM(applied_first_try) AS first, SUM(outcome = 'pr') AS prs,
                SUM(outcome = 'blocked') AS blocked
         FROM developer_runs GROUP BY repo, model",
    )
    .fetch_all(pool)
    .await?
    {
        let repo: String = r.try_get("repo")?;
        let model: String = r.try_get("model")?;
        let figures = [
            ("developer_runs", r.try_get::<i64, _>("runs")?),
            ("replies_well_formed", r.try_get("wf")?),
            ("replies_malformed", r.try_get("mf")?),
            ("applied_first_try", r.try_get("first")?),
            ("prs_opened", r.try_get("prs")?),
            ("blocked", r.try_get("blocked")?),
        ];
        rows.add(&repo, &model, "developer", &figures, true);
    }
    // What only the agent Developer records (rows with an edit format).
    for r in sqlx::query(
        "SELECT repo, model, SUM(edits_applied) AS applied, SUM(edits_undone) AS undone,
                SUM(checks_passed) AS passed, SUM(fail_to_pass = 1) AS proven,
                SUM(fail_to_pass IS NOT NULL) AS required, SUM(edit_format = 'tools') AS tools,
                SUM(edit_format IN ('diff', 'whole')) AS text
         FROM developer_runs WHERE edit_format NOT IN ('', 'builtin') GROUP BY repo, model",
    )
    .fetch_all(pool)
    .await?
    {
        let repo: String = r.try_get("repo")?;
        let model: String = r.try_get("model")?;
        let mut figures = vec![
            ("edits_applied", r.try_get::<i64, _>("applied")?),
            ("edits_undone", r.try_get("undone")?),
            ("checks_passed", r.try_get("passed")?),
            ("format_tools", r.try_get("tools")?),
            ("format_text", r.try_get("text")?),
        ];
        let required: i64 = r.try_get("required")?;
        if required > 0 {
            figures.push(("proof_required", required));
            figures.push(("fail_to_pass", r.try_get("proven")?));
        }
        rows.add(&repo, &model, "developer", &figures, true);
    }
    for r in sqlx::query(
        "SELECT repo, model, COUNT(*) AS reviews, SUM(met) AS met, SUM(criteria) AS criteria,
                SUM(downgraded) AS refused, SUM(fell_back) AS fallbacks
         FROM review_verdicts GROUP BY repo, model",
    )
    .fetch_all(pool)
    .await?
    {
        let repo: String = r.try_get("repo")?;
        let model: String = r.try_get("model")?;
        let figures = [
            ("reviews", r.try_get::<i64, _>("reviews")?),
            ("criteria_met", r.try_get("met")?),
            ("criteria_judged", r.try_get("criteria")?),
            ("claims_refused", r.try_get("refused")?),
            ("review_fallbacks", r.try_get("fallbacks")?),
        ];
        rows.add(&repo, &model, "reviewer", &figures, true);
    }
    // A merged task counts once for each model that opened a work PR for it.
    for r in sqlx::query(
        "SELECT d.repo AS repo, d.model AS model, COUNT(DISTINCT d.task) AS merged
         FROM developer_runs d JOIN integrations i ON i.repo = d.repo AND i.task = d.task
         WHERE d.outcome = 'pr' GROUP BY d.repo, d.model",
    )
    .fetch_all(pool)
    .await?
    {
        let repo: String = r.try_get("repo")?;
        let model: String = r.try_get("model")?;
        rows.add(
            &repo,
            &model,
            "developer",
            &[("merged", r.try_get("merged")?)],
            true,
        );
    }
    let wanted = repo.map(|r| r.to_string().to_ascii_lowercase());
    let mut overall = Vec::new();
    let mut repos: BTreeMap<String, Vec<ModelRow>> = BTreeMap::new();
    for ((scope, _), row) in rows.0 {
        if scope.is_empty() {
            overall.push(row);
        } else if wanted.as_ref().is_none_or(|w| *w == scope) {
            repos.entry(scope).or_default().push(row);
        }
    }
    Ok(ModelStats {
        columns: COLUMNS,
        overall,
        repos: repos
            .into_iter()
            .map(|(repo, models)| RepoModels { repo, models })
            .collect(),
    })
}

fn call_figures(r: &sqlx::sqlite::SqliteRow) -> AppResult<Vec<(&'static str, i64)>> {
    Ok(vec![
        ("calls", r.try_get("calls")?),
        ("failed_calls", r.try_get("failed")?),
        ("prompt_tokens", r.try_get("pt")?),
        ("completion_tokens", r.try_get("ct")?),
        ("model_ms", r.try_get("ms")?),
    ])
}

/// `part` of `whole` as a whole percentage, when both were recorded and `whole` > 0.
pub fn percent(part: Option<i64>, whole: Option<i64>) -> Option<i64> {
    match (part, whole) {
        (Some(p), Some(w)) if w > 0 => Some((p * 100 + w / 2) / w),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_need_both_figures() {
        assert_eq!(percent(Some(1), Some(3)), Some(33));
        assert_eq!(percent(Some(2), Some(3)), Some(67));
        assert_eq!(percent(Some(0), Some(0)), None);
        assert_eq!(percent(None, Some(4)), None);
    }

    #[test]
    fn rows_add_to_their_repo_and_overall() {
        let mut rows = Rows::default();
        rows.add("a/b", "m", "developer", &[("prs_opened", 2)], true);
        rows.add("c/d", "m", "developer", &[("prs_opened", 1)], true);
        rows.add("c/d", "m", "reviewer", &[("calls", 4)], false);
        assert_eq!(rows.row("", "m").get("prs_opened"), Some(3));
        assert_eq!(rows.row("", "m").get("calls"), None);
        assert_eq!(rows.row("c/d", "m").get("calls"), Some(4));
        assert_eq!(rows.row("c/d", "m").roles, vec!["developer", "reviewer"]);
    }
}
