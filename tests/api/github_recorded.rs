//! The GitHub client against responses GitHub really sent (recorded by other projects,
//! see tests/fixtures/github/README.md).

use std::time::Duration;

use gaffer::forge::github::{ClientOptions, GithubClient, GithubForge, WriteLimits};
use gaffer::forge::{Forge, ForgeError, NewPull};
use gaffer::registry::FullName;
use secrecy::SecretString;

use crate::support::replay::Replay;

fn forge(url: &str) -> GithubForge {
    let mut o = ClientOptions::new(url, Some(SecretString::from("ghp_recorded")));
    o.backoff_base = Duration::from_millis(10);
    o.secondary_default_wait = Duration::from_secs(1);
    o.max_inline_wait = Duration::from_secs(5);
    o.min_remaining_budget = 0;
    o.write_limits = WriteLimits {
        min_gap: Duration::ZERO,
        ..WriteLimits::default()
    };
    GithubForge::new(GithubClient::new(o).unwrap())
}

fn repo() -> FullName {
    FullName::parse("hub4j-test-org/github-api").unwrap()
}

#[tokio::test]
async fn a_recorded_etag_is_sent_back_and_the_304_is_served_from_cache() {
    // Interactions 3 and 4: GET repo -> 200 with a weak ETag, then 304.
    let replay = Replay::start("hub4j-github-api/conditional-get-repo-etag-304.json", 3).await;
    let forge = forge(&replay.url);
    let first = forge.repo_info(&repo()).await.unwrap();
    let second = forge.repo_info(&repo()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.full_name, "hub4j-test-org/github-api");
    let requests = replay.requests();
    assert!(requests[0].2.is_none());
    assert!(
        requests[1].2.as_deref().unwrap().contains("W/\""),
        "recorded ETag sent back: {requests:?}"
    );
    let counters = forge.client().counters();
    assert_eq!((counters.not_modified, counters.units_spent), (1, 1));
}

#[tokio::test]
async fn recorded_401_bad_credentials() {
    let replay = Replay::start("octokit-rb/error-401-bad-credentials.json", 0).await;
    let err = forge(&replay.url).repo_info(&repo()).await.unwrap_err();
    assert_eq!(err, ForgeError::Unauthorized);
}

#[tokio::test]
async fn a_recorded_403_permission_error_is_not_taken_for_a_rate_limit() {
    let replay = Replay::start(
        "hub4j-github-api/error-403-permission-not-ratelimit.json",
        2,
    )
    .await;
    let forge = forge(&replay.url);
    let err = forge.repo_info(&repo()).await.unwrap_err();
    assert!(matches!(err, ForgeError::NoAccess { .. }), "{err:?}");
    assert_eq!(replay.requests().len(), 1, "no waiting, no retry");
    assert_eq!(forge.client().counters().secondary_waits, 0);
}

#[tokio::test]
async fn a_recorded_secondary_403_without_retry_after_is_waited_out() {
    let replay = Replay::start(
        "hub4j-github-api/secondary-rate-limit-403-hand-edited.json",
        1,
    )
    .await;
    let forge = forge(&replay.url);
    let info = forge.repo_info(&repo()).await.unwrap();
    assert!(info
        .full_name
        .contains("temp-testHandler_Wait_Secondary_Limits"));
    assert_eq!(forge.client().counters().secondary_waits, 1);
    assert_eq!(replay.requests().len(), 2);
}

#[tokio::test]
async fn a_recorded_429_retry_after_longer_than_allowed_is_reported_with_its_time() {
    let replay = Replay::start(
        "hub4j-github-api/secondary-rate-limit-429-retry-after-hand-edited.json",
        1,
    )
    .await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let err = forge(&replay.url).repo_info(&repo()).await.unwrap_err();
    match err {
        ForgeError::RateLimited {
            resets_at,
            secondary: true,
        } => {
            assert!(
                resets_at >= before + 8 && resets_at <= before + 10,
                "retry-after: 8 honoured"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_recorded_422_carries_githubs_validation_message() {
    let file = "octokit-fixtures/errors-422-validation-failed.json";
    let doc = crate::support::replay::fixture(file);
    let at_422 = doc["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|i| i["response"]["status"] == 422)
        .unwrap();
    let replay = Replay::start(file, at_422).await;
    let pull = NewPull {
        title: "t".into(),
        head: "h".into(),
        base: "main".into(),
        body: String::new(),
    };
    let err = forge(&replay.url)
        .create_pull(&repo(), &pull)
        .await
        .unwrap_err();
    match err {
        ForgeError::Validation { message } => {
            assert!(message.contains("Validation Failed"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn recorded_pagination_links_to_another_host_are_not_followed() {
    // The recorded Link headers point at https://api.github.com: a client configured for
    // another host must not send its token there.
    let doc = crate::support::replay::fixture("octokit-fixtures/paginate-issues.json");
    let first_page = doc["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|i| {
            i["response"]["headers"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.eq_ignore_ascii_case("link"))
        })
        .unwrap();
    let replay = Replay::start("octokit-fixtures/paginate-issues.json", first_page).await;
    let forge = forge(&replay.url);
    let url = forge
        .client()
        .url(&["repos", "octokit-fixture-org", "paginate-issues", "issues"]);
    let items: Vec<serde_json::Value> = forge.client().get_all(url).await.unwrap();
    assert!(!items.is_empty());
    assert_eq!(replay.requests().len(), 1);
}
