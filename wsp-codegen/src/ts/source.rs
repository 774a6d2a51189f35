//! A small source writer that indents on braces by itself (after wit-bindgen's `Source`).

/// Accumulates TypeScript text. A line ending in `{`, `[` or `(` indents the lines after it; a
/// line starting with `}`, `]` or `)` is written one level out. [`Source::indent`] and
/// [`Source::dedent`] handle the few other cases (union continuation lines).
#[derive(Debug, Default)]
pub(crate) struct Source {
    text: String,
    level: usize,
}

impl Source {
    /// Writes each line of `text` at the current indentation (empty lines stay empty).
    pub(crate) fn line(&mut self, text: &str) {
        for line in text.lines() {
            let trimmed = line.trim_end();
            if trimmed.starts_with(['}', ']', ')']) {
                self.level = self.level.saturating_sub(1);
            }
            if !trimmed.is_empty() {
                for _ in 0..self.level {
                    self.text.push_str("  ");
                }
                self.text.push_str(trimmed);
            }
            self.text.push('\n');
            if trimmed.ends_with(['{', '[', '(']) {
                self.level += 1;
            }
        }
        if text.is_empty() {
            self.text.push('\n');
        }
    }

    /// An empty line, unless the text already ends with one or with an opening brace.
    pub(crate) fn blank(&mut self) {
        if !(self.text.is_empty() || self.text.ends_with("\n\n") || self.text.ends_with("{\n")) {
            self.text.push('\n');
        }
    }

    /// Appends text formatted by another [`Source`] (started at the right level) as it is.
    pub(crate) fn append(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// One more level for the following lines.
    pub(crate) fn indent(&mut self) {
        self.level += 1;
    }

    /// One level less for the following lines.
    pub(crate) fn dedent(&mut self) {
        self.level = self.level.saturating_sub(1);
    }

    /// A JSDoc block from doc lines and tags (nothing when both are empty). `*/` in the text is
    /// escaped so that it cannot end the comment.
    pub(crate) fn jsdoc(&mut self, docs: &[String], tags: &[String]) {
        let mut lines: Vec<String> = docs.iter().map(|l| escape_comment(l)).collect();
        if !tags.is_empty() {
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.extend(tags.iter().map(|t| escape_comment(t)));
        }
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        match lines.as_slice() {
            [] => {}
            [one] if !one.trim().is_empty() => self.line(&format!("/** {} */", one.trim_end())),
            _ => {
                self.line("/**");
                for l in &lines {
                    if l.trim().is_empty() {
                        self.line(" *");
                    } else {
                        // Not through `line`, which would take a doc line ending in `{` for a block.
                        self.raw_line(&format!(" * {}", l.trim_end()));
                    }
                }
                self.line(" */");
            }
        }
    }

    /// A JSDoc block of generated prose, wrapped to fit in 100 columns.
    pub(crate) fn doc(&mut self, text: &str) {
        self.doc_tagged(text, &[]);
    }

    /// Like [`Source::doc`], with tags (`@deprecated …`) after the text.
    pub(crate) fn doc_tagged(&mut self, text: &str, tags: &[String]) {
        let lines = wrap(text, self.doc_width());
        self.jsdoc(&lines, tags);
    }

    /// The room for doc text at the current indentation (`/** ` … ` */` and two spaces per level).
    pub(crate) fn doc_width(&self) -> usize {
        self.width_left().saturating_sub(7).max(40)
    }

    /// The columns left on a line at the current indentation (lines aim at 100 columns).
    pub(crate) fn width_left(&self) -> usize {
        100usize.saturating_sub(2 * self.level)
    }

    /// Writes one line at the current indentation without looking at braces.
    fn raw_line(&mut self, text: &str) {
        for _ in 0..self.level {
            self.text.push_str("  ");
        }
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// The text written so far.
    pub(crate) fn finish(self) -> String {
        self.text
    }
}

/// Splits prose into lines of at most `width` characters at spaces (a longer word stays whole).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// Splits `text` at the commas that are not inside brackets or quotes (`a, f(b, c), d` → three).
pub(crate) fn split_top_level(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' | '[' | '{' | '<' if !quoted => depth += 1,
            ')' | ']' | '}' | '>' if !quoted && !current.ends_with('=') => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

/// `*/` would end a comment: `*\/` reads the same in rendered docs.
fn escape_comment(line: &str) -> String {
    line.replace("*/", "*\\/")
}

#[cfg(test)]
mod tests {
    use super::Source;

    #[test]
    fn splits_at_top_level_commas() {
        assert_eq!(
            super::split_top_level("a, f(b, c), (v, codec) => g(v, codec), 'x,y', Map<K, V>"),
            [
                "a",
                "f(b, c)",
                "(v, codec) => g(v, codec)",
                "'x,y'",
                "Map<K, V>"
            ]
        );
    }

    #[test]
    fn indents_on_braces() {
        let mut s = Source::default();
        s.line("a {");
        s.line("b;");
        s.line("}");
        s.jsdoc(
            &["x */ y".into(), "  indented {".into()],
            &["@deprecated".into()],
        );
        s.line("c");
        assert_eq!(
            s.finish(),
            "a {\n  b;\n}\n/**\n * x *\\/ y\n *   indented {\n *\n * @deprecated\n */\nc\n"
        );
    }
}
