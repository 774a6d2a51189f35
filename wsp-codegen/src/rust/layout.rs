//! A fast layout for generated Rust, for build scripts.
//!
//! `prettyplease` formats well but needs the file parsed by `syn` first, and in a default build
//! script (compiled without optimisation) that parse is most of what `compile()` costs. This
//! prints the generator's tokens directly: one item, statement, field or match arm per line,
//! indented by braces, doc attributes as `///` comments, and no line wrapping. It only chooses
//! where whitespace goes; the tokens are the ones prettyplease would print (a test parses both
//! and compares).

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Lays out `tokens` as Rust source text.
pub(crate) fn layout(tokens: TokenStream) -> String {
    let mut printer = Printer {
        out: String::with_capacity(64 * 1024),
        depth: 0,
        prev: Prev::LineStart,
    };
    printer.stream(tokens.into_iter().collect(), Context::Block);
    if !printer.out.ends_with('\n') {
        printer.out.push('\n');
    }
    printer.out
}

/// Where a token sequence sits: in braces (items, statements, fields, arms: one per line) or
/// in parentheses or brackets (inline).
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Block,
    Inline,
}

/// What was printed last, as far as spacing is concerned.
#[derive(Clone, Copy, PartialEq)]
enum Prev {
    /// Nothing yet on this line.
    LineStart,
    /// An identifier, keyword or literal.
    Word,
    /// A closing `)`, `]` or `}`.
    Close,
    /// An opening `(` or `[`.
    Open,
    /// An operator after which the next token is glued: `::`, `.`, `&`, `'`, `#`, a prefix `*`
    /// or `!`, `<` of generics.
    Glue,
    /// Any other operator (a space follows it).
    Op,
    /// `>` closing generics.
    Angle,
}

/// Keywords: after them `(` or `[` is not a call or an index, and `::`, `<`, `&` or `*` start
/// something new.
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "as" | "async"
            | "const"
            | "dyn"
            | "else"
            | "enum"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "match"
            | "move"
            | "mut"
            | "pub"
            | "return"
            | "static"
            | "struct"
            | "trait"
            | "type"
            | "use"
            | "where"
            | "while"
    )
}

struct Printer {
    out: String,
    depth: usize,
    prev: Prev,
}

impl Printer {
    fn newline(&mut self) {
        if self.prev != Prev::LineStart {
            self.out.push('\n');
            self.prev = Prev::LineStart;
        }
    }

    /// Starts a token: the indentation at the start of a line, else a space unless glued.
    fn start(&mut self, glue: bool) {
        if self.prev == Prev::LineStart {
            for _ in 0..self.depth {
                self.out.push_str("    ");
            }
        } else if !glue && self.prev != Prev::Glue && self.prev != Prev::Open {
            self.out.push(' ');
        }
    }

    fn stream(&mut self, tokens: Vec<TokenTree>, context: Context) {
        let mut tokens = tokens.into_iter().peekable();
        // The last word printed, if it was the last token: keywords are spaced differently.
        let mut keyword = false;
        // Open `<` of generics: a comma inside them does not end a line.
        let mut angles = 0usize;
        while let Some(token) = tokens.next() {
            let after_keyword = std::mem::take(&mut keyword);
            match token {
                TokenTree::Ident(ident) => {
                    let word = ident.to_string();
                    // After a keyword or a lifetime's name, a group is not a call or index.
                    keyword =
                        is_keyword(&word) || (self.prev == Prev::Glue && self.out.ends_with('\''));
                    self.start(false);
                    self.out.push_str(&word);
                    self.prev = Prev::Word;
                }
                TokenTree::Literal(literal) => {
                    self.start(false);
                    self.out.push_str(&literal.to_string());
                    self.prev = Prev::Word;
                }
                TokenTree::Group(group) => {
                    let glued = match self.prev {
                        Prev::Word => !after_keyword,
                        Prev::Close | Prev::Angle => true,
                        _ => false,
                    };
                    let delimiter = group.delimiter();
                    // With the group gone its stream is not shared, so iterating it moves the
                    // tokens instead of copying them.
                    let inner = {
                        let stream = group.stream();
                        drop(group);
                        stream.into_iter().collect::<Vec<_>>()
                    };
                    match delimiter {
                        Delimiter::Brace if is_short(&inner) => {
                            self.inline('{', inner, '}', false);
                        }
                        Delimiter::Brace => self.block(inner),
                        Delimiter::Parenthesis => self.inline('(', inner, ')', glued),
                        Delimiter::Bracket => self.inline('[', inner, ']', glued),
                        Delimiter::None => self.stream(inner, context),
                    }
                    if delimiter == Delimiter::Brace && context == Context::Block {
                        // An item or block ends its line unless punctuation continues it
                        // (`},`, `};`, `}.await`, `} => …`, `} else`).
                        let continues = match tokens.peek() {
                            Some(TokenTree::Punct(p)) => {
                                matches!(p.as_char(), ',' | ';' | '.' | '?' | '=')
                            }
                            Some(TokenTree::Ident(word)) => word == "else",
                            _ => false,
                        };
                        if !continues {
                            self.newline();
                        }
                    }
                }
                TokenTree::Punct(punct) => {
                    // An operator is its run of joint characters (`::`, `->`, `=>`, `>>`).
                    let mut op = String::from(punct.as_char());
                    let mut spacing = punct.spacing();
                    while spacing == Spacing::Joint {
                        match tokens.peek() {
                            Some(TokenTree::Punct(next)) => {
                                op.push(next.as_char());
                                spacing = next.spacing();
                                tokens.next();
                            }
                            _ => break,
                        }
                    }
                    // An outer attribute is a line of its own.
                    if op == "#" && context == Context::Block {
                        let bracketed = |t: &TokenTree| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket);
                        if let Some(TokenTree::Group(attr)) = tokens.next_if(bracketed) {
                            self.attribute(&attr);
                            continue;
                        }
                    }
                    let prefix = after_keyword
                        || matches!(
                            self.prev,
                            Prev::LineStart | Prev::Open | Prev::Op | Prev::Glue
                        );
                    let inside_generics = angles > 0;
                    if op == "<" {
                        angles += 1;
                    } else if op.bytes().all(|b| b == b'>') && angles > 0 {
                        angles = angles.saturating_sub(op.len());
                    }
                    let context = if inside_generics {
                        Context::Inline
                    } else {
                        context
                    };
                    self.op(&op, prefix, context);
                }
            }
        }
    }

    /// Prints an operator; `prefix` when it starts an operand (`&x`, `*x`, `<T as U>`, `|x|`)
    /// rather than joining two.
    fn op(&mut self, op: &str, prefix: bool, context: Context) {
        let (glue_before, then) = match op {
            "," | ";" | ":" | "?" => (true, Prev::Op),
            "::" | "." => (!prefix, Prev::Glue),
            // Generics (`Vec<u8>`) or a qualified path (`<T as Tr>::f`).
            "<" => (!prefix, Prev::Glue),
            _ if op.bytes().all(|b| b == b'>') => (true, Prev::Angle),
            "'" | "#" => (false, Prev::Glue),
            // A macro call: `write!(…)`.
            "!" if !prefix => (true, Prev::Glue),
            "&" | "*" | "!" | "-" | "&&" | ".." if prefix => (false, Prev::Glue),
            // A closure's parameters: `|a, b| body`.
            "|" | "||" if prefix => (false, Prev::Glue),
            "|" => (true, Prev::Op),
            _ => (false, Prev::Op),
        };
        self.start(glue_before);
        self.out.push_str(op);
        self.prev = then;
        if matches!(op, "," | ";") && context == Context::Block {
            self.newline();
        }
    }

    /// `#[…]` on a line of its own; `#[doc = "…"]` as a `///` comment.
    fn attribute(&mut self, attr: &proc_macro2::Group) {
        self.newline();
        self.start(true);
        match doc_text(attr) {
            Some(text) => {
                self.out.push_str("///");
                self.out.push_str(&text);
            }
            None => {
                self.out.push('#');
                self.prev = Prev::Glue;
                self.inline('[', attr.stream().into_iter().collect(), ']', true);
            }
        }
        self.prev = Prev::Op;
        self.newline();
    }

    fn inline(&mut self, open: char, tokens: Vec<TokenTree>, close: char, glued: bool) {
        self.start(glued);
        self.out.push(open);
        if open == '{' {
            self.out.push(' ');
        }
        self.prev = Prev::Open;
        self.stream(tokens, Context::Inline);
        if self.prev != Prev::LineStart && close == '}' {
            self.out.push(' ');
        }
        self.start(true);
        self.out.push(close);
        self.prev = Prev::Close;
    }

    fn block(&mut self, tokens: Vec<TokenTree>) {
        self.start(false);
        if tokens.is_empty() {
            self.out.push_str("{}");
            self.prev = Prev::Close;
            return;
        }
        self.out.push('{');
        self.prev = Prev::Op;
        self.newline();
        self.depth += 1;
        self.stream(tokens, Context::Block);
        self.newline();
        self.depth -= 1;
        self.start(false);
        self.out.push('}');
        self.prev = Prev::Close;
    }
}

/// Whether a brace group reads best on one line, spaced inside: `{ .. }`, `{ id }`,
/// `Self { inner: service }`, a one-expression body. Anything with statements, attributes,
/// match arms or nested blocks gets lines of its own.
fn is_short(tokens: &[TokenTree]) -> bool {
    if tokens.is_empty() || tokens.len() > 12 {
        return false;
    }
    !tokens.iter().any(|token| match token {
        TokenTree::Group(inner) => inner.delimiter() == Delimiter::Brace,
        TokenTree::Punct(p) => {
            matches!(p.as_char(), ';' | '#')
                || (p.as_char() == '=' && p.spacing() == Spacing::Joint)
        }
        _ => false,
    })
}

/// The text of a `[doc = "…"]` attribute body when it fits on one `///` line.
fn doc_text(attr: &proc_macro2::Group) -> Option<String> {
    if attr.delimiter() != Delimiter::Bracket {
        return None;
    }
    let mut parts = attr.stream().into_iter();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (
            Some(TokenTree::Ident(doc)),
            Some(TokenTree::Punct(eq)),
            Some(TokenTree::Literal(lit)),
            None,
        ) if doc == "doc" && eq.as_char() == '=' => {
            let text = unescape(&lit.to_string())?;
            (!text.contains(['\n', '\r'])).then_some(text)
        }
        _ => None,
    }
}

/// The value of a plain string literal as `proc_macro2` prints it (`"…"` with Rust escapes);
/// `None` for anything else.
fn unescape(literal: &str) -> Option<String> {
    if let Some(raw) = literal.strip_prefix('r') {
        // `r"…"` or `r#"…"#`: the text as it stands.
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let fence = &raw[..hashes];
        let inner = raw[hashes..]
            .strip_prefix('"')?
            .strip_suffix(fence)?
            .strip_suffix('"')?;
        return Some(inner.to_owned());
    }
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '0' => out.push('\0'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'u' => {
                let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let hex = rest.strip_prefix('{')?;
                out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rust::PackageGen;
    use quote::ToTokens;

    /// Every schema of the repository, each package laid out fast, parses back to exactly the
    /// tokens the generator made (compared through syn, which reads `///` as `doc` attributes).
    #[test]
    fn the_layout_keeps_every_token() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let schemas = [
            "schemas/chat.wsp",
            "schemas/geometry.wsp",
            "schemas/keywords.wsp",
            "schemas/kitchen_sink.wsp",
            "schemas/math.wsp",
            "schemas/evolution/v1.wsp",
            "schemas/evolution/v2.wsp",
            "tests/codegen-compile/schemas/deprecation.wsp",
        ];
        let opts = crate::Opts::default();
        let mut packages = 0;
        for schema in schemas {
            let model = wsp_idl::load(&[root.join(schema)]).unwrap_or_else(|e| panic!("{e}"));
            for package in model.packages() {
                let tokens = PackageGen {
                    model: &model,
                    opts: &opts,
                    package,
                }
                .file()
                .expect("generates");
                let expected: syn::File = syn::parse2(tokens.clone()).expect("tokens parse");
                let text = layout(tokens);
                let laid_out = syn::parse_file(&text)
                    .unwrap_or_else(|e| panic!("{schema} ({package}) does not parse: {e}"));
                let (want, got) = (
                    plain_strings(expected.into_token_stream()).to_string(),
                    plain_strings(laid_out.into_token_stream()).to_string(),
                );
                if want != got {
                    let at = want.bytes().zip(got.bytes()).position(|(a, b)| a != b);
                    let at = at.unwrap_or(want.len().min(got.len()));
                    let around =
                        |s: &str| s[at.saturating_sub(120)..(at + 120).min(s.len())].to_owned();
                    panic!(
                        "{schema} ({package}): tokens differ\n want …{}…\n  got …{}…",
                        around(&want),
                        around(&got)
                    );
                }
                packages += 1;
            }
        }
        assert!(packages >= 9, "only {packages} packages checked");
    }

    /// The tokens with raw string literals written as plain ones (`r"x"` as `"x"`): a `///`
    /// comment in the generator's source is a raw string, the same text as a `///` line reads.
    fn plain_strings(tokens: TokenStream) -> TokenStream {
        tokens
            .into_iter()
            .map(|token| match token {
                TokenTree::Group(g) => {
                    let mut group =
                        proc_macro2::Group::new(g.delimiter(), plain_strings(g.stream()));
                    group.set_span(g.span());
                    TokenTree::Group(group)
                }
                TokenTree::Literal(l) if l.to_string().starts_with('r') => {
                    let text = unescape(&l.to_string()).expect("a raw string");
                    TokenTree::Literal(proc_macro2::Literal::string(&text))
                }
                other => other,
            })
            .collect()
    }

    #[test]
    fn layout_reads_like_rust() {
        let tokens: TokenStream = quote::quote! {
            #[doc = " A point."]
            #[derive(Debug)]
            pub struct P<'a> { x: &'a [u8; 4], y: Vec<Option<u8>> }
            impl P<'_> {
                fn f(&self, g: impl Fn(u8) -> u8) -> u8 { match self.y[0] { Some(v) => g(v), None => 0 } }
            }
        };
        assert_eq!(
            layout(tokens),
            "/// A point.\n\
             #[derive(Debug)]\n\
             pub struct P<'a> {\n    x: &'a [u8; 4],\n    y: Vec<Option<u8>>\n}\n\
             impl P<'_> {\n    fn f(&self, g: impl Fn(u8) -> u8) -> u8 {\n        match self.y[0] {\n            Some(v) => g(v),\n            None => 0\n        }\n    }\n}\n"
        );
    }

    #[test]
    fn doc_strings_are_unescaped_or_kept_as_attributes() {
        assert_eq!(
            unescape(r#""a \"b\" \\ \u{e9}""#).as_deref(),
            Some("a \"b\" \\ é")
        );
        assert_eq!(unescape("r#\"raw \"x\"\"#").as_deref(), Some("raw \"x\""));
        let tokens: TokenStream = quote::quote! {
            #[doc = "two\nlines"]
            struct S;
        };
        assert!(layout(tokens).starts_with("#[doc = \"two\\nlines\"]\nstruct S;"));
    }
}
