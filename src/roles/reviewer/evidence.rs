//! A verdict is only as good as its evidence. "Met" from the model stands only when it
//! cites the diff (a file the PR changes, with lines if given) or a check or test that
//! shows it; otherwise it becomes "not met", saying why. Criteria about tests are not left
//! to the model at all: the diff must touch a test file, the checks must pass, and where a
//! proof was run, a test must fail on the base and pass on the head.

use super::Judged;
use crate::agent::outline::is_test_path;
use crate::agent::proof::Proof;
use crate::forge::PullFile;
use crate::workspace::checks::CheckRun;

/// What the checks showed, as the rules need it.
pub(super) struct CheckFacts {
    pub passed: bool,
    pub command: String,
    pub reason: String,
    /// Every test the runner named.
    pub tests: Vec<String>,
}

impl CheckFacts {
    pub fn of(run: &CheckRun) -> CheckFacts {
        CheckFacts {
            passed: run.passed,
            command: run.command.clone(),
            reason: run.comparison.reason.clone(),
            tests: run.results.tests.keys().cloned().collect(),
        }
    }
}

/// Applies the rules to every criterion; returns how many "met" claims were refused.
pub(super) fn judge(
    acceptance: &mut [Judged],
    files: &[PullFile],
    checks: &CheckFacts,
    proof: Option<&Proof>,
) -> u32 {
    let mut downgraded = 0;
    for judged in acceptance.iter_mut() {
        if is_about_tests(&judged.criterion) {
            mechanical(judged, files, checks, proof);
            continue;
        }
        if judged.met && !cites_real_evidence(&judged.evidence, files, checks) {
            downgraded += 1;
            judged.met = false;
            judged.reason = format!(
                "the model said met but cited no evidence from the diff or the checks (it said: {}; evidence: {})",
                judged.reason.trim(),
                if judged.evidence.trim().is_empty() { "none" } else { judged.evidence.trim() }
            );
        }
    }
    downgraded
}

fn is_about_tests(criterion: &str) -> bool {
    crate::agent::proof::asks_for_tests(criterion)
}

/// A test criterion, from the facts alone.
fn mechanical(judged: &mut Judged, files: &[PullFile], checks: &CheckFacts, proof: Option<&Proof>) {
    let tests: Vec<&str> = files
        .iter()
        .map(|f| f.filename.as_str())
        .filter(|f| is_test_path(f))
        .collect();
    let (met, reason) = if tests.is_empty() {
        (false, "the diff touches no test file".to_string())
    } else if !checks.passed {
        (
            false,
            format!("the checks fail on this commit: {}", checks.reason),
        )
    } else {
        match proof {
            Some(p) if p.proven => (true, format!("checked by gaffer: {}", p.summary)),
            Some(p) => (false, format!("checked by gaffer: {}", p.summary)),
            None => (
                true,
                "checked by gaffer: the diff changes tests and the checks pass".to_string(),
            ),
        }
    };
    judged.met = met;
    judged.reason = reason;
    judged.evidence = if tests.is_empty() {
        "the diff's file list".into()
    } else {
        format!("{} and `{}`", tests.join(", "), checks.command)
    };
}

/// Whether the evidence names a file of the diff, or a check or test that ran.
fn cites_real_evidence(evidence: &str, files: &[PullFile], checks: &CheckFacts) -> bool {
    let evidence = evidence.trim();
    if evidence.is_empty() {
        return false;
    }
    let lower = evidence.to_ascii_lowercase();
    let names_a_file = files.iter().any(|f| {
        let name = f.filename.to_ascii_lowercase();
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        lower.contains(&name) || (base.contains('.') && lower.contains(&base))
    });
    let names_a_test = checks
        .tests
        .iter()
        .any(|t| lower.contains(&t.to_ascii_lowercase()));
    let names_the_checks = checks.passed
        && (lower.contains("checks") || lower.contains(&checks.command.to_ascii_lowercase()));
    names_a_file || names_a_test || names_the_checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> PullFile {
        PullFile {
            filename: name.into(),
            status: "modified".into(),
            additions: 3,
            deletions: 1,
            patch: Some("@@ -1 +1 @@".into()),
        }
    }

    fn judged(criterion: &str, met: bool, evidence: &str) -> Judged {
        Judged {
            criterion: criterion.into(),
            met,
            reason: "looks right".into(),
            evidence: evidence.into(),
        }
    }

    fn checks(passed: bool) -> CheckFacts {
        CheckFacts {
            passed,
            command: "python3 -m unittest".into(),
            reason: "r".into(),
            tests: vec!["tests.test_total.T.test_a".into()],
        }
    }

    #[test]
    fn met_without_evidence_is_not_met() {
        let files = [file("src/app.py")];
        let mut items = vec![
            judged("prints a total line", true, ""),
            judged("prints a total line", true, "src/app.py lines 30-34"),
            judged("handles stdin", true, "the code looks fine"),
        ];
        assert_eq!(judge(&mut items, &files, &checks(true), None), 2);
        assert!(!items[0].met && items[0].reason.contains("cited no evidence"));
        assert!(items[1].met);
        assert!(!items[2].met);
    }

    #[test]
    fn test_criteria_are_judged_from_the_facts_not_the_model() {
        let mut items = vec![judged("a unit test covers it", true, "tests/test_x.py")];
        judge(&mut items, &[file("src/app.py")], &checks(true), None);
        assert!(!items[0].met, "no test file in the diff");
        let mut items = vec![judged("a unit test covers it", false, "")];
        let files = [file("src/app.py"), file("tests/test_total.py")];
        judge(&mut items, &files, &checks(true), None);
        assert!(items[0].met, "{}", items[0].reason);
        let weak = Proof {
            proven: false,
            test_files: vec!["tests/test_total.py".into()],
            fail_to_pass: vec![],
            method: "per_test".into(),
            summary: "the new tests also pass without the change".into(),
        };
        let mut items = vec![judged("a unit test covers it", true, "tests/test_total.py")];
        judge(&mut items, &files, &checks(true), Some(&weak));
        assert!(!items[0].met && items[0].reason.contains("also pass without"));
    }
}
