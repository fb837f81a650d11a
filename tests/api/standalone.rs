//! The repository stands alone: nothing the tests, the docs or the code read lives outside
//! it, and the fresh-clone check (scripts/fresh-clone-check.sh) cannot recurse.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_points_outside_the_repository() {
    let outside = concat!("..", "/shared");
    let mut files = vec![root().join("README.md")];
    for dir in ["src", "tests", "docs", "benches"] {
        files_under(&root().join(dir), &mut files);
    }
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|text| text.contains(outside)))
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "these name {outside}: {offenders:?}");
    for needed in [
        "tests/fixtures/github/README.md",
        "tests/fixtures/github/index.json",
        "scripts/model-harness.sh",
        "scripts/ollama_compat.py",
        "docs/DESIGN.md",
        "LICENSE",
        "CHANGELOG.md",
    ] {
        assert!(root().join(needed).is_file(), "{needed} missing");
    }
}

#[test]
fn the_fresh_clone_check_refuses_to_recurse() {
    let output = std::process::Command::new("bash")
        .arg(root().join("scripts/fresh-clone-check.sh"))
        .env("GAFFER_FRESH_CLONE_CHECK", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to recurse"));
}
