//! Proof of a change: the tests it adds or changes must fail on the base commit and pass
//! with the change (fail-to-pass, as SWE-bench judges). The branch's own checks already
//! passed; here the change's non-test files are put back as they are on the base, the
//! checks run again with only the new tests, and the tests that fail there but passed on
//! the branch are the evidence. The working tree is restored exactly afterwards.

use serde::Serialize;

use super::outline::is_test_path;
use crate::roles::RepoChecks;
use crate::workspace::checks::results::TestStatus;
use crate::workspace::checks::{Baseline, CheckRun};
use crate::workspace::Clone;

/// Whether a task's text or an acceptance criterion asks for tests ("a unit test in
/// tests/ covers it", "add a regression test"), as opposed to merely mentioning them ("CI
/// runs the tests"). One rule for the Developer's proof and the Reviewer's mechanical
/// verdicts.
pub fn asks_for_tests(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "unit test",
        "smoke test",
        "regression test",
        "integration test",
        "tests/",
        "test covers",
        "tests cover",
        "test for ",
        "tests for ",
        "add a test",
        "adds a test",
        "add tests",
        "adds tests",
        "new test",
        "with a test",
        "with tests",
        "test that",
    ]
    .iter()
    .any(|phrase| lower.contains(phrase))
}

/// What the proof found, for the PR, the Reviewer and the statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proof {
    /// At least one new or changed test fails on the base and passes with the change.
    pub proven: bool,
    /// The test files the change adds or changes.
    pub test_files: Vec<String>,
    /// Tests failing on the base (with the new tests) and passing on the branch; empty
    /// with `method: exit_code` when the runner names no tests.
    pub fail_to_pass: Vec<String>,
    /// `per_test` or `exit_code`.
    pub method: String,
    /// One sentence for the model, the PR and the Reviewer.
    pub summary: String,
}

/// Runs the proof on the clone's uncommitted change (against HEAD, the base commit).
pub async fn prove(
    clone: &Clone,
    checks: &RepoChecks,
    baseline: &Baseline,
    branch_run: &CheckRun,
    changed: &[String],
) -> Result<Proof, String> {
    let test_files: Vec<String> = changed
        .iter()
        .filter(|f| is_test_path(f))
        .cloned()
        .collect();
    let code_files: Vec<String> = changed
        .iter()
        .filter(|f| !is_test_path(f))
        .cloned()
        .collect();
    if test_files.is_empty() {
        return Ok(Proof {
            proven: false,
            test_files,
            fail_to_pass: Vec::new(),
            method: "none".into(),
            summary: "the change adds or changes no test file (tests/, test_*.py, *_test.go, *.test.js, ...)".into(),
        });
    }
    if code_files.is_empty() {
        return Ok(Proof {
            proven: false,
            test_files,
            fail_to_pass: Vec::new(),
            method: "none".into(),
            summary: "the change only touches tests, so nothing it changes can make a test pass"
                .into(),
        });
    }
    let snapshot = clone.snapshot().await.map_err(|e| e.to_string())?;
    let reverted = clone.revert_to_head(&code_files).await;
    let base_run = match reverted {
        Ok(()) => Some(checks.run(clone, Some(baseline.clone())).await),
        Err(_) => None,
    };
    clone.restore(&snapshot).await.map_err(|e| e.to_string())?;
    let Some(base_run) = base_run else {
        return Err("could not put the base's files back to run the proof".into());
    };
    // What fails with the base's code and the new tests that did not fail on the base
    // (the comparison against the baseline), and which of those pass on the branch. A
    // test module that cannot even import on the base (it uses what only the change adds)
    // fails under the module's name: the branch's tests inside it count.
    let newly_failing: Vec<String> = if base_run.comparison.method == "per_test" {
        base_run.comparison.newly_broken.clone()
    } else {
        base_run
            .results
            .tests
            .iter()
            .filter(|(_, s)| **s == TestStatus::Failed)
            .map(|(name, _)| name.clone())
            .collect()
    };
    // A test passes on the branch when the runner said so, or when the runner named it
    // nowhere in a test phase that exited 0 (output interleaving can hide a line).
    let passes_on_branch = |name: &str| match branch_run.results.tests.get(name) {
        Some(status) => *status == TestStatus::Passed,
        None => branch_run.test.passed,
    };
    let fail_to_pass: Vec<String> = newly_failing
        .iter()
        .flat_map(|failed| {
            let inside: Vec<String> = branch_run
                .results
                .tests
                .iter()
                .filter(|(name, s)| **s == TestStatus::Passed && same_or_inside(name, failed))
                .map(|(name, _)| name.clone())
                .collect();
            if inside.is_empty() && passes_on_branch(failed) {
                vec![failed.clone()]
            } else {
                inside
            }
        })
        .collect();
    let passing_on_branch = branch_run.test.passed || !branch_run.results.is_empty();
    let per_test = !newly_failing.is_empty() && passing_on_branch;
    let (proven, method) = if per_test {
        (!fail_to_pass.is_empty(), "per_test")
    } else {
        // No test names to compare: the exit codes decide, against the base.
        // Coverage is left aside on the base: its code runs the new tests with less covered.
        (!base_run.tests_ok() && branch_run.tests_ok(), "exit_code")
    };
    let summary = if proven && !fail_to_pass.is_empty() {
        format!(
            "{} test(s) fail on the base commit and pass with the change: {}",
            fail_to_pass.len(),
            fail_to_pass
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if proven {
        format!(
            "the tests in {} fail on the base commit (exit {}) and pass with the change",
            test_files.join(", "),
            base_run
                .test
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into())
        )
    } else {
        format!(
            "the new or changed tests ({}) also pass without the change, so they do not show that it works: write a test that fails on the current code (without the change: {})",
            test_files.join(", "),
            base_run.comparison.reason
        )
    };
    Ok(Proof {
        proven,
        test_files,
        fail_to_pass,
        method: method.into(),
        summary,
    })
}

/// Whether `test` is `failed` or lives inside it (`tests.test_x` holds
/// `tests.test_x.XTest.test_a`; `tests/test_x.py` holds `tests/test_x.py::test_a`).
fn same_or_inside(test: &str, failed: &str) -> bool {
    test == failed
        || test.starts_with(&format!("{failed}."))
        || test.starts_with(&format!("{failed}::"))
        || test.starts_with(&format!("{failed}/"))
        || loader_failure_module(failed).is_some_and(|m| test.starts_with(&format!("{m}.")))
}

/// unittest names a module that failed to import `unittest.loader._FailedTest.tests.test_x`
/// or `tests.test_x (unittest.loader._FailedTest...)`, depending on the version.
fn loader_failure_module(name: &str) -> Option<&str> {
    if let Some(rest) = name.strip_prefix("unittest.loader._FailedTest.") {
        return Some(rest);
    }
    name.contains("_FailedTest")
        .then(|| name.split_whitespace().next().unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_inside_a_module_that_failed_to_import_count() {
        assert!(same_or_inside(
            "tests.test_sub.SubTest.test_sub",
            "tests.test_sub"
        ));
        assert!(same_or_inside(
            "tests/test_sub.py::test_sub",
            "tests/test_sub.py"
        ));
        assert!(same_or_inside(
            "tests.test_sub.SubTest.test_sub",
            "unittest.loader._FailedTest.tests.test_sub"
        ));
        assert!(!same_or_inside(
            "tests.test_subtract.T.test",
            "tests.test_sub"
        ));
    }

    #[test]
    fn asking_for_tests_is_not_mentioning_them() {
        assert!(asks_for_tests(
            "A unit test in tests/ covers the total line"
        ));
        assert!(asks_for_tests("Add a regression test for the crash"));
        assert!(!asks_for_tests(
            "A GitHub Actions workflow runs the tests on every pull request"
        ));
        assert!(!asks_for_tests("The workflow fails when a test fails"));
    }
}
