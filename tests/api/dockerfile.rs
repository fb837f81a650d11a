//! The deployment files, checked without a Docker engine (this machine has none): the
//! Dockerfile's structure, the compose file and the systemd unit. `.ci/run` also lints the
//! Dockerfile with hadolint and builds the image where `docker info` answers.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `(instruction, arguments)` per logical line: continuations joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (word, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((word.to_ascii_uppercase(), rest.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_git_bubblewrap_a_volume_and_a_healthcheck() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let steps = instructions(&text);
    let of = |name: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let froms = of("FROM");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms[0].ends_with("AS build"), "{froms:?}");
    let final_stage = steps
        .iter()
        .rposition(|(i, _)| i == "FROM")
        .expect("a final stage");
    let runtime = &steps[final_stage..];
    assert!(
        runtime
            .iter()
            .any(|(i, a)| i == "COPY" && a.starts_with("--from=build ")),
        "the binary comes from the build stage"
    );
    let installs = runtime
        .iter()
        .filter(|(i, a)| i == "RUN" && a.contains("apt-get install"))
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for package in ["git", "bubblewrap", "ca-certificates"] {
        assert!(
            installs.split_whitespace().any(|w| w == package),
            "{package} installed in the final stage: {installs}"
        );
    }
    let user = runtime
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, a)| a.as_str())
        .expect("a USER in the final stage");
    assert!(
        !["root", "0", "0:0"].contains(&user),
        "runs as non-root, not {user}"
    );
    assert!(of("VOLUME").iter().any(|v| v.contains("/data")));
    let health = of("HEALTHCHECK");
    assert_eq!(health.len(), 1, "{health:?}");
    assert!(health[0].contains("/health"), "{health:?}");
    assert!(of("ENV")
        .iter()
        .any(|e| e.contains("GAFFER_DATA_DIR=/data")));
    // Every COPY from the build context names something in the repository, and nothing the
    // build needs is excluded by .dockerignore.
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignored.lines().map(str::trim).collect();
    for args in of("COPY").iter().filter(|a| !a.starts_with("--from")) {
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                root().join(source).exists(),
                "COPY source {source} is missing"
            );
            assert!(!ignored.contains(source), "{source} is in .dockerignore");
        }
    }
}

#[test]
fn compose_runs_gaffer_beside_ollama_from_this_dockerfile() {
    let text = std::fs::read_to_string(root().join("deploy/compose.yaml")).unwrap();
    let compose: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let services = &compose["services"];
    assert!(services["ollama"]["image"]
        .as_str()
        .unwrap()
        .starts_with("ollama/ollama"));
    let gaffer = &services["gaffer"];
    let context = root()
        .join("deploy")
        .join(gaffer["build"]["context"].as_str().unwrap());
    assert!(context
        .join(gaffer["build"]["dockerfile"].as_str().unwrap())
        .is_file());
    assert_eq!(
        gaffer["environment"]["OLLAMA_BASE_URL"],
        "http://ollama:11434"
    );
    assert!(gaffer["volumes"][0].as_str().unwrap().ends_with(":/data"));
    assert!(gaffer["ports"][0]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
}

#[test]
fn the_systemd_unit_runs_doctor_before_serve() {
    let text = std::fs::read_to_string(root().join("deploy/gaffer.service")).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= missing"))
    };
    assert!(value("ExecStartPre").ends_with("gaffer doctor"));
    assert!(value("ExecStart").ends_with("gaffer serve"));
    assert_ne!(value("User"), "root");
    assert!(text.contains("[Install]"));
}
