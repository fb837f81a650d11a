//! `gaffer demo`: the whole loop on a fresh machine, with no GitHub token and no Ollama.
//! It copies the example target repo into a local bare origin, registers it in `pr` mode
//! on the local forge, and runs Taskmaster -> (merge) -> Developer -> Reviewer -> (merge)
//! -> Integrator -> (merge), printing a line per step and where everything is. The example
//! repo starts without CI, so the Developer's first task (the built-in CI bootstrap) adds a
//! real workflow file in its PR, and the closing hints are commands that work as printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Role, Settings};
use crate::error::{AppError, AppResult};
use crate::forge::local::LocalForge;
use crate::registry::{FullName, NewRepo, Repo};
use crate::roles::{self, Action, Outcome};
use crate::workspace::git::Git;
use crate::Gaffer;

/// The example target repo, embedded so the demo runs wherever the binary is; without
/// `sample-target/.github/workflows/ci.yml`, which the Developer adds through its PR.
const SAMPLE: &[(&str, &str)] = &[
    ("README.md", include_str!("../sample-target/README.md")),
    ("docs/PRD.md", include_str!("../sample-target/docs/PRD.md")),
    (
        "tasks/_template.md",
        include_str!("../sample-target/tasks/_template.md"),
    ),
    (
        "src/__init__.py",
        include_str!("../sample-target/src/__init__.py"),
    ),
    ("src/app.py", include_str!("../sample-target/src/app.py")),
    (
        "tests/__init__.py",
        include_str!("../sample-target/tests/__init__.py"),
    ),
    (
        "tests/test_smoke.py",
        include_str!("../sample-target/tests/test_smoke.py"),
    ),
    (
        "requirements.txt",
        include_str!("../sample-target/requirements.txt"),
    ),
    ("CODEOWNERS", include_str!("../sample-target/CODEOWNERS")),
    (
        ".llm-team.yml",
        include_str!("../sample-target/.llm-team.yml"),
    ),
    (
        ".github/PULL_REQUEST_TEMPLATE.md",
        include_str!("../sample-target/.github/PULL_REQUEST_TEMPLATE.md"),
    ),
];

/// The repo the demo registers.
pub const DEMO_REPO: &str = "demo/tally";

/// Runs the demo in `dir` (a new directory under the system temp dir by default).
pub async fn run(mut settings: Settings, dir: Option<PathBuf>) -> AppResult<()> {
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("gaffer-demo-{}", std::process::id())),
    };
    let dir = std::path::absolute(&dir).map_err(|e| AppError::internal(e.to_string()))?;
    if dir.join("origin.git").exists() {
        return Err(AppError::conflict(format!(
            "{} already holds a demo: pass another --dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", dir.display())))?;
    settings.data_dir = dir.join("data");
    settings.workdir_root = dir.join("work");
    settings.local_root = dir.clone();
    let git = Git {
        token: None,
        token_origin: None,
        author_name: settings.work.git_name.clone(),
        author_email: settings.work.git_email.clone(),
    };
    let origin = seed_origin(&git, &dir).await?;
    println!("gaffer demo in {}", dir.display());
    println!(
        "  origin: {} (a bare git repo standing in for GitHub)",
        origin.display()
    );

    let models = choose_models(&mut settings).await;
    println!("  models: {models}");
    println!("  sandbox: {}", choose_sandbox(&mut settings));
    let gaffer = Gaffer::open(settings).await?;
    let repo = gaffer
        .registry
        .add(NewRepo {
            full_name: Some(DEMO_REPO.into()),
            mode: Some("pr".into()),
            forge: Some("local".into()),
            clone_url: Some(format!("file://{}", origin.display())),
            ..NewRepo::default()
        })
        .await?;
    let forge = LocalForge::new(gaffer.store.clone(), origin.clone());
    let name = repo.full_name();

    let planned = step(
        1,
        "Taskmaster plans the first task",
        roles::taskmaster::run(&gaffer, &repo).await?,
        Action::OpenedPr,
    )?;
    merge(
        &forge,
        &name,
        &planned,
        2,
        "you merge the task PR, as a human would",
    )
    .await?;
    let developed = step(
        3,
        "Developer does the task",
        roles::developer::run(&gaffer, &repo, None).await?,
        Action::OpenedPr,
    )?;
    if let Some(checks) = &developed.checks {
        println!(
            "      checks: `{}` {} in {:.1} s{}",
            checks.command,
            if checks.passed { "passed" } else { "failed" },
            checks.duration_ms as f64 / 1000.0,
            if checks.sandboxed {
                " (sandboxed)"
            } else {
                " (not sandboxed: bwrap is not installed)"
            }
        );
    }
    let work_pr = developed
        .pr
        .as_ref()
        .map(|p| p.number)
        .ok_or_else(|| AppError::internal("the Developer opened no PR"))?;
    print_changes(&forge, &name, work_pr).await?;
    step(
        4,
        "Reviewer reviews the PR",
        roles::reviewer::review(&gaffer, &repo, work_pr).await?,
        Action::Reviewed,
    )?;
    merge(&forge, &name, &developed, 5, "you merge the work PR").await?;
    let integrated = step(
        6,
        "Integrator marks the task done",
        roles::integrator::integrate_pending(&gaffer, &repo).await?,
        Action::OpenedPr,
    )?;
    merge(
        &forge,
        &name,
        &integrated,
        7,
        "you merge the integration PR",
    )
    .await?;

    let report = crate::pipeline::scan(&gaffer, &repo).await?;
    let task = integrated
        .task
        .clone()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let status = report
        .tasks
        .iter()
        .find(|t| t.id.as_str() == task)
        .map(|t| t.status.as_str())
        .unwrap_or("missing");
    println!(
        "done: task {task} is {status} on main; next: {}",
        report.next.reason
    );
    print_where(&dir, &origin, &repo);
    if status != "done" {
        return Err(AppError::internal(format!(
            "the demo ended with {task} {status}, not done"
        )));
    }
    Ok(())
}

/// Creates `dir/origin.git` holding the example repo on `main`.
async fn seed_origin(git: &Git, dir: &Path) -> AppResult<PathBuf> {
    let seed = dir.join("seed");
    for (path, text) in SAMPLE {
        let file = seed.join(path);
        std::fs::create_dir_all(file.parent().expect("files have a parent"))
            .map_err(|e| AppError::internal(e.to_string()))?;
        std::fs::write(&file, text).map_err(|e| AppError::internal(e.to_string()))?;
    }
    let fail = |e: crate::workspace::git::GitError| AppError::internal(e.to_string());
    git.run(&seed, &["init", "--quiet", "-b", "main"])
        .await
        .map_err(fail)?;
    git.run(&seed, &["add", "-A"]).await.map_err(fail)?;
    git.run(
        &seed,
        &["commit", "--quiet", "-m", "tally: the example target repo"],
    )
    .await
    .map_err(fail)?;
    let origin = dir.join("origin.git");
    git.clone_bare(dir, &seed, &origin).await.map_err(fail)?;
    std::fs::remove_dir_all(&seed).ok();
    Ok(origin)
}

/// Uses the configured models when their servers (Ollama or OpenAI-compatible, per role)
/// serve them all; otherwise runs every role without a model (the built-in bootstrap
/// flow), and says which.
async fn choose_models(settings: &mut Settings) -> String {
    let wanted: Vec<(Role, String, String)> = settings
        .llm
        .roles
        .iter()
        .filter_map(|(role, llm)| llm.model.clone().map(|m| (*role, m, llm.base_url.clone())))
        .collect();
    if wanted.is_empty() {
        return "none configured: running the built-in bootstrap flow".into();
    }
    let probe = crate::llm::models::Models::new(settings.llm.clone(), None);
    let mut missing = Vec::new();
    for (role, model, url) in &wanted {
        match tokio::time::timeout(Duration::from_secs(5), probe.served(*role)).await {
            Ok(Ok(served)) if probe.is_served(*role, &served, model) => {}
            Ok(Ok(_)) => missing.push(format!("{model} is not on {url}")),
            _ => missing.push(format!("no model server answers at {url}")),
        }
    }
    if missing.is_empty() {
        let names: Vec<String> = wanted.iter().map(|(r, m, _)| format!("{r}={m}")).collect();
        return format!(
            "the model servers serve the configured models: {}",
            names.join(", ")
        );
    }
    for (_, llm) in settings.llm.roles.iter_mut() {
        llm.model = None;
    }
    missing.dedup();
    format!(
        "{}: running the built-in bootstrap flow (no model needed)",
        missing.join("; ")
    )
}

/// Model-written code only ever runs under bubblewrap. Without it the demo still runs, on
/// its own embedded example with the built-in (model-free) flow and the checks unsandboxed,
/// and says so; with it, nothing changes.
fn choose_sandbox(settings: &mut Settings) -> String {
    use crate::safety::sandbox::SandboxMode;
    if settings.work.checks_sandbox == SandboxMode::Off {
        return "off (CHECKS_SANDBOX=off)".into();
    }
    if crate::which("bwrap").is_some() {
        return "bubblewrap: checks run without network, token or your files".into();
    }
    let had_models = settings
        .llm
        .roles
        .iter()
        .any(|(_, llm)| llm.model.is_some());
    for (_, llm) in settings.llm.roles.iter_mut() {
        llm.model = None;
    }
    settings.work.checks_sandbox = SandboxMode::Off;
    format!(
        "bubblewrap is not installed: the demo runs its own example's checks unsandboxed{}; install bubblewrap before pointing gaffer at a real repo",
        if had_models { " and uses no model (model-written code only runs sandboxed)" } else { "" }
    )
}

fn step(n: u32, what: &str, outcome: Outcome, expected: Action) -> AppResult<Outcome> {
    println!("[{n}/7] {what}: {}", outcome.summary);
    if outcome.action != expected {
        return Err(AppError::internal(format!(
            "step {n} ({what}) ended as {:?}: {}",
            outcome.action, outcome.summary
        )));
    }
    Ok(outcome)
}

async fn merge(
    forge: &LocalForge,
    name: &FullName,
    outcome: &Outcome,
    n: u32,
    what: &str,
) -> AppResult<()> {
    let number = outcome
        .pr
        .as_ref()
        .map(|p| p.number)
        .ok_or_else(|| AppError::internal("no PR to merge"))?;
    let sha = forge.merge(name, number).await?;
    println!(
        "[{n}/7] {what}: PR #{number} merged into main ({})",
        &sha[..7.min(sha.len())]
    );
    Ok(())
}

/// What the Developer's PR changes, file by file, so the newcomer sees real work.
async fn print_changes(forge: &LocalForge, name: &FullName, number: u64) -> AppResult<()> {
    use crate::forge::Forge;
    for file in forge.pull_files(name, number).await? {
        println!(
            "      {} {} (+{} -{})",
            file.status, file.filename, file.additions, file.deletions
        );
    }
    Ok(())
}

fn print_where(dir: &Path, origin: &Path, repo: &Repo) {
    let gaffer = std::env::current_exe()
        .map(|p| shell_word(&p.display().to_string()))
        .unwrap_or_else(|_| "gaffer".into());
    let env = format!(
        "GAFFER_DATA_DIR={}",
        shell_word(&dir.join("data").display().to_string())
    );
    println!();
    println!("Everything is in {}:", dir.display());
    println!("  origin:   {}", origin.display());
    println!(
        "  clone:    {}",
        dir.join("work")
            .join(&repo.owner)
            .join(&repo.name)
            .display()
    );
    println!("  database: {}", dir.join("data/gaffer.db").display());
    println!("Look around (these work as printed, from any directory):");
    println!(
        "  git --git-dir {} log --oneline --graph main",
        shell_word(&origin.display().to_string())
    );
    println!("  {env} {gaffer} status {}", repo.full_name);
    println!("  {env} {gaffer} pr list {} --closed", repo.full_name);
}

/// `text` as one shell word: as is when it is plain, else single-quoted.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("/tmp/gaffer-demo-1/data"),
            "/tmp/gaffer-demo-1/data"
        );
        assert_eq!(shell_word("/tmp/my demo"), "'/tmp/my demo'");
        assert_eq!(shell_word("/tmp/it's"), "'/tmp/it'\\''s'");
    }
}
