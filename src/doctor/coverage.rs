//! `checks.coverage_min` per registered repo: can gaffer measure it here? Read from the
//! repo's default branch through the forge (its `.llm-team.yml` and top-level files), and
//! for Python, whether the python that runs the checks can import coverage.py inside the
//! sandbox. A repo whose minimum cannot be checked gets a warning, never a failure: its
//! changes are not failed for it either (the PR says "not measured").

use crate::registry::{Mode, Repo};
use crate::workspace::checks::coverage::install_hint;
use crate::workspace::checks::detect::{self, CoverageSupport};
use crate::Gaffer;

use super::{Check, Outcome};

/// Dependency files read for `coverage` / `pytest-cov` when the repo's venv is not made yet.
const DEPENDENCY_FILES: &[&str] = &["pyproject.toml", "setup.py", "setup.cfg"];

/// One check per active repo whose `.llm-team.yml` sets `checks.coverage_min`.
pub async fn checks(gaffer: &Gaffer) -> Vec<Check> {
    let Ok((repos, _)) = gaffer.registry.list().await else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    for repo in repos.iter().filter(|r| r.mode != Mode::Disabled) {
        if let Some(check) = repo_check(gaffer, repo).await {
            checks.push(check);
        }
    }
    checks
}

async fn repo_check(gaffer: &Gaffer, repo: &Repo) -> Option<Check> {
    let forge = gaffer.forge(repo);
    let name = repo.full_name();
    let branch = &repo.default_branch;
    // An unreachable repo is the forge check's to report.
    let config = crate::pipeline::read_team_config(forge.as_ref(), repo, branch)
        .await
        .ok()?;
    let min = config.coverage_required()?;
    let label = format!("coverage:{name}");
    let files: Vec<String> = match forge.list_dir(&name, "", branch).await {
        Ok(Some(entries)) => entries.into_iter().map(|e| e.path).collect(),
        _ => return None,
    };
    let plan = detect::plan(
        &files,
        &|_| None,
        &detect::Configured {
            setup: config.setup_command.as_deref(),
            test: config.test_command.as_deref(),
            lint: config.lint_command.as_deref(),
        },
    );
    let cannot = |why: String, fix: &str| {
        Some(
            Check::new(
                label.clone(),
                Outcome::Warning,
                format!(
                    "checks.coverage_min {min} cannot be checked: {why}; its PRs will say coverage was not measured"
                ),
            )
            .fix(fix),
        )
    };
    let python = match plan.coverage {
        CoverageSupport::Unsupported { reason } => {
            return cannot(
                reason,
                "use gaffer's detected Python test command (leave checks.test unset), or drop checks.coverage_min",
            )
        }
        CoverageSupport::Python { python } => python,
    };
    let cache = crate::roles::check_settings(gaffer).cache_dir(&repo.owner, &repo.name);
    let venv = cache.join("venv/bin/python");
    let interpreter = if python == "python" {
        if !venv.exists() {
            // No set-up has run yet: the venv will hold what the requirements install.
            return Some(
                if requirements_mention_coverage(gaffer, repo, &files).await {
                    Check::new(
                    label,
                    Outcome::Ok,
                    format!("checks.coverage_min {min}: the repo's requirements install coverage.py, measured in its venv after set-up"),
                )
                } else {
                    cannot(
                    "coverage.py is not among the repo's requirements, and the checks' python is the repo's venv".into(),
                    install_hint(&python),
                )?
                },
            );
        }
        venv.to_string_lossy().into_owned()
    } else {
        python.clone()
    };
    match importable(gaffer, &cache, &interpreter).await {
        Ok(version) => Some(Check::new(
            label,
            Outcome::Ok,
            format!("checks.coverage_min {min}: measured with coverage.py {version} via {python}"),
        )),
        Err(why) => cannot(why, install_hint(&python)),
    }
}

/// Whether the repo's Python dependency files name coverage.py (directly or via pytest-cov).
async fn requirements_mention_coverage(gaffer: &Gaffer, repo: &Repo, files: &[String]) -> bool {
    let forge = gaffer.forge(repo);
    let wanted = files.iter().filter(|f| {
        (f.starts_with("requirements") && f.ends_with(".txt"))
            || DEPENDENCY_FILES.contains(&f.as_str())
    });
    for file in wanted {
        if let Ok(Some(content)) = forge
            .file(&repo.full_name(), file, &repo.default_branch)
            .await
        {
            let text = content.text.to_ascii_lowercase();
            if text.contains("coverage") || text.contains("pytest-cov") {
                return true;
            }
        }
    }
    false
}

/// coverage.py's version as `interpreter` sees it inside the sandbox (as the checks run).
async fn importable(
    gaffer: &Gaffer,
    cache: &std::path::Path,
    interpreter: &str,
) -> Result<String, String> {
    let settings = crate::roles::check_settings(gaffer);
    let scratch = std::env::temp_dir();
    let script = format!(
        "'{}' -c 'import coverage; print(coverage.__version__)'",
        interpreter.replace('\'', "")
    );
    let mut command = settings
        .sandbox
        .command_with(&scratch, &script, false, Some(cache))
        .map_err(|e| e.to_string())?;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    match command.output().await {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .trim()
            .chars()
            .take(20)
            .collect()),
        Ok(_) => Err(format!(
            "coverage.py is not importable by {interpreter} inside the sandbox"
        )),
        Err(e) => Err(format!("{interpreter} could not be started: {e}")),
    }
}
