//! Running a repo's checks on a clone, in two sandboxed phases ([`crate::safety::sandbox`]):
//! **set-up** (`checks.setup` or detected: installs dependencies, with network, the clone and
//! the repo's cache directory writable) and **test** (`checks.test`, then `checks.lint`: no
//! network). Each phase has its own timeout, its output is kept (bounded) with any secret
//! redacted, per-test results are read from it ([`results`]), and a change is judged against
//! its base's results ([`results::compare`]), so failures already there do not count.
//! With `checks.coverage_min`, the test phase's line coverage is measured where gaffer can
//! ([`coverage`]) and a change below the minimum fails.

pub mod coverage;
pub mod detect;
pub mod results;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use self::detect::Plan;
use self::results::{Comparison, Side, TestResults};
use crate::safety::sandbox::Sandbox;

/// Bytes of output shown to the model and in the PR.
const TAIL_BYTES: usize = 4000;
/// Bytes of output kept per phase: the first quarter and the last three quarters.
pub const OUTPUT_MAX_BYTES: usize = 1024 * 1024;

/// One phase's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseRun {
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The sandbox let this phase reach the network (set-up only).
    pub network: bool,
    /// `false` when the command could not even start (no bubblewrap, say).
    pub started: bool,
    pub duration_ms: u64,
    /// stdout and stderr as they came, up to [`OUTPUT_MAX_BYTES`] (the middle dropped).
    pub output: String,
}

impl PhaseRun {
    fn tail(&self) -> String {
        tail(&self.output, TAIL_BYTES).to_string()
    }
}

/// The base commit's results, as compared against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub sha: String,
    pub side: Side,
    /// Taken from the store (an earlier run on the same base SHA and commands).
    pub cached: bool,
}

/// The outcome of the checks on one tree: the top-level fields describe the test phase
/// and the verdict (kept flat for the API's users); the phases and the comparison follow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRun {
    /// What the commands came from ("python (requirements.txt)", ...).
    pub detected: String,
    /// The test command.
    pub command: String,
    /// The verdict: nothing newly broken against the base (or, without one, all passed).
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Ran inside bwrap (no network in the test phase, read-only system).
    pub sandboxed: bool,
    pub duration_ms: u64,
    /// The last part of the test phase's output.
    pub output_tail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup: Option<PhaseRun>,
    pub test: PhaseRun,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lint: Option<PhaseRun>,
    /// Per-test results of this tree.
    pub results: TestResults,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    pub comparison: Comparison,
    /// Line coverage against `checks.coverage_min` (absent when the repo sets none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<coverage::Coverage>,
}

impl CheckRun {
    /// The verdict on the tests and lint alone, coverage left aside (for the fail-to-pass
    /// proof, where the base's code running the new tests is expected to cover less).
    pub fn tests_ok(&self) -> bool {
        self.comparison.ok || self.coverage_failed()
    }

    /// Whether coverage below `checks.coverage_min` is what failed the checks.
    pub fn coverage_failed(&self) -> bool {
        self.coverage.as_ref().is_some_and(|c| c.failed_checks)
    }

    /// This tree's side of a comparison.
    pub fn side(&self) -> Side {
        side_of(
            self.setup.as_ref(),
            &self.test,
            self.lint.as_ref(),
            &self.results,
        )
    }
}

fn side_of(
    setup: Option<&PhaseRun>,
    test: &PhaseRun,
    lint: Option<&PhaseRun>,
    results: &TestResults,
) -> Side {
    Side {
        setup_failed: setup.is_some_and(|s| !s.passed),
        tests_passed: test.passed,
        lint_passed: lint.map(|l| l.passed),
        results: results.clone(),
    }
}

/// What the checks run with.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// The test (and lint) phase's limit.
    pub timeout: Duration,
    /// The set-up phase's limit.
    pub setup_timeout: Duration,
    /// How repo code is confined (see [`crate::safety::sandbox`]).
    pub sandbox: Sandbox,
    /// Removed from the output wherever it appears (the output goes into prompts and PRs).
    pub secrets: Vec<SecretString>,
    /// Per-repo caches live under here (`<owner>/<name>`).
    pub cache_root: PathBuf,
    /// Each repo's cache is trimmed back under this many bytes after a run.
    pub cache_max_bytes: u64,
}

impl CheckSettings {
    /// The repo's cache directory, created if needed.
    pub fn cache_dir(&self, owner: &str, name: &str) -> PathBuf {
        let dir = self.cache_root.join(owner).join(name);
        std::fs::create_dir_all(&dir).ok();
        std::fs::canonicalize(&dir).unwrap_or(dir)
    }
}

/// The plan for a clone: `.llm-team.yml`'s commands, the rest detected from its files.
pub fn plan_for(
    clone: &Path,
    files: &[String],
    config: &crate::team::team_config::TeamConfig,
) -> Plan {
    let mut plan = detected_plan(clone, files, config);
    if config.coverage_required().is_some() {
        coverage::wrap(&mut plan);
    }
    plan
}

fn detected_plan(
    clone: &Path,
    files: &[String],
    config: &crate::team::team_config::TeamConfig,
) -> Plan {
    let read = |name: &str| {
        crate::safety::paths::RepoPath::parse(name)
            .ok()
            .and_then(|p| {
                crate::safety::paths::read_to_string(clone, &p)
                    .ok()
                    .flatten()
            })
    };
    detect::plan(
        files,
        &read,
        &detect::Configured {
            setup: config.setup_command.as_deref(),
            test: config.test_command.as_deref(),
            lint: config.lint_command.as_deref(),
        },
    )
}

/// A short fingerprint of the commands, so a baseline is reused only for the same checks.
pub fn plan_key(plan: &Plan) -> String {
    use sha2::Digest;
    let text = format!(
        "{}\n{:?}\n{}\n{:?}\n{:?}{}",
        plan.detected,
        plan.setup,
        plan.test,
        plan.lint,
        plan.env,
        // Only when measuring, so the keys of earlier baselines still match without it.
        plan.measured_test
            .as_deref()
            .map(|m| format!("\n{m}"))
            .unwrap_or_default()
    );
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// Runs set-up (if any), the tests and the lint (if any) on the clone as it stands, and
/// judges the result against `baseline` (`None`: every failure counts) and, when given,
/// the line coverage against `coverage_min` (absolute: the tree's number, not a delta).
pub async fn run_plan(
    clone: &Path,
    cache: &Path,
    plan: &Plan,
    settings: &CheckSettings,
    baseline: Option<Baseline>,
    known_failures: &[String],
    coverage_min: Option<f64>,
) -> CheckRun {
    let started = Instant::now();
    let setup = match &plan.setup {
        Some(script) => Some(
            phase(
                clone,
                cache,
                plan,
                script,
                true,
                settings.setup_timeout,
                settings,
            )
            .await,
        ),
        None => None,
    };
    let reports = fresh_reports_dir(cache);
    let test = phase(
        clone,
        cache,
        plan,
        plan.measured_test.as_deref().unwrap_or(&plan.test),
        false,
        settings.timeout,
        settings,
    )
    .await;
    let junit = read_junit(&reports);
    let mut coverage = coverage::judge(plan, &reports, coverage_min);
    let lint = match &plan.lint {
        Some(script) => Some(
            phase(
                clone,
                cache,
                plan,
                script,
                false,
                settings.timeout,
                settings,
            )
            .await,
        ),
        None => None,
    };
    trim_cache(cache, settings.cache_max_bytes);
    // JUnit XML, when the runner wrote some, names every test; else the output is read.
    let results = if junit.is_empty() {
        results::parse(&test.output)
    } else {
        junit
    };
    let side = side_of(setup.as_ref(), &test, lint.as_ref(), &results);
    let mut comparison =
        results::compare(baseline.as_ref().map(|b| &b.side), &side, known_failures);
    // Checks that could not run prove nothing, whatever the base did.
    if let Some(never) = [setup.as_ref(), Some(&test), lint.as_ref()]
        .into_iter()
        .flatten()
        .find(|p| !p.started)
    {
        comparison.ok = false;
        comparison.reason = format!("the checks could not run: {}", never.output);
    }
    // No tests at all is not a pass, even when the base had none either.
    if plan.detected == detect::NOTHING {
        comparison.ok = false;
        comparison.reason =
            "no test command detected and none configured (set checks.test in .llm-team.yml)"
                .into();
    }
    // A timeout is gaffer's limit, not the repo's verdict: the change is not shown to pass.
    if test.timed_out {
        comparison.ok = false;
        comparison.reason = format!(
            "the tests were stopped after {}s (CHECKS_TIMEOUT)",
            settings.timeout.as_secs()
        );
    }
    // Below the minimum fails a change that passes otherwise; not measured never fails one.
    if let Some(cov) = coverage
        .as_mut()
        .filter(|c| c.status == coverage::CoverageStatus::Below)
    {
        if comparison.ok {
            comparison.ok = false;
            comparison.reason = cov.summary.clone();
            cov.failed_checks = true;
        }
    }
    CheckRun {
        detected: plan.detected.clone(),
        command: plan.test.clone(),
        passed: comparison.ok,
        exit_code: test.exit_code,
        timed_out: test.timed_out,
        sandboxed: settings.sandbox.enforced(),
        duration_ms: started.elapsed().as_millis() as u64,
        output_tail: test.tail(),
        setup,
        test,
        lint,
        results,
        baseline,
        comparison,
        coverage,
    }
}

/// Runs one phase's `script` with `sh -c` in `clone`, sandboxed (network only for set-up).
async fn phase(
    clone: &Path,
    cache: &Path,
    plan: &Plan,
    script: &str,
    network: bool,
    timeout: Duration,
    settings: &CheckSettings,
) -> PhaseRun {
    let began = Instant::now();
    let failed = |why: String| PhaseRun {
        command: script.into(),
        passed: false,
        exit_code: None,
        timed_out: false,
        network,
        started: false,
        duration_ms: 0,
        output: why,
    };
    let mut process = match settings
        .sandbox
        .command_with(clone, script, network, Some(cache))
    {
        Ok(process) => process,
        Err(e) => return failed(e.to_string()),
    };
    let cache_text = cache.to_string_lossy().into_owned();
    process.env("GAFFER_CACHE", &cache_text);
    process.env("GAFFER_REPORTS", cache.join(REPORTS));
    for (key, value) in &plan.env {
        process.env(key, value.replace("$GAFFER_CACHE", &cache_text));
    }
    let mut path: Vec<PathBuf> = plan.path_first.iter().map(|p| cache.join(p)).collect();
    path.extend(std::env::split_paths(&crate::safety::git::safe_path()));
    if let Ok(joined) = std::env::join_paths(path) {
        process.env("PATH", joined);
    }
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match process.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start the checks: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut output = Bounded::default();
    let collect = async {
        let (mut out_done, mut err_done) = (false, false);
        let mut a = [0u8; 8192];
        let mut b = [0u8; 8192];
        while !(out_done && err_done) {
            tokio::select! {
                n = stdout.read(&mut a), if !out_done => match n {
                    Ok(0) | Err(_) => out_done = true,
                    Ok(n) => output.push(&a[..n]),
                },
                n = stderr.read(&mut b), if !err_done => match n {
                    Ok(0) | Err(_) => err_done = true,
                    Ok(n) => output.push(&b[..n]),
                },
            }
        }
        child.wait().await.ok()
    };
    let (status, timed_out) = match tokio::time::timeout(timeout, collect).await {
        Ok(status) => (status, false),
        Err(_) => (None, true),
    };
    let mut text = output.finish();
    if timed_out {
        text.push_str(&format!(
            "\n[gaffer: killed after {}s]\n",
            timeout.as_secs()
        ));
    }
    let secrets: Vec<&SecretString> = settings.secrets.iter().collect();
    let run = PhaseRun {
        command: script.into(),
        passed: status.is_some_and(|s| s.success()),
        exit_code: status.and_then(|s| s.code()),
        timed_out,
        network,
        started: true,
        duration_ms: began.elapsed().as_millis() as u64,
        output: crate::safety::redact(&text, &secrets),
    };
    crate::engine::transcript::check(&run, settings.sandbox.enforced()).await;
    run
}

/// Where a test command may write JUnit XML (`$GAFFER_REPORTS`, under the repo's cache).
const REPORTS: &str = "reports";
/// JUnit files read per run, and bytes read per file.
const REPORTS_MAX_FILES: usize = 50;
const REPORT_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// Empties the reports directory before the test phase (a stale report never counts).
fn fresh_reports_dir(cache: &Path) -> PathBuf {
    let dir = cache.join(REPORTS);
    match std::fs::symlink_metadata(&dir) {
        Ok(meta) if meta.is_dir() => {
            std::fs::remove_dir_all(&dir).ok();
        }
        Ok(_) => {
            std::fs::remove_file(&dir).ok();
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(&dir).ok();
    dir
}

/// Every `*.xml` the test phase left in the reports directory, parsed as JUnit. Repo code
/// wrote them: only regular files are read (never through a symlink), each bounded.
fn read_junit(dir: &Path) -> TestResults {
    let mut merged = TestResults::default();
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return merged;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "xml"));
    files.sort();
    for path in files.into_iter().take(REPORTS_MAX_FILES) {
        if let Some(text) = read_report(&path) {
            let parsed = results::parse_junit(&text);
            merged.tests.extend(parsed.tests);
        }
    }
    merged
}

/// A report the test phase wrote (repo code did): a regular file only, never through a
/// symlink, at most [`REPORT_MAX_BYTES`].
fn read_report(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut bytes = Vec::new();
    file.take(REPORT_MAX_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Output kept within [`OUTPUT_MAX_BYTES`]: the head, and a rolling tail.
#[derive(Default)]
struct Bounded {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: usize,
}

impl Bounded {
    const HEAD: usize = OUTPUT_MAX_BYTES / 4;
    const TAIL: usize = OUTPUT_MAX_BYTES - Self::HEAD;

    fn push(&mut self, mut bytes: &[u8]) {
        if self.head.len() < Self::HEAD {
            let take = bytes.len().min(Self::HEAD - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * Self::TAIL {
            let cut = self.tail.len() - Self::TAIL;
            self.dropped += cut;
            self.tail.drain(..cut);
        }
    }

    fn finish(mut self) -> String {
        if self.tail.len() > Self::TAIL {
            let cut = self.tail.len() - Self::TAIL;
            self.dropped += cut;
            self.tail.drain(..cut);
        }
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[gaffer: {} bytes of output left out]\n",
                self.dropped
            ));
        }
        text.push_str(&String::from_utf8_lossy(&self.tail));
        text
    }
}

/// The last `max` bytes of `text`, on a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    &text[start..]
}

/// Keeps a repo's cache under `max` bytes: when over, whole tool directories go, build
/// outputs first, then downloads, then the venv (the next set-up makes them again).
pub fn trim_cache(cache: &Path, max: u64) {
    const ORDER: &[&str] = &[
        "cargo-target",
        "go-build",
        "npm",
        "pip",
        "cargo",
        "go",
        "venv",
    ];
    let mut size = dir_size(cache);
    if size <= max {
        return;
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let rank = |p: &PathBuf| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        ORDER.iter().position(|o| *o == name).unwrap_or(0)
    };
    entries.sort_by_key(rank);
    for entry in entries {
        if size <= max {
            break;
        }
        let freed = dir_size(&entry);
        let removed = if entry.is_dir() {
            std::fs::remove_dir_all(&entry)
        } else {
            std::fs::remove_file(&entry)
        };
        if removed.is_ok() {
            tracing::info!(dir = %entry.display(), freed, "checks cache trimmed");
            size = size.saturating_sub(freed);
        }
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_head_and_tail() {
        let mut b = Bounded::default();
        b.push(b"start\n");
        for _ in 0..3000 {
            b.push(&[b'x'; 1000]);
        }
        b.push(b"\nthe end\n");
        let text = b.finish();
        assert!(text.len() <= OUTPUT_MAX_BYTES + 100, "{}", text.len());
        assert!(text.starts_with("start\n") && text.ends_with("the end\n"));
        assert!(text.contains("bytes of output left out"));
    }

    #[test]
    fn the_cache_is_trimmed_build_output_first() {
        let dir = tempfile::TempDir::new().unwrap();
        for (sub, kb) in [("venv", 30), ("cargo-target", 50), ("pip", 30)] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
            std::fs::write(dir.path().join(sub).join("f"), vec![0u8; kb * 1024]).unwrap();
        }
        trim_cache(dir.path(), 100 * 1024);
        assert!(!dir.path().join("cargo-target").exists());
        assert!(dir.path().join("venv").exists() && dir.path().join("pip").exists());
        trim_cache(dir.path(), 100 * 1024);
        assert!(dir.path().join("venv/f").exists());
    }
}
