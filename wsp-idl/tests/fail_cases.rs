//! Golden tests: every `tests/fail/*.wsp` must fail to load with exactly the diagnostics in the
//! `.wsp.stderr` file beside it (plain text). Run with `WSP_BLESS=1` to rewrite the goldens, then
//! review every changed golden by reading it.

use std::fs;
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir("tests/fail")
        .expect("tests/fail exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wsp"))
        .collect();
    cases.sort();
    cases
}

fn golden_path(case: &Path) -> PathBuf {
    let mut name = case.as_os_str().to_owned();
    name.push(".stderr");
    PathBuf::from(name)
}

#[test]
fn every_failure_case_matches_its_golden() {
    let bless = std::env::var_os("WSP_BLESS").is_some_and(|v| v == "1");
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "expected the failure corpus, found {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let actual = match wsp_idl::load(&[case]) {
            Ok(_) => {
                failures.push(format!("{}: loaded without errors", case.display()));
                continue;
            }
            Err(err) => err.rendered().to_owned(),
        };
        let golden = golden_path(case);
        if bless {
            fs::write(&golden, &actual).expect("golden is writable");
            continue;
        }
        match fs::read_to_string(&golden) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}: diagnostics differ\n--- expected\n{expected}\n--- actual\n{actual}",
                case.display()
            )),
            Err(_) => failures.push(format!(
                "{}: no golden file (run with WSP_BLESS=1 and review it)\n--- actual\n{actual}",
                case.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_golden_has_a_case() {
    for entry in fs::read_dir("tests/fail").expect("tests/fail exists") {
        let path = entry.expect("readable directory entry").path();
        let name = path.to_string_lossy().into_owned();
        if let Some(case) = name.strip_suffix(".stderr") {
            assert!(
                Path::new(case).exists(),
                "stale golden {name}: {case} is gone"
            );
        }
    }
}
