//! The `gaffer` binary, run as a user would, in a scratch directory.

use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::app::gaffer_bin;

/// Runs `gaffer ARGS` in `dir` with only the given environment (plus PATH).
fn gaffer(dir: &TempDir, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(gaffer_bin());
    command
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        command.env(k, v);
    }
    command.output().expect("gaffer runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn repos_commands_work_on_the_registry() {
    let dir = TempDir::new().unwrap();
    let added = gaffer(&dir, &["repos", "add", "acme/widget", "--mode", "pr"], &[]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(stdout(&added).contains("registered acme/widget"));

    let listed = gaffer(&dir, &["repos", "list"], &[]);
    assert!(stdout(&listed).contains("acme/widget"));
    assert!(stdout(&listed).contains("1 repo: 0 observe, 1 pr, 0 disabled"));

    let set = gaffer(&dir, &["repos", "set-mode", "acme_widget", "disabled"], &[]);
    assert!(set.status.success(), "{}", stderr(&set));

    let shown = gaffer(&dir, &["--json", "repos", "show", "acme/widget"], &[]);
    let repo: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(repo["mode"], "disabled");

    let removed = gaffer(&dir, &["repos", "remove", "acme/widget"], &[]);
    assert!(removed.status.success());
    let listed = gaffer(&dir, &["--json", "repos", "list"], &[]);
    let body: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(body["total"], 0);
    assert!(
        dir.path().join("data/gaffer.db").exists(),
        "default data dir is ./data"
    );
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let dir = TempDir::new().unwrap();
    gaffer(&dir, &["repos", "add", "acme/widget"], &[]);
    for (args, code) in [
        (vec!["repos", "add", "acme/widget"], 4),
        (vec!["repos", "add", "bad_owner/x"], 2),
        (vec!["repos", "show", "acme/nothing"], 3),
        (vec!["repos", "set-mode", "acme/widget", "loud"], 2),
        (vec!["repos", "remove", "acme/nothing"], 3),
    ] {
        let output = gaffer(&dir, &args, &[]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            stderr(&output).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).starts_with("gaffer: "));
    }
}

#[test]
fn a_bad_setting_stops_start_up_naming_setting_value_and_allowed() {
    let dir = TempDir::new().unwrap();
    let output = gaffer(&dir, &["repos", "list"], &[("POLL_INTERVAL_IDLE", "often")]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("POLL_INTERVAL_IDLE") && err.contains("\"often\"") && err.contains("seconds"),
        "{err}"
    );
}

#[test]
fn config_file_and_dotenv_layer_under_the_environment() {
    let dir = TempDir::new().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/gaffer.yaml"),
        "server:\n  data_dir: ./from-yaml\n",
    )
    .unwrap();
    gaffer(&dir, &["repos", "add", "acme/one"], &[]);
    assert!(dir.path().join("from-yaml/gaffer.db").exists(), "yaml read");

    std::fs::write(dir.path().join(".env"), "GAFFER_DATA_DIR=./from-dotenv\n").unwrap();
    gaffer(&dir, &["repos", "add", "acme/two"], &[]);
    assert!(
        dir.path().join("from-dotenv/gaffer.db").exists(),
        ".env beats yaml"
    );

    gaffer(
        &dir,
        &["repos", "add", "acme/three"],
        &[("GAFFER_DATA_DIR", "./from-env")],
    );
    assert!(
        dir.path().join("from-env/gaffer.db").exists(),
        "environment beats .env"
    );

    std::fs::write(dir.path().join("config/gaffer.yaml"), "server:\n  bnd: x\n").unwrap();
    let output = gaffer(&dir, &["repos", "list"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("server.bnd"));
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = TempDir::new().unwrap();
    let output = gaffer(&dir, &["serve"], &[("GAFFER_BIND", "0.0.0.0:0")]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("GAFFER_API_TOKEN") && err.contains("0.0.0.0"),
        "{err}"
    );
}

#[test]
fn help_is_everywhere() {
    let dir = TempDir::new().unwrap();
    for args in [
        vec!["--help"],
        vec!["repos", "--help"],
        vec!["repos", "add", "--help"],
        vec!["serve", "--help"],
    ] {
        let output = gaffer(&dir, &args, &[]);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage"), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_work_next_and_status_from_the_command_line() {
    let fake = crate::support::fake_github::FakeGithub::start().await;
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-target");
    fake.create_repo("acme/tally", Some(&sample));
    let dir = TempDir::new().unwrap();
    let api = fake.api_url();
    let env = [("GITHUB_API_URL", api.as_str())];
    assert!(gaffer(&dir, &["repos", "add", "acme/tally"], &env)
        .status
        .success());

    let scanned = gaffer(&dir, &["scan", "acme/tally"], &env);
    assert!(scanned.status.success(), "{}", stderr(&scanned));
    let text = stdout(&scanned);
    assert!(
        text.contains("tasks: 0 blocked, 0 done, 0 in_review, 0 queued"),
        "{text}"
    );
    assert!(text.contains("next: Taskmaster: no queued task"), "{text}");

    let next = gaffer(&dir, &["--json", "work-next", "acme_tally"], &env);
    let answer: Value = serde_json::from_slice(&next.stdout).unwrap();
    assert_eq!(answer["decision"]["role"], "taskmaster");

    let status = gaffer(&dir, &["status", "acme/tally"], &env);
    assert!(stdout(&status).contains("work-next"), "{}", stdout(&status));

    gaffer(&dir, &["repos", "set-mode", "acme/tally", "disabled"], &env);
    let refused = gaffer(&dir, &["scan", "acme/tally"], &env);
    assert_eq!(refused.status.code(), Some(4));
    assert!(stderr(&refused).contains("disabled"));
}

#[test]
fn read_commands_never_register_gh_owner_and_gh_repo() {
    let dir = TempDir::new().unwrap();
    let seed = [("GH_OWNER", "acme"), ("GH_REPO", "seeded")];
    for args in [
        vec!["--json", "repos", "list"],
        vec!["repos", "show", "acme/seeded"],
        vec!["status", "acme/seeded"],
        vec!["doctor"],
    ] {
        gaffer(&dir, &args, &seed);
        let listed = gaffer(&dir, &["--json", "repos", "list"], &[]);
        let body: Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(body["total"], 0, "{args:?} registered a repo");
    }
    // A write command seeds it (as `serve` does).
    let added = gaffer(&dir, &["repos", "add", "acme/other"], &seed);
    assert!(added.status.success(), "{}", stderr(&added));
    let listed = gaffer(&dir, &["--json", "repos", "list"], &[]);
    let body: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(body["total"], 2, "{body}");
}

#[test]
fn repos_list_columns_line_up() {
    let dir = TempDir::new().unwrap();
    for (name, mode) in [("a/b", "pr"), ("a-much-longer-owner/name", "observe")] {
        assert!(gaffer(&dir, &["repos", "add", name, "--mode", mode], &[])
            .status
            .success());
    }
    let listed = stdout(&gaffer(&dir, &["repos", "list"], &[]));
    let lines: Vec<&str> = listed.lines().take(3).collect();
    assert!(lines[0].starts_with("REPO "), "{listed}");
    for column in ["MODE", "FORGE", "BRANCH", "CLONE URL"] {
        let at = lines[0].find(column).unwrap();
        for line in &lines[1..] {
            assert_eq!(&line[at - 2..at], "  ", "{column} misaligned:\n{listed}");
            assert_ne!(&line[at..at + 1], " ", "{column} misaligned:\n{listed}");
        }
    }
    assert!(
        listed.contains("2 repos: 1 observe, 1 pr, 0 disabled"),
        "{listed}"
    );
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let dir = TempDir::new().unwrap();
    // A warning at start-up, to stderr, which is a pipe here.
    let output = gaffer(
        &dir,
        &["repos", "list"],
        &[("LLM_DEVELOPER_NUM_CTX", "4096")],
    );
    let err = stderr(&output);
    assert!(
        err.contains("WARN") && err.contains("LLM_DEVELOPER_NUM_CTX"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "ANSI escape in {err:?}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let dir = TempDir::new().unwrap();
    for (shell, marker) in [
        ("bash", "_gaffer()"),
        ("zsh", "#compdef gaffer"),
        ("fish", "complete -c gaffer"),
    ] {
        let output = gaffer(&dir, &["completions", shell], &[]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("work-next"), "{shell}: subcommands listed");
    }
    assert!(
        !dir.path().join("data").exists(),
        "completions open no database"
    );
    assert_eq!(
        gaffer(&dir, &["completions", "tcsh"], &[]).status.code(),
        Some(2)
    );
}

#[test]
fn the_config_file_is_found_in_the_data_dir_and_doctor_names_it() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("state");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("gaffer.yaml"),
        "github:\n  default_branch: trunk\n",
    )
    .unwrap();
    let data_dir = data.display().to_string();
    let vars = [("GAFFER_DATA_DIR", data_dir.as_str())];
    let added = gaffer(&dir, &["repos", "add", "acme/widget"], &vars);
    assert!(
        stdout(&added).contains("default branch: trunk"),
        "{}",
        stdout(&added)
    );
    let mut with_no_models: Vec<(&str, &str)> = vars.to_vec();
    with_no_models.extend(crate::support::app::NO_MODELS);
    let doctor = stdout(&gaffer(&dir, &["doctor"], &with_no_models));
    assert!(
        doctor.contains(&format!(
            "{} (found on the search path)",
            data.join("gaffer.yaml").display()
        )),
        "{doctor}"
    );

    // GAFFER_CONFIG wins, and a missing one is an error naming it.
    let output = gaffer(
        &dir,
        &["repos", "list"],
        &[("GAFFER_CONFIG", "nowhere.yaml")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("nowhere.yaml (GAFFER_CONFIG)"),
        "{}",
        stderr(&output)
    );
}
