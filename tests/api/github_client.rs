//! The GitHub client against the fake GitHub: headers, conditional requests, budget,
//! secondary limits, retries, errors, pagination, and each endpoint the roles use.

use std::time::Duration;

use gaffer::forge::github::{ClientOptions, GithubClient, GithubForge, WriteLimits};
use gaffer::forge::{
    CiState, Forge, ForgeError, NewPull, NewReview, PullState, PullUpdate, ReviewEvent,
};
use gaffer::registry::FullName;
use secrecy::SecretString;

use crate::support::fake_github::{FakeGithub, Fault};

const TOKEN: &str = "ghp_test_token_never_logged";

fn options(api_url: &str) -> ClientOptions {
    let mut o = ClientOptions::new(api_url, Some(SecretString::from(TOKEN)));
    o.backoff_base = Duration::from_millis(10);
    o.secondary_default_wait = Duration::from_secs(1);
    o.max_inline_wait = Duration::from_secs(5);
    o.write_limits = WriteLimits {
        min_gap: Duration::ZERO,
        ..WriteLimits::default()
    };
    o.min_remaining_budget = 10;
    o.request_timeout = Duration::from_secs(5);
    o
}

fn forge(fake: &FakeGithub) -> GithubForge {
    forge_with(fake, |_| {})
}

fn forge_with(fake: &FakeGithub, tweak: impl FnOnce(&mut ClientOptions)) -> GithubForge {
    let mut o = options(&fake.api_url());
    tweak(&mut o);
    GithubForge::new(GithubClient::new(o).unwrap())
}

fn name(full: &str) -> FullName {
    FullName::parse(full).unwrap()
}

async fn fake_with_repo() -> (FakeGithub, FullName) {
    let fake = FakeGithub::start().await;
    fake.create_repo("acme/widget", None);
    (fake, name("acme/widget"))
}

#[tokio::test]
async fn sends_the_headers_github_asks_for() {
    let (fake, repo) = fake_with_repo().await;
    fake.require_token(TOKEN);
    let info = forge(&fake).repo_info(&repo).await.unwrap();
    assert_eq!(info.default_branch, "main");
    assert!(info.clone_url.starts_with("file://"));
    let request = fake.log().pop().unwrap();
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        request.accept.as_deref(),
        Some("application/vnd.github+json")
    );
    assert_eq!(request.api_version.as_deref(), Some("2022-11-28"));
    assert!(request.user_agent.unwrap().starts_with("gaffer/"));
}

#[tokio::test]
async fn the_enterprise_api_prefix_works() {
    let (fake, repo) = fake_with_repo().await;
    let ghe = GithubForge::new(GithubClient::new(options(&fake.enterprise_api_url())).unwrap());
    assert_eq!(ghe.repo_info(&repo).await.unwrap().full_name, "acme/widget");
    assert!(fake.log()[0].path.starts_with("/api/v3/repos/acme/widget"));
}

#[tokio::test]
async fn an_unchanged_resource_costs_nothing_the_second_time() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    fake.open_pull_after_commit("acme/widget", "feature/T-0001-x");
    let first = forge.list_pulls(&repo, PullState::Open).await.unwrap();
    let remaining_after_first = fake.rate_remaining();
    let second = forge.list_pulls(&repo, PullState::Open).await.unwrap();
    assert_eq!(first, second, "a 304 serves the cached body");
    assert_eq!(
        fake.rate_remaining(),
        remaining_after_first,
        "the 304 spent nothing"
    );
    let log = fake.log();
    assert_eq!(log.last().unwrap().status, 304);
    assert!(log.last().unwrap().if_none_match.is_some());
    let counters = forge.client().counters();
    assert_eq!(
        (
            counters.requests,
            counters.not_modified,
            counters.units_spent
        ),
        (2, 1, 1)
    );

    // The resource changes: the ETag changes, and the new body arrives.
    fake.commit(
        "acme/widget",
        "feature/T-0001-x",
        &[("b.txt", "b\n")],
        "more",
    );
    let third = forge.list_pulls(&repo, PullState::Open).await.unwrap();
    assert_ne!(third[0].head_sha, first[0].head_sha);
    assert_eq!(fake.log().last().unwrap().status, 200);
}

#[tokio::test]
async fn below_the_minimum_budget_it_stops_calling_and_says_when_it_resets() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge_with(&fake, |o| o.min_remaining_budget = 100);
    fake.set_rate_remaining(101, 1800);
    forge.repo_info(&repo).await.unwrap(); // leaves 100: not under the minimum yet
    forge.repo_info(&repo).await.unwrap(); // a 304: free, still 100
    forge.branch_sha(&repo, "main").await.unwrap(); // leaves 99: under it
    let sent = fake.log().len();
    let err = forge.list_pulls(&repo, PullState::Open).await.unwrap_err();
    assert!(
        matches!(
            err,
            ForgeError::RateLimited {
                secondary: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.log()[1].status, 304);
    assert!(err.to_string().contains("MIN_REMAINING_BUDGET"), "{err}");
    assert_eq!(fake.log().len(), sent, "no request was sent");
    assert!(forge.client().counters().refused_for_budget >= 1);
    assert_eq!(forge.client().budget().unwrap().remaining, Some(99));
}

#[tokio::test]
async fn an_exhausted_primary_limit_is_reported_not_retried() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge_with(&fake, |o| o.min_remaining_budget = 0);
    fake.set_rate_remaining(0, 600);
    let err = forge.repo_info(&repo).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::RateLimited { secondary: false, resets_at } if resets_at > 0),
        "{err:?}"
    );
    assert_eq!(fake.log().len(), 1);
}

#[tokio::test]
async fn secondary_limits_are_waited_out_as_github_documents() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    fake.inject(
        Fault::Secondary {
            retry_after: Some(1),
        },
        1,
    );
    forge.repo_info(&repo).await.unwrap();
    fake.inject(Fault::Secondary { retry_after: None }, 1);
    forge.repo_info(&repo).await.unwrap();
    fake.inject(
        Fault::TooManyRequests {
            retry_after: Some(1),
        },
        1,
    );
    forge.repo_info(&repo).await.unwrap();
    let counters = forge.client().counters();
    assert_eq!(counters.secondary_waits, 3);
    assert_eq!(
        fake.log().len(),
        6,
        "each limited call was retried once, never hammered"
    );
}

#[tokio::test]
async fn a_secondary_wait_longer_than_allowed_becomes_an_error_with_the_time() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    fake.inject(
        Fault::TooManyRequests {
            retry_after: Some(600),
        },
        1,
    );
    let err = forge.repo_info(&repo).await.unwrap_err();
    assert!(
        matches!(
            err,
            ForgeError::RateLimited {
                secondary: true,
                ..
            }
        ),
        "{err:?}"
    );
    // Until the cooldown passes, nothing more is sent.
    let sent = fake.log().len();
    assert!(forge.repo_info(&repo).await.is_err());
    assert_eq!(fake.log().len(), sent);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    fake.inject(Fault::Status(502), 2);
    forge.repo_info(&repo).await.unwrap();
    assert_eq!(forge.client().counters().retries, 2);

    fake.inject(Fault::Status(500), 10);
    let err = forge.repo_info(&repo).await.unwrap_err();
    assert!(matches!(err, ForgeError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
}

#[tokio::test]
async fn timeouts_are_retried() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge_with(&fake, |o| o.request_timeout = Duration::from_millis(300));
    fake.inject(Fault::Delay(Duration::from_secs(2)), 1);
    forge.repo_info(&repo).await.unwrap();
    assert_eq!(forge.client().counters().retries, 1);
}

#[tokio::test]
async fn bad_credentials_say_what_to_do_and_never_show_the_token() {
    let (fake, repo) = fake_with_repo().await;
    fake.require_token("the-right-one");
    let forge = forge(&fake);
    let err = forge.repo_info(&repo).await.unwrap_err();
    assert_eq!(err, ForgeError::Unauthorized);
    assert!(err.to_string().contains("token invalid or expired"));
    assert!(!err.to_string().contains(TOKEN));
    assert!(
        !format!("{forge:?}").contains(TOKEN),
        "Debug output redacts the token"
    );
}

#[tokio::test]
async fn a_missing_repo_says_not_found_or_no_access() {
    let fake = FakeGithub::start().await;
    let err = forge(&fake)
        .repo_info(&name("acme/nothing"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("acme/nothing") && text.contains("Contents and Pull requests"),
        "{text}"
    );
}

#[tokio::test]
async fn validation_errors_carry_githubs_message() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    let base = forge.branch_sha(&repo, "main").await.unwrap().unwrap();
    forge
        .create_branch(&repo, "feature/T-0001-x", &base)
        .await
        .unwrap();
    let again = forge
        .create_branch(&repo, "feature/T-0001-x", &base)
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("Reference already exists"),
        "{again}"
    );

    fake.commit(
        "acme/widget",
        "feature/T-0001-x",
        &[("a.txt", "a\n")],
        "work",
    );
    let pull = NewPull {
        title: "T-0001".into(),
        head: "feature/T-0001-x".into(),
        base: "main".into(),
        body: "b".into(),
    };
    forge.create_pull(&repo, &pull).await.unwrap();
    let dup = forge.create_pull(&repo, &pull).await.unwrap_err();
    assert!(dup.is_pull_already_exists(), "{dup}");
    assert!(
        dup.to_string().contains("A pull request already exists"),
        "{dup}"
    );
}

#[tokio::test]
async fn listings_follow_link_pagination() {
    let (fake, repo) = fake_with_repo().await;
    for i in 0..120 {
        fake.open_pull_after_commit("acme/widget", &format!("feature/T-{i:04}-x"));
    }
    let forge = forge(&fake);
    let pulls = forge.list_pulls(&repo, PullState::Open).await.unwrap();
    assert_eq!(pulls.len(), 120);
    assert_eq!(fake.log().len(), 2, "two pages of 100");
    let mut numbers: Vec<u64> = pulls.iter().map(|p| p.number).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 120, "no page read twice");
}

#[tokio::test]
async fn files_directories_and_refs() {
    let (fake, repo) = fake_with_repo().await;
    fake.commit(
        "acme/widget",
        "main",
        &[
            ("tasks/T-0001-ci.md", "---\nid: T-0001\n---\nbody\n"),
            ("docs/PRD.md", "# PRD\n"),
        ],
        "tasks",
    );
    let forge = forge(&fake);
    let file = forge
        .file(&repo, "tasks/T-0001-ci.md", "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.text, "---\nid: T-0001\n---\nbody\n");
    assert_eq!(file.sha.len(), 40);
    assert!(forge
        .file(&repo, "tasks/nope.md", "main")
        .await
        .unwrap()
        .is_none());
    let entries = forge
        .list_dir(&repo, "tasks", "main")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].path, "tasks/T-0001-ci.md");
    let root = forge.list_dir(&repo, "", "main").await.unwrap().unwrap();
    assert!(root.iter().any(|e| e.name == "docs"));
    assert!(forge
        .list_dir(&repo, "nothing", "main")
        .await
        .unwrap()
        .is_none());
    assert!(forge.branch_sha(&repo, "nope").await.unwrap().is_none());
}

#[tokio::test]
async fn pulls_comments_reviews_labels_and_ci() {
    let (fake, repo) = fake_with_repo().await;
    let forge = forge(&fake);
    let number = fake.open_pull_after_commit("acme/widget", "feature/T-0002-y");
    let pull = forge.pull(&repo, number).await.unwrap();
    assert_eq!(pull.head_ref, "feature/T-0002-y");
    assert_eq!(pull.state, PullState::Open);
    let files = forge.pull_files(&repo, number).await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].patch.as_deref().unwrap().contains("+work"));

    let updated = forge
        .update_pull(
            &repo,
            number,
            &PullUpdate {
                body: Some("new body".into()),
                ..PullUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.body, "new body");

    let comment = forge.create_comment(&repo, number, "first").await.unwrap();
    forge
        .update_comment(&repo, comment.id, "first, edited")
        .await
        .unwrap();
    let comments = forge.comments(&repo, number).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "first, edited");

    let review = NewReview {
        commit_id: pull.head_sha.clone(),
        body: "looks fine".into(),
        event: ReviewEvent::Comment,
    };
    forge.create_review(&repo, number, &review).await.unwrap();
    let reviews = forge.reviews(&repo, number).await.unwrap();
    assert_eq!(
        reviews[0].commit_id.as_deref(),
        Some(pull.head_sha.as_str())
    );
    assert_eq!(reviews[0].state, "COMMENTED");

    forge
        .add_labels(&repo, number, &["gaffer".into(), "T-0002".into()])
        .await
        .unwrap();
    forge.remove_label(&repo, number, "T-0002").await.unwrap();
    forge.remove_label(&repo, number, "absent").await.unwrap();
    assert_eq!(fake.labels("acme/widget", number), ["gaffer"]);

    assert_eq!(
        forge.ci_status(&repo, &pull.head_sha).await.unwrap().state,
        CiState::None
    );
    fake.add_check_run("acme/widget", &pull.head_sha, "tests", "in_progress", None);
    assert_eq!(
        forge.ci_status(&repo, &pull.head_sha).await.unwrap().state,
        CiState::Pending
    );
    fake.set_status("acme/widget", &pull.head_sha, "ci/lint", "failure");
    let ci = forge.ci_status(&repo, &pull.head_sha).await.unwrap();
    assert_eq!(ci.state, CiState::Failure);
    assert_eq!(ci.checks.len(), 2);

    fake.merge("acme/widget", number).unwrap();
    let closed = forge.list_pulls(&repo, PullState::Closed).await.unwrap();
    assert!(closed[0].is_merged());
}
