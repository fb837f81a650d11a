//! What a repo's checks are when `.llm-team.yml` does not say: detected from the files at
//! the top of the clone (pure: a file list and a reader in, a plan out). Every command runs
//! in the sandbox; `$GAFFER_CACHE` is the repo's cache directory (pip, npm, cargo and go
//! caches, the Python venv), which survives between runs.

/// What [`Plan::detected`] says when no language was recognised and nothing configured.
pub const NOTHING: &str = "nothing detected";

/// The checks to run on a clone, and why these.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// What was detected ("python (requirements.txt)", "node (package.json)", ...), or
    /// "configured" when `.llm-team.yml` named every command.
    pub detected: String,
    /// Installs dependencies (network allowed); `None`: nothing to set up.
    pub setup: Option<String>,
    /// Runs the tests (no network).
    pub test: String,
    /// Optional lint (no network).
    pub lint: Option<String>,
    /// Extra environment for both phases (cache locations), relative to the cache dir
    /// when the value starts with `$GAFFER_CACHE`.
    pub env: Vec<(String, String)>,
    /// Directories (under the cache) put first on PATH (the venv's `bin`).
    pub path_first: Vec<String>,
    /// Whether gaffer can measure the tests' line coverage (for `checks.coverage_min`).
    pub coverage: CoverageSupport,
    /// [`Plan::test`] under coverage.py, run in its place when set (see
    /// [`super::coverage::wrap`]); `test` stays the command people and the model are shown.
    pub measured_test: Option<String>,
}

/// Whether [`Plan::test`] is one gaffer knows how to run under a coverage tool: only its
/// own detected Python commands, never a configured one (the repo does not choose how
/// coverage is measured, and a command gaffer did not write cannot be rewritten safely).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CoverageSupport {
    /// coverage.py, through this interpreter (`python` in the venv, else `python3`).
    Python { python: String },
    /// Why not, in one clause ("gaffer measures coverage only for Python ...").
    Unsupported { reason: String },
}

/// The repo's own choices (`checks.setup`, `checks.test`, `checks.lint`).
#[derive(Debug, Clone, Default)]
pub struct Configured<'a> {
    /// `Some("")`: no set-up.
    pub setup: Option<&'a str>,
    pub test: Option<&'a str>,
    pub lint: Option<&'a str>,
}

const PYTHON_SETUP: &str = r#"set -e
[ -x "$GAFFER_CACHE/venv/bin/python" ] || python3 -m venv "$GAFFER_CACHE/venv"
for f in requirements*.txt; do
  [ -f "$f" ] && python -m pip install -r "$f"
done
if [ -f pyproject.toml ] || [ -f setup.py ]; then
  python -m pip install -e . || python -m pip install .
fi"#;

/// The detected Python test command for `python`, each runner started by `run` followed
/// by the module name (`exec python -m` plainly; coverage.py's `run -m` when measuring).
pub fn python_test(python: &str, run: &str) -> String {
    format!(
        r#"if {python} -c "import pytest" 2>/dev/null; then
  {run} pytest -rA --junitxml="$GAFFER_REPORTS/pytest.xml"
elif [ -f tests/__init__.py ]; then
  {run} unittest discover -v -s tests -t .
elif [ -d tests ]; then
  {run} unittest discover -v -s tests
else
  {run} unittest discover -v
fi"#
    )
}

fn plain_python_test(python: &str) -> String {
    python_test(python, &format!("exec {python} -m"))
}

/// The plan for a clone whose top-level files are `files` (paths relative to the root);
/// `read` gives a file's text (for `package.json` scripts and `Makefile` targets).
pub fn plan(
    files: &[String],
    read: &dyn Fn(&str) -> Option<String>,
    configured: &Configured,
) -> Plan {
    let has = |name: &str| files.iter().any(|f| f == name);
    let mut env: Vec<(String, String)> = Vec::new();
    let mut path_first = Vec::new();
    let mut python = None;
    let (detected, setup, test): (String, Option<String>, String) = if has("Cargo.toml") {
        env.push(("CARGO_HOME".into(), "$GAFFER_CACHE/cargo".into()));
        env.push((
            "CARGO_TARGET_DIR".into(),
            "$GAFFER_CACHE/cargo-target".into(),
        ));
        env.push(("CARGO_TERM_COLOR".into(), "never".into()));
        (
            "rust (Cargo.toml)".into(),
            Some("cargo fetch && cargo test --no-run".into()),
            "cargo test --offline".into(),
        )
    } else if has("package.json") {
        env.push(("npm_config_cache".into(), "$GAFFER_CACHE/npm".into()));
        env.push(("npm_config_update_notifier".into(), "false".into()));
        env.push(("npm_config_fund".into(), "false".into()));
        env.push(("npm_config_audit".into(), "false".into()));
        let install = if has("package-lock.json") || has("npm-shrinkwrap.json") {
            "npm ci"
        } else {
            "npm install"
        };
        let has_test_script = read("package.json")
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v["scripts"]["test"].is_string());
        let test = if has_test_script {
            "npm test"
        } else {
            "node --test"
        };
        (
            "node (package.json)".into(),
            Some(install.into()),
            test.into(),
        )
    } else if has("go.mod") {
        env.push(("GOPATH".into(), "$GAFFER_CACHE/go".into()));
        env.push(("GOMODCACHE".into(), "$GAFFER_CACHE/go/pkg/mod".into()));
        env.push(("GOCACHE".into(), "$GAFFER_CACHE/go-build".into()));
        env.push(("GOFLAGS".into(), "-mod=mod".into()));
        (
            "go (go.mod)".into(),
            Some("go mod download && go build ./...".into()),
            "go test -v ./...".into(),
        )
    } else if let Some(reason) = python_reason(files) {
        env.push(("VIRTUAL_ENV".into(), "$GAFFER_CACHE/venv".into()));
        env.push(("PIP_CACHE_DIR".into(), "$GAFFER_CACHE/pip".into()));
        env.push(("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()));
        env.push(("PIP_NO_INPUT".into(), "1".into()));
        path_first.push("venv/bin".into());
        python = Some("python");
        (
            format!("python ({reason})"),
            Some(PYTHON_SETUP.into()),
            plain_python_test("python"),
        )
    } else if has("Makefile") && read("Makefile").is_some_and(|t| has_make_target(&t, "test")) {
        (
            "make (Makefile test target)".into(),
            None,
            "make test".into(),
        )
    } else if files.iter().any(|f| f.ends_with(".py")) {
        // Python code with no dependency files: no venv, the standard test runners.
        python = Some("python3");
        (
            "python (no dependency files)".into(),
            None,
            plain_python_test("python3"),
        )
    } else {
        (
            NOTHING.into(),
            None,
            "echo 'no test command detected: set checks.test in .llm-team.yml'; exit 1".into(),
        )
    };
    let coverage = match (configured.test, python) {
        (Some(test), _) => CoverageSupport::Unsupported {
            reason: format!(
                "checks.test is configured (`{}`): gaffer measures coverage only around the test commands it detects itself",
                test.lines().next().unwrap_or("").replace('`', "'")
            ),
        },
        (None, Some(python)) => CoverageSupport::Python {
            python: python.into(),
        },
        (None, None) => CoverageSupport::Unsupported {
            reason: format!(
                "gaffer measures coverage only for Python (coverage.py), and these checks are {detected}"
            ),
        },
    };
    let all_configured = configured.test.is_some() && configured.setup.is_some();
    Plan {
        detected: if all_configured {
            "configured in .llm-team.yml".into()
        } else if configured.test.is_some() || configured.setup.is_some() {
            format!("{detected}, partly configured in .llm-team.yml")
        } else {
            detected
        },
        setup: match configured.setup {
            Some("") => None,
            Some(s) => Some(s.to_string()),
            None => setup,
        },
        test: configured.test.map(str::to_string).unwrap_or(test),
        lint: configured.lint.map(str::to_string),
        env,
        path_first,
        coverage,
        measured_test: None,
    }
}

fn python_reason(files: &[String]) -> Option<String> {
    let mut found: Vec<&str> = files
        .iter()
        .filter(|f| !f.contains('/'))
        .filter(|f| {
            (f.starts_with("requirements") && f.ends_with(".txt"))
                || *f == "pyproject.toml"
                || *f == "setup.py"
        })
        .map(String::as_str)
        .collect();
    found.sort();
    (!found.is_empty()).then(|| found.join(", "))
}

/// Whether a Makefile defines `target` (a line `target:` not inside a recipe).
fn has_make_target(text: &str, target: &str) -> bool {
    text.lines().any(|l| {
        !l.starts_with('\t')
            && l.split_once(':').is_some_and(|(names, rest)| {
                !rest.starts_with('=') && names.split_whitespace().any(|n| n == target)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn detect(list: &[&str], read: &dyn Fn(&str) -> Option<String>) -> Plan {
        plan(&files(list), read, &Configured::default())
    }

    #[test]
    fn each_language_is_detected() {
        let none = |_: &str| None;
        let p = detect(
            &["requirements-dev.txt", "requirements.txt", "app.py"],
            &none,
        );
        assert_eq!(
            p.detected,
            "python (requirements-dev.txt, requirements.txt)"
        );
        assert!(p.setup.unwrap().contains("venv"));
        assert!(p.test.contains("pytest") && p.test.contains("unittest"));
        assert_eq!(p.path_first, ["venv/bin"]);
        let p = detect(&["pyproject.toml"], &none);
        assert_eq!(p.detected, "python (pyproject.toml)");

        let p = detect(&["package.json", "package-lock.json"], &|_| {
            Some(r#"{"scripts": {"test": "node --test"}}"#.into())
        });
        assert_eq!(
            (p.setup.as_deref(), p.test.as_str()),
            (Some("npm ci"), "npm test")
        );
        let p = detect(&["package.json"], &|_| Some("{}".into()));
        assert_eq!(
            (p.setup.as_deref(), p.test.as_str()),
            (Some("npm install"), "node --test")
        );

        let p = detect(&["Cargo.toml", "src/lib.rs"], &none);
        assert_eq!(p.detected, "rust (Cargo.toml)");
        assert!(p.env.iter().any(|(k, _)| k == "CARGO_TARGET_DIR"));
        let p = detect(&["go.mod", "main.go"], &none);
        assert_eq!(p.test, "go test -v ./...");

        let make = |_: &str| Some("VAR := 1\nbuild:\n\tcc x.c\ntest: build\n\t./run\n".into());
        assert_eq!(detect(&["Makefile"], &make).test, "make test");
        let no_target = |_: &str| Some("build:\n\tcc x.c\n\techo test: no\n".into());
        assert_eq!(
            detect(&["Makefile"], &no_target).detected,
            "nothing detected"
        );

        let p = detect(&["src/app.py", "tests/test_app.py"], &none);
        assert_eq!(p.detected, "python (no dependency files)");
        assert!(p.setup.is_none() && p.test.contains("python3 -m unittest"));
    }

    #[test]
    fn the_repo_config_wins() {
        let configured = Configured {
            setup: Some(""),
            test: Some("make check"),
            lint: Some("ruff check ."),
        };
        let p = plan(&files(&["requirements.txt"]), &|_| None, &configured);
        assert_eq!(p.setup, None);
        assert_eq!(p.test, "make check");
        assert_eq!(p.lint.as_deref(), Some("ruff check ."));
        assert_eq!(p.detected, "configured in .llm-team.yml");
        let only_test = Configured {
            test: Some("make check"),
            ..Configured::default()
        };
        let p = plan(&files(&["requirements.txt"]), &|_| None, &only_test);
        assert!(p.setup.unwrap().contains("pip install"));
        assert_eq!(
            p.detected,
            "python (requirements.txt), partly configured in .llm-team.yml"
        );
    }
}
