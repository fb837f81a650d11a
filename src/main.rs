//! The `gaffer` command line: thin wrappers over the same services the HTTP API uses.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;

use gaffer::config::Settings;
use gaffer::error::{AppError, AppResult};
use gaffer::registry::{FullName, NewRepo, Repo};
use gaffer::{pipeline, telemetry, Application, Gaffer};

/// Local-LLM roles (Taskmaster, Developer, Reviewer, Integrator) on your GitHub repos,
/// changing them only through pull requests.
///
/// Settings come from the config file (GAFFER_CONFIG, else ./config/gaffer.yaml,
/// $GAFFER_DATA_DIR/gaffer.yaml, gaffer.yaml next to the binary, /etc/gaffer/gaffer.yaml),
/// then .env, then the environment (see README).
#[derive(Parser)]
#[command(name = "gaffer", version, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP API (GAFFER_BIND, default 127.0.0.1:8000).
    Serve,
    /// Run the whole loop on a copy of the example repo, on a local forge: no GitHub
    /// token or Ollama needed.
    Demo {
        /// Where to put the demo's origin, clone and database (default: a new temp dir).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Manage the registry of repos gaffer works on.
    #[command(subcommand)]
    Repos(ReposCommand),
    /// Read a repo's default branch (config, tasks, open PRs) and report what is there.
    Scan {
        /// owner/name (or owner_name).
        repo: String,
    },
    /// Show a repo's last scan, next step and recent events (no network call).
    Status {
        /// owner/name (or owner_name).
        repo: String,
    },
    /// Check the database, git, the sandbox, Ollama and each role's model, and GitHub
    /// access to each registered repo; exits 1 when something gaffer needs is missing.
    Doctor,
    /// Run one role by hand on a repo.
    #[command(subcommand)]
    Run(RunCommand),
    /// Open the deterministic CI bootstrap PR (a preview in observe mode).
    Bootstrap {
        /// owner/name (or owner_name).
        repo: String,
    },
    /// Scan a repo and decide its next step, saying why; in pr mode, run that step.
    WorkNext {
        /// owner/name (or owner_name).
        repo: String,
    },
    /// Pull requests: list them; merge or close them on the local forge (on GitHub a
    /// human merges).
    #[command(subcommand)]
    Pr(PrCommand),
    /// Print a shell completion script, e.g. `gaffer completions bash > ~/.local/share/bash-completion/completions/gaffer`.
    Completions {
        /// bash | zsh | fish | elvish | powershell
        shell: clap_complete::Shell,
    },
    /// The webhook audit log, and retrying failed or dead-lettered deliveries.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// The engine's runs: list, show (with --transcript), logs, cancel, retry; pause and
    /// resume a repo.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Per-model statistics (model calls, Developer results, merged task PRs), overall
    /// and per repo, from what gaffer recorded.
    Stats {
        /// Only this repo's section (owner/name); the overall rows stay.
        #[arg(long)]
        repo: Option<String>,
    },
}

#[derive(Subcommand)]
enum RunsCommand {
    /// The newest runs.
    List {
        #[arg(long)]
        repo: Option<String>,
        /// queued | paused | running | succeeded | blocked | failed | cancelled
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One run, its steps and outcome; --transcript adds every model call and check run.
    Show {
        id: i64,
        #[arg(long)]
        transcript: bool,
    },
    /// A run's progress lines; -f follows them until the run ends.
    Logs {
        id: i64,
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Cancel a queued run, or stop a running one.
    Cancel { id: i64 },
    /// Queue a failed, blocked or cancelled run's step again.
    Retry { id: i64 },
    /// Pause a repo: its runs wait, queued.
    Pause { repo: String },
    /// Resume a paused repo.
    Resume { repo: String },
}

#[derive(Subcommand)]
enum PrCommand {
    /// List a repo's open PRs (--closed for closed ones).
    List {
        /// owner/name (or owner_name).
        repo: String,
        #[arg(long)]
        closed: bool,
    },
    /// Merge an open PR of a local-forge repo with a real merge commit.
    Merge {
        /// owner/name (or owner_name).
        repo: String,
        /// The PR number.
        number: u64,
    },
    /// Close an open PR of a local-forge repo without merging.
    Close {
        /// owner/name (or owner_name).
        repo: String,
        /// The PR number.
        number: u64,
    },
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// The newest deliveries, with their status, attempts and verdict.
    List {
        /// pending | done | ignored | retrying | dead | failed
        #[arg(long)]
        status: Option<String>,
        /// owner/name (or owner_name).
        #[arg(long)]
        repo: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Process a failed or dead-lettered delivery again, now, and print what it caused.
    Retry {
        /// The X-GitHub-Delivery id.
        id: String,
    },
}

#[derive(Subcommand)]
enum RunCommand {
    /// Plan the next task as a PR (the bootstrap task when there is none, or no model).
    Taskmaster {
        /// owner/name (or owner_name); optional when one repo is registered.
        repo: Option<String>,
    },
    /// Do the next queued task (or --task) on a branch and open its PR.
    Developer {
        /// owner/name (or owner_name); optional when one repo is registered.
        repo: Option<String>,
        /// T-NNNN; default: the task work-next picks.
        #[arg(long)]
        task: Option<String>,
    },
    /// Review open task PRs whose head was not reviewed yet (or --pr N).
    Reviewer {
        /// owner/name (or owner_name); optional when one repo is registered.
        repo: Option<String>,
        #[arg(long)]
        pr: Option<u64>,
    },
    /// Open the PR moving a merged task to done (or --pr N, a merged task PR).
    Integrator {
        /// owner/name (or owner_name); optional when one repo is registered.
        repo: Option<String>,
        #[arg(long)]
        pr: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ReposCommand {
    /// List registered repos with per-mode counts.
    List,
    /// Register a repo (mode defaults to observe).
    Add {
        /// owner/name (or the id form owner_name).
        repo: String,
        /// observe | pr | disabled
        #[arg(long, default_value = "observe")]
        mode: String,
        /// Defaults to DEFAULT_BRANCH.
        #[arg(long)]
        default_branch: Option<String>,
        /// Defaults to GITHUB_GIT_URL/owner/name.git; with --forge local, the
        /// file:///path/to/bare.git of the origin.
        #[arg(long)]
        clone_url: Option<String>,
        /// github | local (a bare git repository on disk, PRs in gaffer's database).
        #[arg(long, default_value = "github")]
        forge: String,
    },
    /// Show one repo.
    Show {
        /// owner/name (or owner_name).
        repo: String,
    },
    /// Change a repo's mode.
    SetMode {
        /// owner/name (or owner_name).
        repo: String,
        /// observe | pr | disabled
        mode: String,
    },
    /// Remove a repo from the registry (nothing on GitHub is touched).
    Remove {
        /// owner/name (or owner_name).
        repo: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "gaffer", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("gaffer: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gaffer: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gaffer: {}", e.message);
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

async fn run(cli: Cli, settings: Settings) -> AppResult<()> {
    if let Command::Demo { dir } = cli.command {
        return gaffer::demo::run(settings, dir).await;
    }
    let gaffer = Gaffer::open(settings).await?;
    if writes(&cli.command) {
        gaffer.seed_configured_repo().await?;
    }
    let out = Output { json: cli.json };
    match cli.command {
        Command::Serve => serve(gaffer).await,
        Command::Demo { .. } | Command::Completions { .. } => {
            unreachable!("handled before opening the data dir")
        }
        Command::Pr(command) => pr(&gaffer, command, &out).await,
        Command::Repos(command) => repos(&gaffer, command, &out).await,
        Command::Doctor => {
            let report = gaffer::doctor::run_full(&gaffer).await;
            if out.json {
                out.print_json(&report);
            } else {
                for check in &report.checks {
                    let mark = match check.outcome {
                        gaffer::doctor::Outcome::Ok => "ok  ",
                        gaffer::doctor::Outcome::Warning => "warn",
                        gaffer::doctor::Outcome::Failure => "FAIL",
                    };
                    println!("{mark} {:<28} {}", check.name, check.detail);
                    if let Some(fix) = &check.fix {
                        println!("     {:<28} fix: {fix}", "");
                    }
                }
                println!(
                    "{}",
                    if report.ok {
                        "all is well"
                    } else {
                        "some checks failed"
                    }
                );
            }
            if report.ok {
                Ok(())
            } else {
                Err(AppError::new(
                    gaffer::error::ErrorKind::Internal,
                    "doctor found problems (see above)",
                ))
            }
        }
        Command::Scan { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let report = pipeline::scan(&gaffer, &repo).await?;
            if out.json {
                out.print_json(&report);
            } else {
                print_scan(&report);
            }
            Ok(())
        }
        Command::Status { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let status = pipeline::status(&gaffer, &repo).await?;
            if out.json {
                out.print_json(&status);
            } else {
                println!("{} ({})", status.repo, status.mode);
                match status.last_scan.get("scanned_at").and_then(|v| v.as_str()) {
                    Some(at) => println!("  last scan: {at}"),
                    None => println!("  never scanned: run `gaffer scan {}`", status.repo),
                }
                if let Some(reason) = status.next.get("reason").and_then(|v| v.as_str()) {
                    println!("  next: {reason}");
                }
                for event in &status.recent_events {
                    println!("  {} {:<10} {}", event.at, event.kind, event.summary);
                }
                for d in &status.unsettled_deliveries {
                    println!(
                        "  delivery {} ({}): {}: {}",
                        d.id, d.event, d.status, d.verdict
                    );
                }
            }
            Ok(())
        }
        Command::WorkNext { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let answer =
                gaffer::roles::work_next(&gaffer, &repo, gaffer::engine::Trigger::Cli, true)
                    .await?;
            if out.json {
                out.print_json(&answer);
            } else {
                println!("{}", answer.decision.reason);
                if let Some(summary) = answer.outcome.as_ref().and_then(|o| o.get("summary")) {
                    println!("done: {}", summary.as_str().unwrap_or_default());
                }
            }
            Ok(())
        }
        Command::Run(command) => {
            use gaffer::engine::Job;
            let (repo, job) = match command {
                RunCommand::Taskmaster { repo } => (repo, Job::Taskmaster),
                RunCommand::Developer { repo, task } => {
                    let task = match task {
                        Some(t) => {
                            Some(gaffer::team::task::TaskId::parse(&t).ok_or_else(|| {
                                AppError::bad_request(format!("{t:?} is not a task id like T-0003"))
                            })?)
                        }
                        None => None,
                    };
                    (repo, Job::Developer(task))
                }
                RunCommand::Reviewer { repo, pr } => (repo, Job::Reviewer(pr)),
                RunCommand::Integrator { repo, pr } => (repo, Job::Integrator(pr)),
            };
            let repo = gaffer::http::pick_repo(&gaffer, repo.as_deref()).await?;
            gaffer::roles::ensure_active(&repo)?;
            let run =
                gaffer::engine::run_inline(&gaffer, &repo, &job, gaffer::engine::Trigger::Cli)
                    .await?;
            let outcome = gaffer::engine::result_of(&run)?;
            if out.json {
                out.print_json(&outcome);
            } else {
                match outcome.as_array() {
                    Some(list) if list.is_empty() => {
                        println!("reviewer: no open task PR with an unreviewed head")
                    }
                    Some(list) => list.iter().for_each(print_outcome),
                    None => print_outcome(&outcome),
                }
                println!("  run {} {}", run.id, run.state);
            }
            Ok(())
        }
        Command::Runs(command) => runs(&gaffer, command, &out).await,
        Command::Stats { repo } => {
            let repo = repo.as_deref().map(parse_repo_arg).transpose()?;
            let report = gaffer::stats::model_stats(&gaffer.store, repo.as_ref()).await?;
            if out.json {
                out.print_json(&report);
            } else {
                print_stats(&report);
            }
            Ok(())
        }
        Command::Bootstrap { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let outcome = gaffer::roles::developer::bootstrap(&gaffer, &repo).await?;
            out.outcome(&outcome);
            Ok(())
        }
        Command::Deliveries(command) => deliveries(&gaffer, command, &out).await,
    }
}

/// A role's outcome as the CLI prints it (the same fields the API returns).
fn print_outcome(outcome: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    println!("{}: {}", text(&outcome["role"]), text(&outcome["summary"]));
    if let Some(pr) = outcome.get("pr").filter(|p| p.is_object()) {
        println!(
            "  PR #{} from {} {}",
            pr["number"],
            text(&pr["branch"]),
            text(&pr["url"])
        );
    }
    if let Some(checks) = outcome.get("checks").filter(|c| c.is_object()) {
        let passed = checks["passed"].as_bool().unwrap_or(false);
        println!(
            "  checks: `{}` {}",
            text(&checks["command"]),
            if passed { "passed" } else { "failed" }
        );
    }
    for file in outcome["files"].as_array().into_iter().flatten() {
        println!("  file: {}", text(file));
    }
}

async fn runs(gaffer: &Gaffer, command: RunsCommand, out: &Output) -> AppResult<()> {
    use gaffer::engine;
    let line = |r: &gaffer::store::RunRecord| {
        let what = r
            .task
            .clone()
            .or(r.pr.map(|n| format!("PR #{n}")))
            .unwrap_or_default();
        println!(
            "{:>6}  {:<10} {:<10} {:<24} {:<8} {:<8} {}",
            r.id, r.state, r.role, r.repo, what, r.trigger, r.summary
        );
    };
    match command {
        RunsCommand::List {
            repo,
            state,
            role,
            limit,
        } => {
            let filter = gaffer::store::RunFilter {
                repo,
                state,
                role,
                limit,
            };
            let runs = gaffer.store.list_runs(&filter).await?;
            if out.json {
                out.print_json(&runs);
            } else {
                println!(
                    "{:>6}  {:<10} {:<10} {:<24} {:<8} {:<8} summary",
                    "id", "state", "role", "repo", "what", "trigger"
                );
                runs.iter().for_each(line);
            }
        }
        RunsCommand::Show { id, transcript } => {
            let run = engine::get(gaffer, id).await?;
            let kind = if transcript { None } else { Some("progress") };
            let events = gaffer.store.run_events(id, 0, kind).await?;
            if out.json {
                out.print_json(&serde_json::json!({"run": run, "events": events}));
            } else {
                line(&run);
                for e in events {
                    println!("  {} {:<10} {}", e.at, e.kind, e.body);
                }
            }
        }
        RunsCommand::Logs { id, follow } => {
            let mut after = 0;
            loop {
                for e in gaffer.store.run_events(id, after, Some("progress")).await? {
                    println!("{} {}", e.at, e.body);
                    after = e.seq;
                }
                if !follow || engine::get(gaffer, id).await?.finished() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
        RunsCommand::Cancel { id } => line(&engine::cancel(gaffer, id).await?),
        RunsCommand::Retry { id } => {
            line(&engine::get(gaffer, engine::retry(gaffer, id).await?).await?)
        }
        RunsCommand::Pause { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            gaffer
                .store
                .pause_repo(&repo.full_name.to_ascii_lowercase())
                .await?;
            println!("paused {}", repo.full_name);
        }
        RunsCommand::Resume { repo } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            gaffer
                .store
                .resume_repo(&repo.full_name.to_ascii_lowercase())
                .await?;
            println!("resumed {}", repo.full_name);
        }
    }
    Ok(())
}

async fn deliveries(gaffer: &Gaffer, command: DeliveriesCommand, out: &Output) -> AppResult<()> {
    let shown = match command {
        DeliveriesCommand::List {
            status,
            repo,
            limit,
        } => {
            let repo = repo.as_deref().map(parse_repo_arg).transpose()?;
            gaffer
                .store
                .list_deliveries(status.as_deref(), repo.as_ref(), limit.clamp(1, 10_000))
                .await?
        }
        DeliveriesCommand::Retry { id } => {
            let claimed = gaffer::webhook::retry::claim_by_hand(gaffer, &id).await?;
            gaffer::webhook::process_stored(gaffer, &claimed).await?;
            gaffer.store.delivery(&id).await?.into_iter().collect()
        }
    };
    if out.json {
        out.print_json(&shown);
        return Ok(());
    }
    for d in &shown {
        println!(
            "{}  {}  {}{}  {}  attempts {}  {}",
            d.id,
            d.received_at,
            d.event,
            d.action
                .as_deref()
                .map(|a| format!(".{a}"))
                .unwrap_or_default(),
            d.status,
            d.attempts,
            d.verdict
        );
    }
    Ok(())
}

fn print_scan(report: &pipeline::ScanReport) {
    println!(
        "{} at {} ({})",
        report.repo,
        &report.head_sha[..report.head_sha.len().min(7)],
        report.default_branch
    );
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    println!("  tasks: {}", counts.join(", "));
    for pull in &report.open_task_prs {
        println!(
            "  open: PR #{} {} ({})",
            pull.number, pull.task, pull.head_ref
        );
    }
    for problem in &report.problems {
        let field = problem
            .field
            .as_deref()
            .map(|f| format!(" [{f}]"))
            .unwrap_or_default();
        println!(
            "  {:?}: {}{field}: {}",
            problem.severity, problem.file, problem.message
        );
    }
    println!("  next: {}", report.next.reason);
}

/// Whether a command changes the registry or a repo (so `GH_OWNER/GH_REPO` may be seeded
/// first); read commands never write. `serve` seeds when the server is built.
fn writes(command: &Command) -> bool {
    match command {
        Command::Repos(ReposCommand::List | ReposCommand::Show { .. })
        | Command::Status { .. }
        | Command::Doctor
        | Command::Pr(PrCommand::List { .. })
        | Command::Deliveries(DeliveriesCommand::List { .. })
        | Command::Runs(
            RunsCommand::List { .. } | RunsCommand::Show { .. } | RunsCommand::Logs { .. },
        )
        | Command::Serve
        | Command::Stats { .. }
        | Command::Demo { .. }
        | Command::Completions { .. } => false,
        Command::Repos(_)
        | Command::Scan { .. }
        | Command::Run(_)
        | Command::Bootstrap { .. }
        | Command::WorkNext { .. }
        | Command::Deliveries(_)
        | Command::Runs(_)
        | Command::Pr(_) => true,
    }
}

async fn pr(gaffer: &Gaffer, command: PrCommand, out: &Output) -> AppResult<()> {
    match command {
        PrCommand::List { repo, closed } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let state = if closed {
                gaffer::forge::PullState::Closed
            } else {
                gaffer::forge::PullState::Open
            };
            let pulls = gaffer::pulls::list(gaffer, &repo, state).await?;
            if out.json {
                out.print_json(&pulls);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = pulls
                .iter()
                .map(|p| {
                    let state = match (p.state, p.is_merged()) {
                        (_, true) => "merged",
                        (gaffer::forge::PullState::Open, _) => "open",
                        _ => "closed",
                    };
                    vec![
                        format!("#{}", p.number),
                        state.to_string(),
                        format!("{} -> {}", p.head_ref, p.base_ref),
                        p.title.clone(),
                    ]
                })
                .collect();
            print_table(&["PR", "STATE", "BRANCH", "TITLE"], &rows);
            println!(
                "{} {} PR{} in {}",
                pulls.len(),
                if closed { "closed" } else { "open" },
                if pulls.len() == 1 { "" } else { "s" },
                repo.full_name
            );
        }
        PrCommand::Merge { repo, number } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let merged = gaffer::pulls::merge(gaffer, &repo, number).await?;
            if out.json {
                out.print_json(&merged);
            } else {
                println!(
                    "merged PR #{} of {} into {} ({})",
                    merged.number,
                    repo.full_name,
                    merged.base,
                    &merged.merge_sha[..merged.merge_sha.len().min(7)]
                );
            }
        }
        PrCommand::Close { repo, number } => {
            let repo = gaffer.registry.get(&parse_repo_arg(&repo)?).await?;
            let closed = gaffer::pulls::close(gaffer, &repo, number).await?;
            if out.json {
                out.print_json(&closed);
            } else {
                println!(
                    "closed PR #{} of {} without merging",
                    closed.number, repo.full_name
                );
            }
        }
    }
    Ok(())
}

/// `gaffer stats`: one table overall, one per repo, with the columns something recorded.
fn print_stats(report: &gaffer::stats::ModelStats) {
    let sections = std::iter::once(("all repos", &report.overall))
        .chain(report.repos.iter().map(|r| (r.repo.as_str(), &r.models)));
    let mut any = false;
    for (scope, rows) in sections {
        if rows.is_empty() {
            continue;
        }
        any = true;
        let shown: Vec<_> = report
            .columns
            .iter()
            .filter(|c| rows.iter().any(|r| r.get(c.key).is_some()))
            .collect();
        println!("{scope}");
        let mut header = vec!["MODEL", "ROLES"];
        let labels: Vec<String> = shown.iter().map(|c| c.label.to_uppercase()).collect();
        header.extend(labels.iter().map(String::as_str));
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut cells = vec![r.model.clone(), r.roles.join(",")];
                cells.extend(
                    shown
                        .iter()
                        .map(|c| r.get(c.key).map_or("-".into(), |v| v.to_string())),
                );
                cells
            })
            .collect();
        print_table(&header, &table);
        println!();
    }
    if !any {
        println!("nothing recorded yet: no model call, no Developer run");
    }
}

/// Prints rows under a header, each column as wide as its widest cell (the last column is
/// not padded).
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  "));
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn serve(gaffer: Gaffer) -> AppResult<()> {
    tracing::info!(config = %gaffer.settings.config_file, "config file");
    let bind = gaffer.settings.bind;
    let app = Application::build(gaffer).await?;
    tracing::info!(address = %bind, port = app.port(), "gaffer API listening");
    app.run()
        .await
        .map_err(|e| AppError::internal(format!("server stopped with an error: {e}")))
}

async fn repos(gaffer: &Gaffer, command: ReposCommand, out: &Output) -> AppResult<()> {
    let registry = &gaffer.registry;
    match command {
        ReposCommand::List => {
            let (repos, counts) = registry.list().await?;
            if out.json {
                out.print_json(
                    &serde_json::json!({"total": repos.len(), "counts": counts, "repos": repos}),
                );
            } else {
                let rows: Vec<Vec<String>> = repos
                    .iter()
                    .map(|r| {
                        vec![
                            r.full_name.clone(),
                            r.mode.to_string(),
                            r.forge.as_str().to_string(),
                            r.default_branch.clone(),
                            r.clone_url.clone(),
                        ]
                    })
                    .collect();
                if !rows.is_empty() {
                    print_table(&["REPO", "MODE", "FORGE", "BRANCH", "CLONE URL"], &rows);
                }
                println!(
                    "{} repo{}: {} observe, {} pr, {} disabled",
                    repos.len(),
                    if repos.len() == 1 { "" } else { "s" },
                    counts.observe,
                    counts.pr,
                    counts.disabled
                );
            }
        }
        ReposCommand::Add {
            repo,
            mode,
            default_branch,
            clone_url,
            forge,
        } => {
            let name = parse_repo_arg(&repo)?;
            let added = registry
                .add(NewRepo {
                    full_name: Some(name.to_string()),
                    mode: Some(mode),
                    default_branch,
                    clone_url,
                    forge: Some(forge),
                    ..NewRepo::default()
                })
                .await?;
            out.repo("registered", &added);
        }
        ReposCommand::Show { repo } => {
            let found = registry.get(&parse_repo_arg(&repo)?).await?;
            out.repo("", &found);
        }
        ReposCommand::SetMode { repo, mode } => {
            let updated = registry.set_mode(&parse_repo_arg(&repo)?, &mode).await?;
            out.repo("updated", &updated);
        }
        ReposCommand::Remove { repo } => {
            let removed = registry.remove(&parse_repo_arg(&repo)?).await?;
            out.repo("removed", &removed);
        }
    }
    Ok(())
}

/// Accepts `owner/name` or the original tool's `owner_name`.
fn parse_repo_arg(arg: &str) -> AppResult<FullName> {
    if arg.contains('/') {
        FullName::parse(arg)
    } else {
        FullName::from_id(arg)
    }
}

/// Text or JSON on stdout; errors go to stderr in `main`.
struct Output {
    json: bool,
}

impl Output {
    fn print_json(&self, value: &impl Serialize) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("values printed are plain data")
        );
    }

    fn outcome(&self, outcome: &gaffer::roles::Outcome) {
        if self.json {
            self.print_json(outcome);
            return;
        }
        println!("{}: {}", outcome.role, outcome.summary);
        if let Some(pr) = &outcome.pr {
            println!("  PR #{} from {} {}", pr.number, pr.branch, pr.url);
        }
        if let Some(checks) = &outcome.checks {
            println!(
                "  checks: `{}` {}",
                checks.command,
                if checks.passed { "passed" } else { "failed" }
            );
        }
        for file in &outcome.files {
            println!("  file: {file}");
        }
    }

    fn repo(&self, verb: &str, repo: &Repo) {
        if self.json {
            self.print_json(repo);
            return;
        }
        if !verb.is_empty() {
            println!("{verb} {}", repo.full_name);
        }
        println!("  mode:           {}", repo.mode);
        println!("  default branch: {}", repo.default_branch);
        println!("  clone url:      {}", repo.clone_url);
        println!("  forge:          {}", repo.forge.as_str());
        println!("  id:             {}", repo.id);
    }
}
