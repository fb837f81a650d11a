//! One sticky status comment per issue (or, for a task without an issue, per task PR):
//! created once, then edited in place as the work moves, with a timeline of what happened,
//! when, and in which run. Its id is kept in the store; after a crash it is found again by
//! its marker among gaffer's own comments, so there is never a second one. On issues the
//! state is mirrored by one status label, changed with at most two calls (add the new,
//! remove the old). A status update never fails the work it reports on: errors are logged.

use std::sync::LazyLock;

use crate::error::AppResult;
use crate::forge::{once, Comment, Forge, ForgeError};
use crate::locks::KeyedLocks;
use crate::registry::{IssueLabels, Repo};
use crate::store::{StatusLine, StatusRecord};
use crate::Gaffer;

/// What every status comment carries, so it is found again.
pub const MARKER: &str = "<!-- gaffer:status -->";
/// Timeline lines kept in the comment (the oldest are dropped).
const MAX_LINES: usize = 40;

/// Status updates of one issue or PR never interleave.
static LOCKS: LazyLock<KeyedLocks> = LazyLock::new(KeyedLocks::default);

/// Where the work on an issue or PR stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Running,
    Review,
    Iterating,
    Merged,
    Done,
    Blocked,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Review => "in review",
            Phase::Iterating => "iterating",
            Phase::Merged => "merged",
            Phase::Done => "done",
            Phase::Blocked => "blocked",
            Phase::Stopped => "stopped",
        }
    }

    /// The status label this phase shows on an issue.
    pub fn label(self, labels: &IssueLabels) -> &str {
        match self {
            Phase::Queued => &labels.queued,
            Phase::Running | Phase::Iterating => &labels.running,
            Phase::Review => &labels.review,
            Phase::Merged | Phase::Done => &labels.done,
            Phase::Blocked | Phase::Stopped => &labels.blocked,
        }
    }

    fn from_str(text: &str) -> Option<Phase> {
        [
            Phase::Queued,
            Phase::Running,
            Phase::Review,
            Phase::Iterating,
            Phase::Merged,
            Phase::Done,
            Phase::Blocked,
            Phase::Stopped,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// What a status comment is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub number: u64,
    /// An issue (labels mirror its state) rather than a PR.
    pub issue: bool,
}

/// Text from strangers or models made safe for one table cell: no markup of ours, no
/// line breaks, no cell separators, bounded.
fn cell(text: &str) -> String {
    let clean = crate::llm::prompt::sanitize(text)
        .replace(['\n', '\r'], " ")
        .replace('|', "/")
        .replace('<', "&lt;");
    let mut out: String = clean.chars().take(300).collect();
    if clean.chars().count() > 300 {
        out.push_str(" [...]");
    }
    out
}

/// The comment's body for a timeline (pure).
pub fn render(subject: Subject, lines: &[StatusLine]) -> String {
    let phase = lines.last().map(|l| l.phase.as_str()).unwrap_or("queued");
    let what = if subject.issue {
        "issue"
    } else {
        "pull request"
    };
    let mut out = format!(
        "{MARKER}\n### gaffer: **{phase}**\n\ngaffer keeps this comment up to date while it works on this {what}.\n\n| when (UTC) | state | what happened | run |\n| --- | --- | --- | --- |\n"
    );
    for line in lines {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            line.at,
            line.phase,
            cell(&line.text),
            line.run.map(|r| r.to_string()).unwrap_or_default()
        ));
    }
    out.push_str("\n<sub>Maintainers can comment `/gaffer retry`, `/gaffer stop`, `/gaffer plan`");
    if !subject.issue {
        out.push_str(", `/gaffer fix <what to change>`");
    }
    out.push_str(".</sub>\n");
    out
}

fn now_utc() -> String {
    utc_now(' ')
}

/// The time now in UTC, `YYYY-MM-DD<sep>HH:MM:SS` (`T` and a `Z` added: RFC 3339).
pub fn utc_now(sep: char) -> String {
    let now = time::OffsetDateTime::now_utc();
    let zone = if sep == 'T' { "Z" } else { "" };
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}{zone}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// The phase last reported for `number` (`None` before any report).
pub async fn phase_of(gaffer: &Gaffer, repo: &Repo, number: u64) -> Option<Phase> {
    let record = gaffer
        .store
        .status_record(&repo.full_name, number)
        .await
        .ok()?;
    Phase::from_str(&record.phase)
}

/// Adds a line to the subject's status comment (creating it the first time) and mirrors
/// the phase in its labels. Logged, never failing: a status is a report, not the work.
pub async fn report(
    gaffer: &Gaffer,
    repo: &Repo,
    subject: Subject,
    phase: Phase,
    text: &str,
    run: Option<i64>,
) {
    // Observe mode writes nothing to the repo; neither does a status.
    if repo.mode != crate::registry::Mode::Pr {
        return;
    }
    if let Err(e) = try_report(gaffer, repo, subject, phase, text, run).await {
        tracing::warn!(repo = %repo.full_name, number = subject.number, error = %e, "could not update the status comment");
    }
}

async fn try_report(
    gaffer: &Gaffer,
    repo: &Repo,
    subject: Subject,
    phase: Phase,
    text: &str,
    run: Option<i64>,
) -> AppResult<()> {
    let _one_at_a_time = LOCKS
        .lock(&format!("{}#{}", repo.full_name, subject.number))
        .await;
    let store = &gaffer.store;
    let mut record = store.status_record(&repo.full_name, subject.number).await?;
    let same = record
        .lines
        .last()
        .is_some_and(|l| l.phase == phase.as_str() && l.text == text);
    if !same {
        record.lines.push(StatusLine {
            at: now_utc(),
            phase: phase.as_str().to_string(),
            text: text.to_string(),
            run,
        });
        let extra = record.lines.len().saturating_sub(MAX_LINES);
        record.lines.drain(..extra);
    }
    record.phase = phase.as_str().to_string();
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    let body = render(subject, &record.lines);
    if record.comment_id.is_none() || body != record.body {
        let comment = write_comment(
            forge.as_ref(),
            &name,
            subject.number,
            record.comment_id,
            &body,
        )
        .await?;
        record.comment_id = Some(comment.id);
        record.body = body;
        // Saved at once: the comment exists, whatever happens to the labels.
        store
            .save_status_record(&repo.full_name, subject.number, &record)
            .await?;
    }
    if subject.issue {
        let wanted = phase.label(&repo.overrides.labels).to_string();
        if record.label.as_deref() != Some(wanted.as_str()) {
            forge
                .add_labels(&name, subject.number, std::slice::from_ref(&wanted))
                .await?;
            if let Some(old) = record.label.as_deref().filter(|old| *old != wanted) {
                forge.remove_label(&name, subject.number, old).await?;
            }
            record.label = Some(wanted);
        }
    }
    store
        .save_status_record(&repo.full_name, subject.number, &record)
        .await
}

/// Edits the known comment, or finds gaffer's own comment by its marker, or posts it once.
async fn write_comment(
    forge: &dyn Forge,
    name: &crate::registry::FullName,
    number: u64,
    known: Option<u64>,
    body: &str,
) -> AppResult<Comment> {
    if let Some(id) = known {
        match forge.update_comment(name, id, body).await {
            Ok(comment) => return Ok(comment),
            // Deleted by someone: a new one is posted below.
            Err(ForgeError::NotFound { .. }) => {}
            Err(ForgeError::Local { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let me = forge.identity().await?;
    let mine = |c: &Comment| c.author.eq_ignore_ascii_case(&me) && c.body.contains(MARKER);
    let written = once::write_once(
        &format!("status comment on {name}#{number}"),
        || async {
            Ok(forge
                .comments(name, number)
                .await?
                .into_iter()
                .find(|c| mine(c)))
        },
        || forge.create_comment(name, number, body),
    )
    .await?;
    let (comment, created) = written.into_parts();
    if !created && comment.body != body {
        // Found after a crash: bring it up to date.
        return Ok(forge.update_comment(name, comment.id, body).await?);
    }
    Ok(comment)
}

/// Records `/gaffer stop` (or lifts it) for `number`.
pub async fn set_stopped(
    gaffer: &Gaffer,
    repo: &Repo,
    number: u64,
    stopped: bool,
) -> AppResult<()> {
    let mut record: StatusRecord = gaffer.store.status_record(&repo.full_name, number).await?;
    record.stopped = stopped;
    gaffer
        .store
        .save_status_record(&repo.full_name, number, &record)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_shows_the_latest_phase_and_keeps_strangers_text_inert() {
        let lines = vec![
            StatusLine {
                at: "2026-12-01 10:00:00".into(),
                phase: "queued".into(),
                text: "labelled by a MEMBER".into(),
                run: None,
            },
            StatusLine {
                at: "2026-12-01 10:01:00".into(),
                phase: "blocked".into(),
                text: "model said | <!-- gaffer:status --> <script>\nline two".into(),
                run: Some(7),
            },
        ];
        let body = render(
            Subject {
                number: 3,
                issue: true,
            },
            &lines,
        );
        assert!(body.starts_with(MARKER));
        assert_eq!(body.matches(MARKER).count(), 1);
        assert!(body.contains("### gaffer: **blocked**"));
        assert!(
            body.contains(
                "| 2026-12-01 10:01:00 | blocked | model said /  &lt;script> line two | 7 |"
            ),
            "{body}"
        );
        assert!(!body.contains("/gaffer fix"));
        assert!(render(
            Subject {
                number: 3,
                issue: false
            },
            &lines
        )
        .contains("/gaffer fix"));
    }

    #[test]
    fn labels_follow_the_phase() {
        let labels = IssueLabels::default();
        assert_eq!(Phase::Queued.label(&labels), "gaffer:queued");
        assert_eq!(Phase::Iterating.label(&labels), "gaffer:running");
        assert_eq!(Phase::Review.label(&labels), "gaffer:review");
        assert_eq!(Phase::Merged.label(&labels), "gaffer:done");
        assert_eq!(Phase::Stopped.label(&labels), "gaffer:blocked");
        assert_eq!(Phase::from_str("in review"), Some(Phase::Review));
    }
}
