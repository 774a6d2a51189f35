//! Reads schema files (from disk or from memory), follows imports and hands the parsed files to
//! the resolver.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, FileId, SourceMap, Span, render_all};
use crate::model::Model;
use crate::parse::parse_file;
use crate::symbols::{LoadedFile, Symbols};

/// Loading failed: every problem found, with the sources needed to show them.
///
/// `Display` prints all diagnostics rendered as plain text, rustc style.
#[derive(Debug, thiserror::Error)]
#[error("{rendered}")]
pub struct Error {
    diagnostics: Vec<Diagnostic>,
    sources: SourceMap,
    rendered: String,
}

impl Error {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>, sources: SourceMap) -> Self {
        let rendered = render_all(&diagnostics, &sources);
        Error {
            diagnostics,
            sources,
            rendered,
        }
    }

    /// Every diagnostic, in the order found.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The files read before failing (paths for `cargo:rerun-if-changed`, text for rendering).
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// The diagnostics rendered as plain text (the same as `to_string()`).
    pub fn rendered(&self) -> &str {
        &self.rendered
    }
}

/// Loads schema files and their imports into a [`Model`].
///
/// Files added with [`Loader::add_source`] are taken from memory; every other path is read from
/// disk. Import paths are relative to the importing file.
///
/// # Examples
///
/// ```
/// let mut loader = wsp_idl::Loader::new();
/// loader
///     .add_source("common.wsp", "package common; struct Timestamp { millis: u64 }")
///     .add_source(
///         "clock.wsp",
///         r#"package clock; import "common.wsp";
///            service Clock { rpc now() -> common.Timestamp; }"#,
///     );
/// let model = loader.load(&["clock.wsp"]).unwrap();
/// assert_eq!(model.services[0].qualified_name, "clock.Clock");
/// assert_eq!(model.files.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Loader {
    memory: HashMap<PathBuf, String>,
    memory_only: bool,
}

impl Loader {
    /// A loader that reads from disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `path` resolve to `source` instead of the file on disk.
    pub fn add_source(&mut self, path: impl AsRef<Path>, source: impl Into<String>) -> &mut Self {
        self.memory.insert(normalize(path.as_ref()), source.into());
        self
    }

    /// Reads nothing from disk: a path not added with [`Loader::add_source`] is not found. For
    /// loading a version of a schema kept elsewhere (a git revision) without mixing in files of
    /// the working tree.
    pub fn memory_only(&mut self) -> &mut Self {
        self.memory_only = true;
        self
    }

    /// Loads the given files and everything they import, then resolves and validates them
    /// together. Types and services of all files share one namespace per package.
    ///
    /// # Errors
    ///
    /// Every problem found: unreadable files, parse errors, missing or cyclic imports, and (when
    /// all files parsed) every validation error.
    pub fn load<P: AsRef<Path>>(&self, roots: &[P]) -> Result<Model, Error> {
        let mut state = State {
            loader: self,
            sources: SourceMap::new(),
            files: Vec::new(),
            diagnostics: Vec::new(),
            done: HashMap::new(),
            stack: Vec::new(),
            incomplete: false,
        };
        for root in roots {
            state.visit(normalize(root.as_ref()), None);
        }
        if state.incomplete {
            return Err(Error::new(state.diagnostics, state.sources));
        }
        // parse (above) → symbols → validate → resolve → fingerprint, each step once.
        let mut diagnostics = state.diagnostics;
        let (symbols, mut found) = Symbols::new(&state.files);
        found.extend(crate::validate::validate(&symbols));
        found.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
        diagnostics.extend(found);
        if !diagnostics.is_empty() {
            return Err(Error::new(diagnostics, state.sources));
        }
        let mut model = crate::resolve::build(&symbols, state.sources);
        crate::fingerprint::fill_fingerprints(&mut model);
        Ok(model)
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        match self.memory.get(path) {
            Some(source) => Ok(source.clone()),
            None if self.memory_only => Err(std::io::ErrorKind::NotFound.into()),
            None => std::fs::read_to_string(path),
        }
    }
}

/// Loads files from disk: `Loader::new().load(roots)`.
///
/// # Errors
///
/// See [`Loader::load`].
pub fn load<P: AsRef<Path>>(roots: &[P]) -> Result<Model, Error> {
    Loader::new().load(roots)
}

struct State<'a> {
    loader: &'a Loader,
    sources: SourceMap,
    files: Vec<LoadedFile>,
    diagnostics: Vec<Diagnostic>,
    /// Files already read, whether or not they parsed (`None` when they did not).
    done: HashMap<PathBuf, Option<FileId>>,
    /// The chain of files being visited, for cycle detection.
    stack: Vec<PathBuf>,
    /// Set when a file could not be read or parsed: resolving the rest would only report
    /// consequences (unknown types), so loading stops after the import graph is walked.
    incomplete: bool,
}

impl State<'_> {
    /// Reads, parses and recursively visits one file; returns its id if it parsed.
    fn visit(&mut self, path: PathBuf, import: Option<(Span, &str)>) -> Option<FileId> {
        if let Some(pos) = self.stack.iter().position(|p| *p == path) {
            let (span, _) = import.expect("only imports can close a cycle");
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .chain(std::iter::once(&path))
                .map(|p| format!("`{}`", p.display()))
                .collect();
            self.diagnostics.push(
                Diagnostic::error(format!("import cycle: {}", chain.join(" → ")), span)
                    .with_label("this import closes the cycle")
                    .with_help("move the shared declarations into a file that both can import"),
            );
            return None;
        }
        if let Some(done) = self.done.get(&path) {
            return *done;
        }
        let source = match self.loader.read(&path) {
            Ok(source) => source,
            Err(err) => {
                let d = match import {
                    Some((span, written)) => {
                        Diagnostic::error(format!("imported file `{written}` not found"), span)
                            .with_help(format!("looked for `{}`", path.display()))
                    }
                    None => Diagnostic::error_without_span(format!(
                        "cannot read `{}`: {err}",
                        path.display()
                    )),
                };
                self.diagnostics.push(d);
                self.incomplete = true;
                self.done.insert(path, None);
                return None;
            }
        };
        let id = self.sources.add(path.clone(), source.as_str());
        let ast = match parse_file(id, &source) {
            Ok(ast) => ast,
            Err(d) => {
                self.diagnostics.push(*d);
                self.incomplete = true;
                self.done.insert(path, None);
                return None;
            }
        };
        self.stack.push(path.clone());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut imports = Vec::new();
        for import in &ast.imports {
            let target = normalize(&dir.join(&import.value));
            if let Some(target_id) = self.visit(target, Some((import.span, &import.value))) {
                if !imports.contains(&target_id) {
                    imports.push(target_id);
                }
            }
        }
        self.stack.pop();
        self.files.push(LoadedFile { id, ast, imports });
        self.done.insert(path, Some(id));
        Some(id)
    }
}

/// Removes `.` and resolves `..` lexically (in-memory files do not exist on disk to canonicalise).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}
