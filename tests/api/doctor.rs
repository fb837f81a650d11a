//! `gaffer doctor` against the fake GitHub holding tokens with given permissions: it passes
//! with a correctly scoped token and names exactly what a wrong one lacks.

use tempfile::TempDir;

use crate::support::app::{gaffer_bin, NO_MODELS};
use crate::support::fake_github::{FakeGithub, TokenGrant};

const TOKEN: &str = "github_pat_doctor_test";

/// Registers acme/widget in `mode` and runs `gaffer doctor` with a token holding `grant`;
/// returns the exit code and stdout.
async fn doctor(grant: TokenGrant, mode: &str) -> (Option<i32>, String) {
    doctor_with(grant, mode, &[]).await
}

/// [`doctor`] with `files` committed on acme/widget's main first.
async fn doctor_with(
    grant: TokenGrant,
    mode: &str,
    files: &[(&str, &str)],
) -> (Option<i32>, String) {
    let fake = FakeGithub::start().await;
    fake.create_repo("acme/widget", None);
    if !files.is_empty() {
        fake.commit("acme/widget", "main", files, "files for doctor");
    }
    fake.require_token(TOKEN);
    fake.grant(grant);
    let dir = TempDir::new().unwrap();
    let api = fake.api_url();
    let run = |args: Vec<String>| {
        let mut command = tokio::process::Command::new(gaffer_bin());
        command
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GH_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_WRITE_GAP_MS", "0");
        for (k, v) in NO_MODELS {
            command.env(k, v);
        }
        command.output()
    };
    let added = run(vec![
        "repos".into(),
        "add".into(),
        "acme/widget".into(),
        "--mode".into(),
        mode.into(),
        "--clone-url".into(),
        fake.clone_url("acme/widget"),
    ])
    .await
    .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let output = run(vec!["doctor".into()]).await.unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    fake.stop().await;
    (output.status.code(), text)
}

const FULL: [(&str, &str); 5] = [
    ("contents", "write"),
    ("pull_requests", "write"),
    ("workflows", "write"),
    ("statuses", "read"),
    ("checks", "read"),
];

#[tokio::test]
async fn doctor_passes_with_a_correctly_scoped_fine_grained_token() {
    let (code, text) = doctor(TokenGrant::fine_grained(&FULL), "pr").await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   github:acme/widget"), "{text}");
    assert!(
        text.contains("fine-grained token may do what pr mode needs"),
        "{text}"
    );
    // Workflows cannot be asked without a push: said, not failed.
    assert!(
        text.contains("warn github:acme/widget:unverified"),
        "{text}"
    );
    assert!(text.contains("Workflows: Read and write"), "{text}");
    assert!(text.contains("all is well"), "{text}");
    // No checks.coverage_min, nothing to say about coverage.
    assert!(!text.contains("coverage:"), "{text}");
}

#[tokio::test]
async fn doctor_warns_when_coverage_min_cannot_be_measured_and_says_when_it_can() {
    let config = (".llm-team.yml", "checks:\n  coverage_min: 85\n");
    let rust = [
        config,
        (
            "Cargo.toml",
            "[package]\nname = \"w\"\nversion = \"0.1.0\"\n",
        ),
        ("src/lib.rs", "pub fn f() {}\n"),
    ];
    let (code, text) = doctor_with(TokenGrant::fine_grained(&FULL), "pr", &rust).await;
    // A warning, not a failure.
    assert_eq!(code, Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("warn coverage:acme/widget"))
        .unwrap_or_else(|| panic!("no coverage warning in:\n{text}"));
    assert!(
        line.contains("checks.coverage_min 85 cannot be checked")
            && line.contains("only for Python")
            && line.contains("rust (Cargo.toml)"),
        "{line}"
    );

    let configured = [
        (
            ".llm-team.yml",
            "checks:\n  coverage_min: 85\n  test: ./run-tests\n",
        ),
        ("app.py", "X = 1\n"),
    ];
    let (_, text) = doctor_with(TokenGrant::fine_grained(&FULL), "pr", &configured).await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("warn coverage:acme/widget")
                && l.contains("checks.test is configured (`./run-tests`)")),
        "{text}"
    );

    crate::coverage::require_coverage_py();
    let python = [config, ("app.py", "X = 1\n")];
    let (code, text) = doctor_with(TokenGrant::fine_grained(&FULL), "pr", &python).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok   coverage:acme/widget")
                && l.contains("measured with coverage.py")
                && l.contains("via python3")),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_names_each_missing_fine_grained_permission() {
    let grant = TokenGrant::fine_grained(&[("contents", "write"), ("pull_requests", "read")]);
    let (code, text) = doctor(grant, "pr").await;
    assert_eq!(code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL github:acme/widget"))
        .unwrap_or_else(|| panic!("no failing repo line in:\n{text}"));
    for missing in [
        "Pull requests: Read and write",
        "Commit statuses: Read",
        "Checks: Read",
    ] {
        assert!(line.contains(missing), "{missing} not named in: {line}");
    }
    assert!(
        !line.contains("push access"),
        "contents write was granted: {line}"
    );
    let fix = text
        .lines()
        .find(|l| l.contains("fix: grant"))
        .unwrap_or_default();
    assert!(fix.contains("Pull requests: Read and write"), "{text}");
}

#[tokio::test]
async fn doctor_names_a_missing_contents_write_permission() {
    let grant = TokenGrant::fine_grained(&[
        ("contents", "read"),
        ("pull_requests", "write"),
        ("statuses", "read"),
        ("checks", "read"),
    ]);
    let (code, text) = doctor(grant, "pr").await;
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("Contents: Read and write"), "{text}");
}

#[tokio::test]
async fn observe_mode_needs_only_read_access() {
    let grant = TokenGrant::fine_grained(&[
        ("contents", "read"),
        ("pull_requests", "read"),
        ("statuses", "read"),
        ("checks", "read"),
    ]);
    let (code, text) = doctor(grant, "observe").await;
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("unverified"), "{text}");
}

#[tokio::test]
async fn doctor_checks_classic_scopes_from_the_x_oauth_scopes_header() {
    let (code, text) = doctor(TokenGrant::classic(&["repo", "workflow"]), "pr").await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("classic token may do what pr mode needs"),
        "{text}"
    );
    assert!(text.contains("classic scopes: repo, workflow"), "{text}");

    let (code, text) = doctor(TokenGrant::classic(&["repo"]), "pr").await;
    assert_eq!(code, Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL github:acme/widget"))
        .unwrap_or_else(|| panic!("no failing repo line in:\n{text}"));
    assert!(line.contains("classic scope `workflow`"), "{line}");
    assert!(!line.contains("`repo`"), "{line}");
}

#[tokio::test]
async fn doctor_says_which_config_file_it_used() {
    let (_, text) = doctor(TokenGrant::fine_grained(&FULL), "observe").await;
    let line = text
        .lines()
        .find(|l| l.starts_with("ok   config"))
        .unwrap_or_else(|| panic!("no config line in:\n{text}"));
    // A scratch directory holds no config file, so it is the embedded defaults (or, on a
    // machine with one, /etc/gaffer/gaffer.yaml), and the search path is named.
    assert!(
        line.contains("none found, using the embedded defaults (searched ")
            || line.contains("/etc/gaffer/gaffer.yaml (found on the search path)"),
        "{line}"
    );
}

#[tokio::test]
async fn health_checks_repos_without_spending_the_write_budget() {
    let (fake, app) =
        crate::support::app::fake_with_app("acme/widget", "pr", None, &[("GH_TOKEN", TOKEN)]).await;
    fake.require_token(TOKEN);
    fake.grant(TokenGrant::fine_grained(&FULL));
    let health: serde_json::Value = app.get("/health?repos=true").await.json().await.unwrap();
    let text = health.to_string();
    assert!(text.contains("github:acme/widget"), "{text}");
    assert!(text.contains("checked by `gaffer doctor`"), "{text}");
    let writes: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "/health wrote: {writes:?}");
}
