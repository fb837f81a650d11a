//! Exactly once under faults: writes that may have happened are looked up, not replayed;
//! a merged or closed task PR counts as that task's PR; GitHub's nullable fields, paged CI
//! listings and label names with a `/` are handled.

use std::time::Duration;

use gaffer::forge::github::{ClientOptions, GithubClient, GithubForge, WriteLimits};
use gaffer::forge::{once, CiState, Forge, ForgeError, NewPull, NewReview, ReviewEvent};
use gaffer::registry::FullName;

use crate::support::fake_github::{FakeGithub, Fault};

const REPO: &str = "acme/widget";

fn forge(fake: &FakeGithub) -> GithubForge {
    let mut o = ClientOptions::new(&fake.api_url(), None);
    o.backoff_base = Duration::from_millis(10);
    o.write_limits = WriteLimits {
        min_gap: Duration::ZERO,
        ..WriteLimits::default()
    };
    o.request_timeout = Duration::from_millis(800);
    GithubForge::new(GithubClient::new(o).unwrap())
}

async fn setup() -> (FakeGithub, GithubForge, FullName) {
    let fake = FakeGithub::start().await;
    fake.create_repo(REPO, None);
    let forge = forge(&fake);
    (fake, forge, FullName::parse(REPO).unwrap())
}

fn posts(fake: &FakeGithub, suffix: &str) -> usize {
    fake.log()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
        .count()
}

#[tokio::test]
async fn a_post_is_never_replayed_blindly_but_reads_are_retried() {
    let (fake, forge, repo) = setup().await;
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-x");
    let head = forge.pull(&repo, number).await.unwrap().head_sha;
    let review = NewReview {
        commit_id: head,
        body: "<!-- m -->\nfine".into(),
        event: ReviewEvent::Comment,
    };
    for fault in [
        Fault::AfterWrite502,
        Fault::AfterWriteDrop,
        Fault::AfterWriteStall(Duration::from_secs(2)),
    ] {
        fake.inject(fault.clone(), 1);
        let err = forge
            .create_review(&repo, number, &review)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ForgeError::AmbiguousWrite { .. }),
            "{fault:?}: {err:?}"
        );
    }
    assert_eq!(posts(&fake, "/reviews"), 3, "one POST per call, no replay");
    assert_eq!(fake.reviews(REPO, number).len(), 3, "each was done");
    // A read after a 502 is retried as before.
    fake.inject(Fault::Status(502), 1);
    forge.reviews(&repo, number).await.unwrap();
}

#[tokio::test]
async fn the_one_helper_looks_up_before_writing_again() {
    let (fake, forge, repo) = setup().await;
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-x");
    let head = forge.pull(&repo, number).await.unwrap().head_sha;
    let marker = "<!-- gaffer:task=T-0001 role=reviewer sha=x -->";
    let review = NewReview {
        commit_id: head,
        body: format!("{marker}\nfine"),
        event: ReviewEvent::Comment,
    };
    // Done, then 502: found by its marker, not posted again.
    fake.inject(Fault::AfterWrite502, 1);
    let (posted, created) = once::post_review(&forge, &repo, number, &review, marker)
        .await
        .unwrap()
        .into_parts();
    assert!(created && posted.body.contains(marker));
    assert_eq!(fake.reviews(REPO, number).len(), 1);
    assert_eq!(posts(&fake, "/reviews"), 1);
    // Already there: found, nothing written.
    let again = once::post_review(&forge, &repo, number, &review, marker)
        .await
        .unwrap();
    assert!(matches!(again, once::Written::Found(_)));
    assert_eq!(posts(&fake, "/reviews"), 1);

    // Comments: the same, by the comment's marker.
    let body = "<!-- gaffer:note -->\nhello";
    fake.inject(Fault::AfterWriteDrop, 1);
    once::post_comment(&forge, &repo, number, body, "<!-- gaffer:note -->")
        .await
        .unwrap();
    assert_eq!(fake.comments(REPO, number).len(), 1);

    // A POST that failed before doing anything (502 up front): the lookup says "not done",
    // so it is sent again, once.
    let other = "<!-- gaffer:other -->";
    fake.inject(Fault::Delay(Duration::ZERO), 1); // the first lookup passes
    fake.inject(Fault::Status(502), 1);
    once::post_comment(&forge, &repo, number, &format!("{other}\nhi"), other)
        .await
        .unwrap();
    assert_eq!(fake.comments(REPO, number).len(), 2);
    assert_eq!(posts(&fake, "/comments"), 3);
}

#[tokio::test]
async fn a_merged_pr_from_the_branch_is_the_tasks_pr() {
    let (fake, forge, repo) = setup().await;
    let branch = "feature/plan-T-0001-x";
    let number = fake.open_pull_after_commit(REPO, branch);
    fake.merge(REPO, number).unwrap();
    let pull = NewPull {
        title: "T-0001".into(),
        head: branch.into(),
        base: "main".into(),
        body: "b".into(),
    };
    let found = once::open_pull(&forge, &repo, &pull).await.unwrap();
    match found {
        once::Written::Found(pr) => assert!(pr.number == number && pr.is_merged()),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.pulls(REPO).len(), 1, "no second PR");
    // The timeout case: created, the answer stalled past the timeout; the lookup finds it.
    let fresh = "feature/T-0002-y";
    fake.commit(REPO, fresh, &[("y.txt", "y\n")], "y");
    fake.inject(Fault::AfterWriteStall(Duration::from_secs(2)), 1);
    let pull = NewPull {
        head: fresh.into(),
        ..pull
    };
    let (pr, created) = once::open_pull(&forge, &repo, &pull)
        .await
        .unwrap()
        .into_parts();
    assert!(created && pr.head_ref == fresh);
    assert_eq!(fake.pulls(REPO).len(), 2);
}

#[tokio::test]
async fn a_label_with_a_slash_is_one_path_segment() {
    let (fake, forge, repo) = setup().await;
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-x");
    forge
        .add_labels(&repo, number, &["a/b".into(), "keep".into()])
        .await
        .unwrap();
    fake.clear_log();
    forge.remove_label(&repo, number, "a/b").await.unwrap();
    assert_eq!(fake.labels(REPO, number), ["keep"]);
    let delete = fake.log().pop().unwrap();
    assert!(delete.path.ends_with("/labels/a%2Fb"), "{}", delete.path);
    assert_eq!(delete.status, 200);
}

#[tokio::test]
async fn ci_state_reads_every_page_of_check_runs_and_statuses() {
    let (fake, forge, repo) = setup().await;
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-x");
    let sha = forge.pull(&repo, number).await.unwrap().head_sha;
    for i in 0..130 {
        fake.add_check_run(
            REPO,
            &sha,
            &format!("job-{i}"),
            "completed",
            Some("success"),
        );
    }
    // The one failure is on the second page of 100 (and past GitHub's default 30).
    fake.add_check_run(REPO, &sha, "job-late", "completed", Some("failure"));
    for i in 0..35 {
        fake.set_status(REPO, &sha, &format!("ctx-{i}"), "success");
    }
    let ci = forge.ci_status(&repo, &sha).await.unwrap();
    assert_eq!(ci.checks.len(), 131 + 35);
    assert_eq!(ci.state, CiState::Failure);
    let pages = fake
        .log()
        .iter()
        .filter(|r| r.path.contains("/check-runs"))
        .count();
    assert_eq!(pages, 2, "100 a page");
}

#[tokio::test]
async fn a_pr_by_a_deleted_account_does_not_break_listings() {
    let (fake, forge, repo) = setup().await;
    let number = fake.open_pull_after_commit(REPO, "feature/T-0001-x");
    fake.delete_author(REPO, number);
    let open = forge
        .list_pulls(&repo, gaffer::forge::PullState::Open)
        .await
        .unwrap();
    assert_eq!(open[0].author, "ghost");
    assert_eq!(forge.pull(&repo, number).await.unwrap().author, "ghost");
}

/// Through the API: a task whose PR was closed (or merged) is never given a second PR, by
/// the Taskmaster or the Developer.
#[tokio::test]
async fn a_closed_task_pr_is_never_opened_again() {
    use crate::support::app::{fake_with_app, post_ok, sample_target};
    let (fake, app) = fake_with_app("acme/tasks", "pr", Some(&sample_target()), &[]).await;
    let plan = post_ok(&app, "/run/taskmaster?repo=acme/tasks").await;
    assert_eq!(plan["action"], "opened_pr", "{plan:#}");
    let number = plan["pr"]["number"].as_u64().unwrap();
    fake.close("acme/tasks", number);
    let again = post_ok(&app, "/run/taskmaster?repo=acme/tasks").await;
    assert_eq!(again["action"], "existing_pr", "{again:#}");
    assert!(
        again["summary"].as_str().unwrap().contains("(closed)"),
        "{again:#}"
    );
    assert_eq!(fake.pulls("acme/tasks").len(), 1);

    // The Developer: its PR closed unmerged, the task still queued on main.
    let boot = post_ok(&app, "/repos/acme/tasks/bootstrap").await;
    assert_eq!(boot["action"], "opened_pr", "{boot:#}");
    let work = boot["pr"]["number"].as_u64().unwrap();
    fake.close("acme/tasks", work);
    let branch = boot["pr"]["branch"].as_str().unwrap().to_string();
    let task = branch.trim_start_matches("feature/")[..6].to_string();
    let id = gaffer::team::task::TaskId::parse(&task).unwrap();
    let text = gaffer::roles::bootstrap::task_file(&id, gaffer::team::task::Status::Queued);
    let path = format!("tasks/{task}-initialize-basic-ci-for-python.md");
    fake.commit(
        "acme/tasks",
        "main",
        &[(path.as_str(), text.as_str())],
        "queue the bootstrap task by hand",
    );
    let again = post_ok(&app, &format!("/run/developer?repo=acme/tasks&task={task}")).await;
    assert_eq!(again["action"], "existing_pr", "{again:#}");
    assert_eq!(fake.pulls("acme/tasks").len(), 2, "no second work PR");
}
