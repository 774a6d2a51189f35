//! Machine-readable results: each benchmark also writes `<bench>.json` into
//! `target/bench-results/` of the workspace (`WSP_BENCH_OUT` names another directory), which
//! `scripts/bench-chart` turns into the chart of BENCHMARKS.md. One object per file:
//! `bench`, `title`, `date` (ISO 8601, UTC), `machine`, `command` (how to run it again, with the
//! `WSP_*` settings of this run) and `cases`, one object per case (`name`, `shape`, then the
//! benchmark's figures; `scripts/bench-chart` describes the fields).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// One case: its fields in the order they are written.
type Fields = Vec<(&'static str, Value)>;

/// The results of one benchmark run, written by [`Report::write`].
pub(crate) struct Report {
    bench: &'static str,
    title: &'static str,
    cases: Vec<Fields>,
}

impl Report {
    /// `bench` is the bench target's name (and the file's).
    pub(crate) fn new(bench: &'static str, title: &'static str) -> Report {
        Report {
            bench,
            title,
            cases: Vec::new(),
        }
    }

    /// Adds one case: its fields, `name` and `shape` first.
    pub(crate) fn case<const N: usize>(&mut self, fields: [(&'static str, Value); N]) {
        self.cases.push(fields.into());
    }

    /// Writes `<dir>/<bench>.json`; a failure is reported, not fatal (the tables are printed).
    pub(crate) fn write(self) {
        let dir = std::env::var_os("WSP_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let bench_crate = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
                let workspace = bench_crate.parent().expect("the workspace above bench/");
                workspace.join("target").join("bench-results")
            });
        let path = dir.join(format!("{}.json", self.bench));
        // Written by hand to keep the fields in order (serde_json's map sorts them), a case
        // per line.
        let object = |fields: &[(&str, Value)], sep: &str| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{}: {v}", json!(k)))
                .collect();
            fields.join(sep)
        };
        let cases: Vec<String> = self
            .cases
            .iter()
            .map(|c| format!("    {{{}}}", object(c, ", ")))
            .collect();
        let head = object(
            &[
                ("bench", json!(self.bench)),
                ("title", json!(self.title)),
                ("date", json!(utc_now())),
                ("machine", json!(machine())),
                ("command", json!(command(self.bench))),
            ],
            ",\n  ",
        );
        let text = format!(
            "{{\n  {head},\n  \"cases\": [\n{}\n  ]\n}}\n",
            cases.join(",\n")
        );
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
            Ok(()) => eprintln!("results written to {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
}

/// `x` rounded to `digits` decimals (a whole number is written as one); NaN and infinities
/// (a case that did not run) become null.
pub(crate) fn round(x: f64, digits: i32) -> Value {
    let scale = 10f64.powi(digits);
    let x = (x * scale).round() / scale;
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The command line that repeats this run, with the `WSP_*` settings in effect.
fn command(bench: &str) -> String {
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("WSP_") && k != "WSP_BENCH_OUT")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.sort();
    // `cargo bench` passes `--bench`; anything else came after `--`.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut cmd = vars;
    cmd.push(format!("cargo bench -p wsp-bench --bench {bench}"));
    if !args.is_empty() {
        cmd.push("--".into());
        cmd.extend(args);
    }
    cmd.join(" ")
}

/// `<CPU model> ×<n> cores, <rustc version>` (what of it can be found).
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut machine = format!("{model} ×{cores} cores");
    let rustc = std::process::Command::new("rustc").arg("-V").output().ok();
    if let Some(out) = rustc.filter(|o| o.status.success()) {
        // `rustc 1.95.0 (hash date)`: the name and the version.
        let v = String::from_utf8_lossy(&out.stdout);
        let short: Vec<&str> = v.split_whitespace().take(2).collect();
        machine = format!("{machine}, {}", short.join(" "));
    }
    machine
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
