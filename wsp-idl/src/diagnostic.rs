//! Source locations, the files they point into, and rustc-style error messages.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Identifies a file in a [`SourceMap`] (its index there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub usize);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file.
    pub file: FileId,
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` in `file`.
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span { file, start, end }
    }
}

/// One source file: its path (as given to the loader, lexically normalised) and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path used in messages.
    pub path: PathBuf,
    /// The full text.
    pub source: Arc<str>,
}

/// The files diagnostics point into, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, source: impl Into<Arc<str>>) -> FileId {
        self.files.push(SourceFile {
            path: path.into(),
            source: source.into(),
        });
        FileId(self.files.len() - 1)
    }

    /// The file with this id.
    ///
    /// # Panics
    ///
    /// If the id does not come from this map.
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0]
    }

    /// The id of the file with this path, if it was added.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files.iter().position(|f| f.path == path).map(FileId)
    }

    /// All files in the order they were added.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: usize) -> (usize, usize) {
        let source = &self.file(file).source;
        let offset = floor_char_boundary(source, offset.min(source.len()));
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, source[line_start..offset].chars().count() + 1)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A secondary location shown under a diagnostic ("first defined here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What the note says.
    pub message: String,
    /// Where it points, if anywhere.
    pub span: Option<Span>,
}

/// One error found in a schema, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The headline, e.g. ``unknown type `Pont` ``.
    pub message: String,
    /// The primary location; `None` for errors about no particular text (a missing root file).
    pub span: Option<Span>,
    /// A short text shown after the carets.
    pub label: Option<String>,
    /// Secondary locations.
    pub notes: Vec<Note>,
    /// A suggestion, shown as `= help: ...`.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a message at a location.
    pub fn error(message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            message: message.into(),
            span: Some(span),
            label: None,
            notes: Vec::new(),
            help: None,
        }
    }

    /// An error that points at no text.
    pub fn error_without_span(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            span: None,
            label: None,
            notes: Vec::new(),
            help: None,
        }
    }

    /// Sets the label shown after the carets.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary location.
    pub fn with_note(mut self, message: impl Into<String>, span: Option<Span>) -> Self {
        self.notes.push(Note {
            message: message.into(),
            span,
        });
        self
    }

    /// Renders the diagnostic as plain text (no colour), like rustc:
    ///
    /// ```text
    /// error: unknown type `Pont`
    ///  --> schemas/geo.wsp:3:8
    ///   |
    /// 3 |     p: Pont,
    ///   |        ^^^^ not found
    ///   |
    ///   = help: did you mean `Point`?
    /// ```
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut lines: Vec<usize> = Vec::new();
        if let Some(span) = self.span {
            lines.push(sources.line_col(span.file, span.start).0);
        }
        for note in &self.notes {
            if let Some(span) = note.span {
                lines.push(sources.line_col(span.file, span.start).0);
            }
        }
        let width = lines.iter().max().map_or(1, |l| l.to_string().len());
        let pad = " ".repeat(width);

        let mut out = format!("error: {}\n", self.message);
        if let Some(span) = self.span {
            snippet(&mut out, sources, span, self.label.as_deref(), &pad);
        }
        for note in self.notes.iter().filter(|n| n.span.is_none()) {
            let _ = writeln!(out, "{pad} = note: {}", note.message);
        }
        if let Some(help) = &self.help {
            if self.span.is_some() {
                let _ = writeln!(out, "{pad} |");
            }
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        for note in &self.notes {
            if let Some(span) = note.span {
                let _ = writeln!(out, "note: {}", note.message);
                snippet(&mut out, sources, span, None, &pad);
            }
        }
        out
    }
}

/// Writes ` --> file:line:col`, the source line and carets under the span.
fn snippet(out: &mut String, sources: &SourceMap, span: Span, label: Option<&str>, pad: &str) {
    let file = sources.file(span.file);
    let (line, col) = sources.line_col(span.file, span.start);
    let _ = writeln!(out, "{pad}--> {}:{line}:{col}", file.path.display());
    let text = file.source.lines().nth(line - 1).unwrap_or("");
    // Only the first line of a multi-line span is underlined.
    let line_chars = text.chars().count();
    let (end_line, end_col) = sources.line_col(span.file, span.end);
    let end_col = if end_line == line {
        end_col
    } else {
        line_chars + 1
    };
    let carets = end_col.saturating_sub(col).max(1);
    let shown: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{line:>width$} | {shown}", width = pad.len());
    let mut underline = format!("{pad} | {}{}", " ".repeat(col - 1), "^".repeat(carets));
    if let Some(label) = label {
        underline.push(' ');
        underline.push_str(label);
    }
    let _ = writeln!(out, "{}", underline.trim_end());
}

/// Renders several diagnostics, separated by blank lines.
pub fn render_all(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    diagnostics
        .iter()
        .map(|d| d.render(sources))
        .collect::<Vec<_>>()
        .join("\n")
}
