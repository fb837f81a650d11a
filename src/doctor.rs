//! Is this machine ready? Database, git, the sandbox, Ollama and each configured model,
//! the GitHub token and its access to each registered repo, and (`gaffer doctor` only)
//! whether each repo's `checks.coverage_min` can be measured here. `gaffer doctor` prints it and
//! exits non-zero on a failure; `/health` returns the same checks as JSON.

mod coverage;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{Provider, Role};
use crate::llm::ollama::model_served;
use crate::registry::{ForgeKind, Mode};
use crate::Gaffer;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Works, but not as well as it could.
    Warning,
    /// Something gaffer needs is missing.
    Failure,
}

/// One check and, when it did not pass, the exact fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Outcome, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            outcome,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// All checks; `ok` is false when any failed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

/// Runs the checks, as `/health` does. `per_repo` adds the read-only GitHub checks per
/// registered repo (ETag-cached).
pub async fn run(gaffer: &Gaffer, per_repo: bool) -> Report {
    run_checks(gaffer, per_repo, false).await
}

/// Every check, as `gaffer doctor` runs them: the per-repo checks include the one
/// write-shaped probe of a fine-grained token (see [`crate::forge::github::access`]).
pub async fn run_full(gaffer: &Gaffer) -> Report {
    run_checks(gaffer, true, true).await
}

async fn run_checks(gaffer: &Gaffer, per_repo: bool, probe_writes: bool) -> Report {
    let mut checks = vec![
        Check::new(
            "config",
            Outcome::Ok,
            gaffer.settings.config_file.to_string(),
        ),
        database(gaffer).await,
        git().await,
        sandbox(gaffer).await,
    ];
    checks.extend(ollama(gaffer).await);
    checks.extend(openai_servers(gaffer).await);
    checks.extend(github(gaffer, per_repo, probe_writes).await);
    if probe_writes {
        checks.extend(coverage::checks(gaffer).await);
    }
    Report {
        ok: checks.iter().all(|c| c.outcome != Outcome::Failure),
        checks,
    }
}

async fn database(gaffer: &Gaffer) -> Check {
    let path = gaffer.settings.database_path();
    match gaffer.store.ping().await {
        Ok(()) => Check::new(
            "database",
            Outcome::Ok,
            format!("{} answers", path.display()),
        ),
        Err(e) => Check::new("database", Outcome::Failure, e.message)
            .fix(format!("check that {} is writable", path.display())),
    }
}

async fn git() -> Check {
    let output = crate::safety::git::command(std::path::Path::new("/"))
        .arg("--version")
        .output()
        .await;
    match output {
        Ok(out) if out.status.success() => Check::new(
            "git",
            Outcome::Ok,
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ),
        _ => Check::new("git", Outcome::Failure, "git is not on PATH")
            .fix("install git (e.g. apt-get install git)"),
    }
}

/// Starts a real sandboxed command (bubblewrap can be installed yet unusable, e.g. without
/// user namespaces); repo code is refused when this fails, so it is a failure here too.
async fn sandbox(gaffer: &Gaffer) -> Check {
    let settings = crate::roles::check_settings(gaffer);
    if settings.sandbox.mode == crate::safety::sandbox::SandboxMode::Off {
        return Check::new(
            "sandbox",
            Outcome::Warning,
            "CHECKS_SANDBOX=off: repo and model code runs unsandboxed (network, your files)",
        )
        .fix("apt-get install -y bubblewrap, then unset CHECKS_SANDBOX");
    }
    let scratch = std::env::temp_dir();
    let started = settings
        .sandbox
        .command(&scratch, "true", false)
        .map(|mut c| {
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c
        });
    let run = match started {
        Ok(mut command) => command.output().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match run {
        Ok(out) if out.status.success() => Check::new(
            "sandbox",
            Outcome::Ok,
            "bwrap works: repo code runs without network, token, home or .git write access",
        ),
        Ok(out) => Check::new(
            "sandbox",
            Outcome::Failure,
            format!(
                "bwrap is installed but cannot start a sandbox: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
        .fix("allow unprivileged user namespaces, or run gaffer where bubblewrap works"),
        Err(e) => Check::new("sandbox", Outcome::Failure, e)
            .fix("apt-get install -y bubblewrap (or, at your own risk, CHECKS_SANDBOX=off)"),
    }
}

async fn ollama(gaffer: &Gaffer) -> Vec<Check> {
    let settings = &gaffer.settings.llm;
    let mut checks = Vec::new();
    let mut by_url: BTreeMap<&str, Vec<(Role, &str)>> = BTreeMap::new();
    for (role, llm) in &settings.roles {
        if llm.provider == Provider::OpenAi {
            continue; // see openai_servers
        }
        match &llm.model {
            Some(model) => by_url
                .entry(&llm.base_url)
                .or_default()
                .push((*role, model)),
            None => checks.push(Check::new(
                format!("model:{role}"),
                Outcome::Ok,
                "no model (built-in behaviour)",
            )),
        }
    }
    for warning in settings.warnings() {
        checks.push(Check::new("num_ctx", Outcome::Warning, warning));
    }
    for (url, roles) in by_url {
        let pull_prefix = if url == "http://localhost:11434" || url == "http://127.0.0.1:11434" {
            String::new()
        } else {
            format!("OLLAMA_HOST={url} ")
        };
        match gaffer.llm.list_models(url).await {
            Err(e) => {
                checks.push(
                    Check::new(format!("ollama:{url}"), Outcome::Failure, e.to_string())
                        .fix(format!("start Ollama there (`ollama serve`) or set OLLAMA_BASE_URL; roles needing it: {}",
                            roles.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>().join(", "))),
                );
            }
            Ok(served) => {
                checks.push(Check::new(
                    format!("ollama:{url}"),
                    Outcome::Ok,
                    format!("answers, {} models served", served.len()),
                ));
                for (role, model) in roles {
                    checks.push(if model_served(&served, model) {
                        Check::new(
                            format!("model:{role}"),
                            Outcome::Ok,
                            format!("{model} is present on {url}"),
                        )
                    } else {
                        Check::new(
                            format!("model:{role}"),
                            Outcome::Failure,
                            format!("{model} is not on {url}"),
                        )
                        .fix(format!("{pull_prefix}ollama pull {model}"))
                    });
                }
            }
        }
    }
    checks
}

/// Each OpenAI-compatible server that a role uses: does it answer (with the role's key),
/// and does it list the role's model (`GET /models`)? A miss names what is served.
async fn openai_servers(gaffer: &Gaffer) -> Vec<Check> {
    let settings = &gaffer.settings.llm;
    type Server<'a> = (&'a str, Option<&'a str>);
    let mut by_server: BTreeMap<Server, Vec<(Role, &str)>> = BTreeMap::new();
    let mut checks = Vec::new();
    for (role, llm) in &settings.roles {
        if llm.provider != Provider::OpenAi {
            continue;
        }
        match &llm.model {
            Some(model) => by_server
                .entry((&llm.base_url, llm.api_key_env.as_deref()))
                .or_default()
                .push((*role, model)),
            None => checks.push(Check::new(
                format!("model:{role}"),
                Outcome::Ok,
                "no model (built-in behaviour)",
            )),
        }
    }
    for ((url, _), roles) in by_server {
        let names = roles
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let served = match gaffer.llm.served(roles[0].0).await {
            Ok(served) => served,
            Err(e) => {
                checks.push(
                    Check::new(format!("openai:{url}"), Outcome::Failure, e.to_string()).fix(
                        format!("start the server there, or fix the base URL or key of: {names}"),
                    ),
                );
                continue;
            }
        };
        let listing = if served.is_empty() {
            "none".to_string()
        } else {
            served.join(", ")
        };
        checks.push(Check::new(
            format!("openai:{url}"),
            Outcome::Ok,
            format!("answers, serves {listing}"),
        ));
        for (role, model) in roles {
            checks.push(if gaffer.llm.is_served(role, &served, model) {
                Check::new(
                    format!("model:{role}"),
                    Outcome::Ok,
                    format!("{model} is served by {url}"),
                )
            } else {
                Check::new(
                    format!("model:{role}"),
                    Outcome::Failure,
                    format!("{model} is not among the models {url} serves ({listing})"),
                )
                .fix(format!(
                    "load {model} in that server (llama-server --model/-hf, vllm serve, lms load, ollama pull), or set LLM_{}_MODEL to one it serves",
                    role.as_str().to_ascii_uppercase()
                ))
            });
        }
    }
    checks
}

async fn github(gaffer: &Gaffer, per_repo: bool, probe_writes: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let repos = match gaffer.registry.list().await {
        Ok((repos, _)) => repos,
        Err(_) => return checks,
    };
    let active: Vec<_> = repos
        .into_iter()
        .filter(|r| r.mode != Mode::Disabled && r.forge == ForgeKind::Github)
        .collect();
    let needs_writes = active.iter().any(|r| r.mode == Mode::Pr);
    if gaffer.settings.github.token.is_none() {
        let outcome = if needs_writes {
            Outcome::Failure
        } else {
            Outcome::Warning
        };
        checks.push(
            Check::new(
                "github:token",
                outcome,
                "GH_TOKEN is not set: public repos only, 60 requests an hour, no PRs",
            )
            .fix("set GH_TOKEN (README: Connecting a real repo lists the permissions)"),
        );
    }
    if per_repo {
        for repo in &active {
            checks.extend(github_repo(gaffer, repo, probe_writes).await);
        }
    }
    checks
}

/// One repo: reachable, and with a token, whether it may do what the repo's mode needs.
async fn github_repo(
    gaffer: &Gaffer,
    repo: &crate::registry::Repo,
    probe_writes: bool,
) -> Vec<Check> {
    let name = repo.full_name();
    let label = format!("github:{name}");
    if gaffer.settings.github.token.is_none() {
        return vec![match gaffer.forge(repo).repo_info(&name).await {
            Ok(info) => Check::new(
                label,
                Outcome::Ok,
                format!("reachable, default branch {}", info.default_branch),
            ),
            Err(e) => Check::new(label, Outcome::Failure, e.to_string()),
        }];
    }
    let writes = repo.mode == Mode::Pr;
    let access = match crate::forge::github::access::check(
        &gaffer.github,
        &name,
        writes,
        probe_writes,
    )
    .await
    {
        Ok(access) => access,
        Err(e) => return vec![Check::new(label, Outcome::Failure, e.to_string())],
    };
    let kind = match &access.kind {
        crate::forge::github::access::TokenKind::Classic { .. } => "classic token",
        crate::forge::github::access::TokenKind::FineGrained => "fine-grained token",
    };
    let mut checks = vec![if access.missing.is_empty() {
        Check::new(
            label.clone(),
            Outcome::Ok,
            format!(
                "{kind} may do what {} mode needs: {}",
                repo.mode,
                access.granted.join("; ")
            ),
        )
    } else {
        Check::new(
            label.clone(),
            Outcome::Failure,
            format!(
                "the {kind} lacks what {} mode needs: {}",
                repo.mode,
                access.missing.join("; ")
            ),
        )
        .fix(format!(
            "grant {} to GH_TOKEN (README: Connecting a real repo)",
            access.missing.join(", ")
        ))
    }];
    for unverified in access.unverified {
        checks.push(
            Check::new(
                format!("{label}:unverified"),
                Outcome::Warning,
                format!("not checked: {unverified}"),
            )
            .fix("make sure the token grants it"),
        );
    }
    checks
}
