//! Line coverage of a test run, for `checks.coverage_min`. Only where gaffer wrote the test
//! command itself and knows a tool for it: the detected Python commands, run under
//! coverage.py (`python -m coverage run --source=. -m pytest|unittest ...`) when the python
//! that runs the tests can import it inside the sandbox. The data file and the JSON report
//! go to the run's reports directory (emptied before every run), never into the clone.
//! Everything else is "not measured", with the reason: a change is never failed for that.

use std::path::Path;

use serde::Serialize;

use super::detect::{python_test, CoverageSupport, Plan};

/// The JSON report coverage.py writes, under the reports directory.
const REPORT: &str = "coverage.json";
/// Left in the reports directory when the python cannot import coverage.py.
const UNAVAILABLE: &str = "coverage-unavailable";
/// Files named in a reason and a PR, the least covered first.
const FILES_SHOWN: usize = 3;

/// Sets the test command that measures coverage ([`Plan::measured_test`], run in place of
/// `plan.test`) when gaffer can measure it for this plan (a detected Python command).
pub fn wrap(plan: &mut Plan) {
    let CoverageSupport::Python { python } = &plan.coverage else {
        return;
    };
    let data = "\"$GAFFER_REPORTS/.coverage\"";
    let measured = python_test(
        python,
        &format!("{python} -m coverage run --data-file={data} --source=. -m"),
    );
    let plain = python_test(python, &format!("exec {python} -m"));
    plan.measured_test = Some(format!(
        r#"if {python} -c "import coverage" 2>/dev/null; then
{measured}
status=$?
rm -f "$GAFFER_REPORTS/{REPORT}"
{python} -m coverage json -q --data-file={data} -o "$GAFFER_REPORTS/{REPORT}" >/dev/null 2>&1
exit $status
else
: > "$GAFFER_REPORTS/{UNAVAILABLE}"
{plain}
fi"#
    ));
}

/// How the measured coverage compares with `checks.coverage_min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageStatus {
    /// At or above the minimum.
    Met,
    /// Below the minimum: the checks fail.
    Below,
    /// Could not be measured here; the checks are not failed for it.
    NotMeasured,
}

/// One file's share of the total, for saying where the missing lines are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileCoverage {
    pub path: String,
    pub percent: f64,
    /// Ranges of lines never run ("12-20", "31").
    pub missing: Vec<String>,
}

/// The coverage part of a check run: present whenever `checks.coverage_min` is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// `checks.coverage_min`.
    pub min: f64,
    pub status: CoverageStatus,
    /// Lines run / statements, in percent (coverage.py's statement coverage; branch
    /// coverage, if the repo turns it on, is not part of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered_lines: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<u64>,
    /// The tool ("coverage.py 7.4.0 via python3").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
    /// The least covered files with missing lines (at most three).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub least_covered: Vec<FileCoverage>,
    /// One sentence: the number against the minimum, or why it was not measured.
    pub summary: String,
    /// Coverage below the minimum is what failed checks that passed otherwise.
    pub failed_checks: bool,
}

impl Coverage {
    fn not_measured(min: f64, why: &str) -> Coverage {
        Coverage {
            min,
            status: CoverageStatus::NotMeasured,
            percent: None,
            covered_lines: None,
            statements: None,
            measured_by: None,
            least_covered: Vec::new(),
            summary: format!(
                "line coverage not measured, so checks.coverage_min {} was not checked: {why}",
                fmt_percent(min)
            ),
            failed_checks: false,
        }
    }
}

/// What coverage.py's JSON report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub version: String,
    pub covered_lines: u64,
    pub statements: u64,
    pub files: Vec<FileCoverage>,
}

/// Reads coverage.py's `coverage json` report (format 2 or 3): the totals and, per file,
/// its statement coverage and missing lines.
pub fn parse_json(text: &str) -> Result<Measured, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("its JSON report is unreadable: {e}"))?;
    let totals = &value["totals"];
    let (Some(covered_lines), Some(statements)) = (
        totals["covered_lines"].as_u64(),
        totals["num_statements"].as_u64(),
    ) else {
        return Err("its JSON report has no totals".into());
    };
    let mut files: Vec<FileCoverage> = value["files"]
        .as_object()
        .map(|files| {
            files
                .iter()
                .filter_map(|(path, file)| {
                    let summary = &file["summary"];
                    let covered = summary["covered_lines"].as_u64()?;
                    let total = summary["num_statements"].as_u64()?;
                    let missing: Vec<u64> = file["missing_lines"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|l| l.as_u64()).collect())
                        .unwrap_or_default();
                    (total > covered).then(|| FileCoverage {
                        path: path.clone(),
                        percent: percent(covered, total),
                        missing: ranges(&missing),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort_by(|a, b| a.percent.total_cmp(&b.percent).then(a.path.cmp(&b.path)));
    Ok(Measured {
        version: value["meta"]["version"]
            .as_str()
            .unwrap_or("?")
            .chars()
            .take(20)
            .collect(),
        covered_lines,
        statements,
        files,
    })
}

/// The coverage of the test phase that just ran (its reports in `reports`), judged against
/// `min`. `None` when there is no minimum: nothing is measured then.
pub fn judge(plan: &Plan, reports: &Path, min: Option<f64>) -> Option<Coverage> {
    let min = min?;
    let python = match &plan.coverage {
        CoverageSupport::Unsupported { reason } => {
            return Some(Coverage::not_measured(min, reason))
        }
        CoverageSupport::Python { python } => python,
    };
    let measured = match super::read_report(&reports.join(REPORT)) {
        Some(text) => parse_json(&text).map_err(|e| format!("coverage.py ran but {e}")),
        None if std::fs::symlink_metadata(reports.join(UNAVAILABLE)).is_ok() => Err(format!(
            "coverage.py is not importable by the `{python}` that runs the tests ({})",
            install_hint(python)
        )),
        None => Err(
            "coverage.py wrote no report (the tests may have stopped early: see the output)".into(),
        ),
    };
    Some(match measured {
        Ok(m) => from_measured(min, python, m),
        Err(why) => Coverage::not_measured(min, &why),
    })
}

/// How to make coverage.py importable by `python` (the venv's or the system's).
pub fn install_hint(python: &str) -> &'static str {
    if python == "python" {
        "it runs in the repo's venv: add `coverage` (or `pytest-cov`) to the repo's requirements"
    } else {
        "install coverage.py for the python3 the checks use: python3 -m pip install coverage"
    }
}

fn from_measured(min: f64, python: &str, m: Measured) -> Coverage {
    if m.statements == 0 {
        return Coverage::not_measured(min, "coverage.py found no Python statements to measure");
    }
    let pct = percent(m.covered_lines, m.statements);
    let below = pct < min;
    let least: Vec<FileCoverage> = m.files.into_iter().take(FILES_SHOWN).collect();
    let mut summary = if below {
        format!(
            "line coverage {} is below checks.coverage_min {}",
            fmt_percent(pct),
            fmt_percent(min)
        )
    } else {
        format!(
            "line coverage {} meets checks.coverage_min {}",
            fmt_percent(pct),
            fmt_percent(min)
        )
    };
    if below && !least.is_empty() {
        let files: Vec<String> = least.iter().map(describe).collect();
        summary.push_str(&format!(" (least covered: {})", files.join("; ")));
    }
    Coverage {
        min,
        status: if below {
            CoverageStatus::Below
        } else {
            CoverageStatus::Met
        },
        percent: Some(pct),
        covered_lines: Some(m.covered_lines),
        statements: Some(m.statements),
        measured_by: Some(format!("coverage.py {} via {python}", m.version)),
        least_covered: least,
        summary,
        failed_checks: false,
    }
}

/// "calc.py 40.0%, lines 12-20, 31 not run".
pub fn describe(file: &FileCoverage) -> String {
    let mut shown: Vec<&str> = file.missing.iter().take(8).map(String::as_str).collect();
    if file.missing.len() > 8 {
        shown.push("...");
    }
    format!(
        "{} {}, lines {} not run",
        file.path,
        fmt_percent(file.percent),
        shown.join(", ")
    )
}

fn percent(covered: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

/// A percentage to one decimal, rounded down (89.99 shows as 89.9%, never as 90.0%), and
/// whole numbers without one ("90%").
pub fn fmt_percent(p: f64) -> String {
    let down = (p * 10.0).floor() / 10.0;
    if down.fract() == 0.0 {
        format!("{down:.0}%")
    } else {
        format!("{down:.1}%")
    }
}

/// Sorted line numbers as ranges: [1, 2, 3, 7] -> ["1-3", "7"].
fn ranges(lines: &[u64]) -> Vec<String> {
    let mut sorted = lines.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    let mut iter = sorted.into_iter();
    let Some(mut start) = iter.next() else {
        return out;
    };
    let mut end = start;
    let push = |s: u64, e: u64, out: &mut Vec<String>| {
        out.push(if s == e {
            s.to_string()
        } else {
            format!("{s}-{e}")
        })
    };
    for line in iter {
        if line == end + 1 {
            end = line;
        } else {
            push(start, end, &mut out);
            start = line;
            end = line;
        }
    }
    push(start, end, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `coverage json` 7.x writes (trimmed).
    const REPORT_JSON: &str = r#"{"meta": {"format": 3, "version": "7.4.0", "branch_coverage": false},
      "files": {
        "m.py": {"executed_lines": [1, 2, 4], "summary": {"covered_lines": 3, "num_statements": 6,
          "percent_covered": 50.0}, "missing_lines": [5, 6, 7]},
        "tests/__init__.py": {"summary": {"covered_lines": 0, "num_statements": 0}, "missing_lines": []},
        "tests/test_m.py": {"summary": {"covered_lines": 5, "num_statements": 5}, "missing_lines": []},
        "util.py": {"summary": {"covered_lines": 3, "num_statements": 4}, "missing_lines": [9]}
      },
      "totals": {"covered_lines": 11, "num_statements": 15, "percent_covered": 73.3}}"#;

    #[test]
    fn the_json_report_gives_totals_and_the_least_covered_files() {
        let m = parse_json(REPORT_JSON).unwrap();
        assert_eq!((m.covered_lines, m.statements), (11, 15));
        assert_eq!(m.version, "7.4.0");
        let names: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            ["m.py", "util.py"],
            "fully covered files are left out"
        );
        assert_eq!(m.files[0].missing, ["5-7"]);
        assert!(parse_json("{}").is_err());
        assert!(parse_json("not json").unwrap_err().contains("unreadable"));
    }

    #[test]
    fn below_the_minimum_names_the_files_and_above_it_does_not() {
        let below = from_measured(90.0, "python3", parse_json(REPORT_JSON).unwrap());
        assert_eq!(below.status, CoverageStatus::Below);
        assert_eq!(
            below.summary,
            "line coverage 73.3% is below checks.coverage_min 90% (least covered: m.py 50%, lines 5-7 not run; util.py 75%, lines 9 not run)"
        );
        assert_eq!(
            below.measured_by.as_deref(),
            Some("coverage.py 7.4.0 via python3")
        );
        let met = from_measured(73.0, "python", parse_json(REPORT_JSON).unwrap());
        assert_eq!(met.status, CoverageStatus::Met);
        assert_eq!(
            met.summary,
            "line coverage 73.3% meets checks.coverage_min 73%"
        );
        let empty = Measured {
            version: "7".into(),
            covered_lines: 0,
            statements: 0,
            files: Vec::new(),
        };
        assert_eq!(
            from_measured(50.0, "python3", empty).status,
            CoverageStatus::NotMeasured
        );
    }

    #[test]
    fn percentages_round_down_and_lines_group_into_ranges() {
        assert_eq!(fmt_percent(89.99), "89.9%");
        assert_eq!(fmt_percent(90.0), "90%");
        assert_eq!(fmt_percent(61.25), "61.2%");
        assert_eq!(ranges(&[7, 1, 2, 3, 9, 10, 3]), ["1-3", "7", "9-10"]);
        assert!(ranges(&[]).is_empty());
    }

    #[test]
    fn only_detected_python_commands_are_wrapped() {
        let none = |_: &str| None;
        let files = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut p =
            super::super::detect::plan(&files(&["requirements.txt"]), &none, &Default::default());
        let shown = p.test.clone();
        wrap(&mut p);
        assert_eq!(p.test, shown, "the command shown stays the plain one");
        let measured = p.measured_test.clone().unwrap();
        assert!(
            measured.contains("python -m coverage run --data-file=\"$GAFFER_REPORTS/.coverage\" --source=. -m pytest"),
            "{measured}"
        );
        assert!(measured.contains("exec python -m unittest discover"));
        assert!(measured.contains("coverage json -q"));
        let mut p = super::super::detect::plan(&files(&["app.py"]), &none, &Default::default());
        wrap(&mut p);
        assert!(p
            .measured_test
            .as_deref()
            .is_some_and(|t| t.contains("python3 -m coverage run")));

        for (list, configured) in [
            (&["Cargo.toml"][..], None),
            (&["requirements.txt"][..], Some("make test")),
        ] {
            let conf = super::super::detect::Configured {
                test: configured,
                ..Default::default()
            };
            let mut p = super::super::detect::plan(&files(list), &none, &conf);
            wrap(&mut p);
            assert_eq!(p.measured_test, None);
            let CoverageSupport::Unsupported { reason } = &p.coverage else {
                panic!("{:?}", p.coverage)
            };
            let dir = tempfile::TempDir::new().unwrap();
            let judged = judge(&p, dir.path(), Some(80.0)).unwrap();
            assert_eq!(judged.status, CoverageStatus::NotMeasured);
            assert!(
                judged.summary.contains(reason.as_str()),
                "{}",
                judged.summary
            );
        }
        assert!(judge(&p, Path::new("/nonexistent"), None).is_none());
    }
}
