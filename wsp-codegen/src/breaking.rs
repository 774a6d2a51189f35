//! `wsp-codegen breaking`: the changes in a new version of a schema that break peers built from
//! an old one (`wsp_idl::breaking`), from files, directories or a git revision.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use wsp_idl::{Model, SourceMap, Span};

/// Options of `breaking`.
#[derive(Debug, clap::Args)]
pub(crate) struct BreakingArgs {
    /// The old version: a schema file or a directory (every `.wsp` file under it is loaded).
    #[arg(long, value_name = "OLD", required_unless_present = "against_rev")]
    against: Option<PathBuf>,
    /// The old version from git: the NEW files as they are at revision REV (with their imports
    /// as they are there). NEW files that do not exist at REV are new, so not compared.
    #[arg(long, value_name = "REV", conflicts_with = "against")]
    against_rev: Option<String>,
    /// Print the breaks as JSON on stdout instead of as text on stderr.
    #[arg(long)]
    json: bool,
    /// The new version: schema files or directories; their imports are read too.
    #[arg(required = true, value_name = "NEW")]
    new: Vec<PathBuf>,
}

impl BreakingArgs {
    /// Loads both versions, compares them and prints what breaks. Exit code 0 when compatible, 1
    /// on any break, 2 when a version does not load or the command cannot run.
    pub(crate) fn run(&self) -> ExitCode {
        match self.compare() {
            Ok(breaks) => {
                if self.json {
                    println!("{}", json(&breaks));
                } else if !breaks.is_empty() {
                    eprint!("{}", breaks.rendered());
                    let count = breaks.diagnostics().len();
                    let plural = if count == 1 { "" } else { "s" };
                    eprintln!("\nerror: {count} breaking change{plural}");
                }
                if breaks.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(message) => {
                eprint!("{message}");
                ExitCode::from(2)
            }
        }
    }

    fn compare(&self) -> Result<wsp_idl::breaking::Breaks, String> {
        let new_files = schema_files(&self.new)?;
        let new = load("new", wsp_idl::Loader::new(), &new_files)?;
        let old = match (&self.against, &self.against_rev) {
            (Some(path), _) => {
                let files = schema_files(std::slice::from_ref(path))?;
                load("old", wsp_idl::Loader::new(), &files)?
            }
            (None, Some(rev)) => {
                let (loader, roots) = at_revision(rev, &self.new, &new_files)?;
                load("old", loader, &roots)?
            }
            (None, None) => unreachable!("clap requires one of them"),
        };
        Ok(wsp_idl::breaking::check(&old, &new))
    }
}

/// Loads one version, or says why it does not load.
fn load(which: &str, loader: wsp_idl::Loader, roots: &[PathBuf]) -> Result<Model, String> {
    loader
        .load(roots)
        .map_err(|err| format!("{err}\nerror: the {which} version of the schema does not load\n"))
}

/// The files given, with each directory replaced by the `.wsp` files under it (sorted).
fn schema_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files)
                .map_err(|e| format!("error: cannot read `{}`: {e}\n", path.display()))?;
            files[before..].sort();
            if files.len() == before {
                return Err(format!("error: no `.wsp` file in `{}`\n", path.display()));
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "wsp") {
            out.push(path);
        }
    }
    Ok(())
}

/// A loader holding every `.wsp` file of the repository as it is at `rev`, each under its path
/// relative to the current directory (so imports resolve as in the working tree), and the roots:
/// those of `new_files` that exist there, and every file there under a directory of `new_args`.
fn at_revision(
    rev: &str,
    new_args: &[PathBuf],
    new_files: &[PathBuf],
) -> Result<(wsp_idl::Loader, Vec<PathBuf>), String> {
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?.trim_end());
    let cwd = std::env::current_dir().map_err(|e| format!("error: no current directory: {e}\n"))?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let top = top.canonicalize().unwrap_or(top);
    let below_top = cwd
        .strip_prefix(&top)
        .map_err(|_| "error: the current directory is outside the git repository\n".to_owned())?;
    // A file of the repository as a path from here: below here, or `../` once per directory
    // between the repository's top and here, then its path from the top.
    let up = below_top
        .components()
        .fold(PathBuf::new(), |p, _| p.join(".."));
    let from_here = |name: &str| match Path::new(name).strip_prefix(below_top) {
        Ok(below) => below.to_owned(),
        Err(_) => normalize(&up.join(name)),
    };
    let mut loader = wsp_idl::Loader::new();
    loader.memory_only();
    let mut present = Vec::new();
    // The whole tree, whatever the current directory (imports may leave it).
    for name in git(&["ls-tree", "-r", "--full-tree", "--name-only", rev])?.lines() {
        if !name.ends_with(".wsp") {
            continue;
        }
        let text = git(&["show", &format!("{rev}:{name}")])?;
        let here = from_here(name);
        loader.add_source(&here, text);
        present.push(here);
    }
    let here = |f: &PathBuf| normalize(f.strip_prefix(&cwd).unwrap_or(f));
    let mut roots: Vec<PathBuf> = new_files
        .iter()
        .map(here)
        .filter(|f| present.contains(f))
        .collect();
    // A NEW directory stands for every `.wsp` under it at REV too, so a file deleted since is
    // compared (its types and services were removed).
    for dir in new_args.iter().filter(|p| p.is_dir()).map(here) {
        for old in &present {
            if old.starts_with(&dir) && !roots.contains(old) {
                roots.push(old.clone());
            }
        }
    }
    if roots.is_empty() {
        return Err(format!("error: none of the NEW files exists at `{rev}`\n"));
    }
    Ok((loader, roots))
}

/// Runs git and returns its standard output.
fn git(args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("error: cannot run git: {e}\n"))?;
    if !output.status.success() {
        return Err(format!(
            "error: `git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("error: `git {}` printed non-UTF-8\n", args.join(" ")))
}

/// Removes `.` and folds `dir/..` lexically, as the loader does with paths.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir
                if matches!(
                    out.components().next_back(),
                    Some(std::path::Component::Normal(_))
                ) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The breaks as one JSON object: `{"breaking": N, "diagnostics": [...]}`, each diagnostic with
/// its message, location (1-based line and column, in characters), label, help, notes and the
/// rendered text.
fn json(breaks: &wsp_idl::breaking::Breaks) -> String {
    let sources = breaks.sources();
    let diagnostics: Vec<serde_json::Value> = breaks
        .diagnostics()
        .iter()
        .map(|d| {
            let notes: Vec<serde_json::Value> = d
                .notes
                .iter()
                .map(|n| {
                    let mut note = serde_json::json!({ "message": n.message });
                    if let Some(span) = n.span {
                        location(&mut note, sources, span);
                    }
                    note
                })
                .collect();
            let mut value = serde_json::json!({
                "message": d.message,
                "label": d.label,
                "help": d.help,
                "notes": notes,
                "rendered": d.render(sources),
            });
            if let Some(span) = d.span {
                location(&mut value, sources, span);
            }
            value
        })
        .collect();
    serde_json::json!({ "breaking": diagnostics.len(), "diagnostics": diagnostics }).to_string()
}

/// Adds `file`, `line`, `column`, `end_line` and `end_column` of a span to a JSON object.
fn location(value: &mut serde_json::Value, sources: &SourceMap, span: Span) {
    let (line, column) = sources.line_col(span.file, span.start);
    let (end_line, end_column) = sources.line_col(span.file, span.end);
    let object = value.as_object_mut().expect("an object");
    object.insert(
        "file".into(),
        sources.file(span.file).path.display().to_string().into(),
    );
    object.insert("line".into(), line.into());
    object.insert("column".into(), column.into());
    object.insert("end_line".into(), end_line.into());
    object.insert("end_column".into(), end_column.into());
}
