//! Text → [`ast::SchemaFile`]: the pest grammar, its friendly error messages, and the nesting limit.

use pest::Parser as _;
use pest::iterators::Pair;

use crate::ast::{
    Attribute, ClientBlock, EnumDecl, Field, Ident, Item, ItemKind, Meta, MethodDecl,
    MethodKindDecl, SchemaFile, ServiceDecl, StringLit, StructDecl, TypeExpr, TypeExprKind,
    Variant,
};
use crate::diagnostic::{Diagnostic, FileId, Span};

/// The deepest bracket nesting (`<`, `(`, `{`) a schema may use. Checked before the grammar runs so
/// that adversarial input like `list<list<list<…>>>` ten thousand deep cannot overflow the stack.
pub const MAX_NESTING: usize = 32;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct WspParser;

/// Parses one file's text. `file` is the id the spans will carry.
pub(crate) fn parse_file(file: FileId, source: &str) -> Result<SchemaFile, Box<Diagnostic>> {
    check_nesting(file, source)?;
    let mut pairs = WspParser::parse(Rule::file, source)
        .map_err(|e| Box::new(friendly_error(file, source, &e)))?;
    let file_pair = pairs.next().expect("grammar guarantees a `file` pair");
    Ok(Builder { file }.file(file_pair))
}

/// Rejects bracket nesting deeper than [`MAX_NESTING`] with a diagnostic at the first bracket too
/// deep. Skips comments and string literals; the `>` of `->` does not close anything.
fn check_nesting(file: FileId, source: &str) -> Result<(), Box<Diagnostic>> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'<' | b'(' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Box::new(
                        Diagnostic::error(
                            format!("brackets nested too deeply (the limit is {MAX_NESTING})"),
                            Span::new(file, i, i + 1),
                        )
                        .with_label("too deep")
                        .with_help(
                            "flatten the type by declaring a named struct for an inner part",
                        ),
                    ));
                }
            }
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Words for the rules that can appear in an "expected …" list.
fn describe_rule(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::doc_line => "a doc comment",
        Rule::inner_doc_line => "a `//!` doc comment",
        Rule::ident => "a name",
        Rule::path => "a name",
        Rule::string | Rule::string_inner => "a string",
        Rule::kw_package | Rule::package_decl => "`package`",
        Rule::kw_import | Rule::import_decl => "`import`",
        Rule::kw_struct | Rule::struct_decl => "`struct`",
        Rule::kw_enum | Rule::enum_decl => "`enum`",
        Rule::kw_error | Rule::error_decl => "`error`",
        Rule::kw_service | Rule::service_decl => "`service`",
        Rule::kw_client | Rule::client_block => "`client`",
        Rule::kw_rpc | Rule::rpc_method => "`rpc`",
        Rule::kw_notify | Rule::notify_method => "`notify`",
        Rule::kw_stream | Rule::stream_mark => "`stream`",
        Rule::kw_throws | Rule::throws_clause => "`throws`",
        Rule::kw_reserved | Rule::reserved_decl => "`reserved`",
        Rule::kw_list | Rule::list_type => "`list`",
        Rule::kw_map | Rule::map_type => "`map`",
        Rule::semi => "`;`",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::arrow => "`->`",
        Rule::optional_mark => "`?`",
        Rule::file => "`package`",
        Rule::item => "a declaration (`struct`, `enum`, `error` or `service`)",
        Rule::attribute | Rule::attr_name => "an attribute",
        Rule::variants => "`{`",
        Rule::variant => "a variant",
        Rule::field => "a field",
        Rule::param => "a parameter",
        Rule::type_expr => "a type",
        Rule::method => "a method (`rpc` or `notify`)",
        Rule::params => "`(`",
        Rule::WHITESPACE | Rule::COMMENT => "whitespace",
        Rule::ident_char => "a letter, digit or `_`",
    }
}

/// Turns a pest error into "expected a type, found `}`".
fn friendly_error(file: FileId, source: &str, error: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match error.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&str> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            let word = describe_rule(*rule);
            if !expected.contains(&word) {
                expected.push(word);
            }
        }
    }
    if let Some(quote) = unterminated_string(source, pos) {
        return Diagnostic::error("unterminated string", Span::new(file, quote, quote + 1))
            .with_label("this string has no closing `\"` on its line");
    }
    let (found, len) = found_token(source, pos);
    let message = match expected.as_slice() {
        [] => format!("unexpected {found}"),
        [one] => format!("expected {one}, found {found}"),
        [init @ .., last] => format!("expected {} or {last}, found {found}", init.join(", ")),
    };
    Diagnostic::error(message, Span::new(file, pos, pos + len))
}

/// The offset of the opening quote when the error is at a string that does not end on its line.
fn unterminated_string(source: &str, pos: usize) -> Option<usize> {
    let line_start = source[..pos.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_end = source[line_start..]
        .find('\n')
        .map_or(source.len(), |i| line_start + i);
    let line = &source.as_bytes()[line_start..line_end];
    let mut open = None;
    let mut i = 0;
    while i < line.len() {
        match (line[i], open) {
            (b'/', None) if line.get(i + 1) == Some(&b'/') => break,
            (b'"', None) => open = Some(line_start + i),
            (b'"', Some(_)) => open = None,
            (b'\\', Some(_)) => i += 1,
            _ => {}
        }
        i += 1;
    }
    open.filter(|&q| q <= pos)
}

/// Describes the text at `pos` for "found …" and returns its length in bytes.
fn found_token(source: &str, pos: usize) -> (String, usize) {
    let rest = &source[pos.min(source.len())..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".to_owned(), 0);
    };
    if first.is_ascii_alphanumeric() || first == '_' || first == '$' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        return (format!("`{}`", &rest[..len]), len);
    }
    if rest.starts_with("///") || rest.starts_with("//!") {
        return ("a doc comment".to_owned(), 3);
    }
    if rest.starts_with("->") {
        return ("`->`".to_owned(), 2);
    }
    if first == '"' {
        return ("a string".to_owned(), 1);
    }
    if first.is_whitespace() {
        return ("whitespace".to_owned(), first.len_utf8());
    }
    (format!("`{first}`"), first.len_utf8())
}

/// Builds AST nodes from pest pairs. The grammar guarantees the shapes `expect`ed here.
struct Builder {
    file: FileId,
}

impl Builder {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_owned(),
            span: self.span(&pair),
        }
    }

    fn string(&self, pair: Pair<'_, Rule>) -> StringLit {
        let span = self.span(&pair);
        let raw = pair
            .into_inner()
            .next()
            .expect("grammar guarantees string_inner")
            .as_str();
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some(other) => value.push(other),
                    None => {}
                }
            } else {
                value.push(c);
            }
        }
        StringLit { value, span }
    }

    fn file(&self, pair: Pair<'_, Rule>) -> SchemaFile {
        let mut docs = Vec::new();
        let mut package = None;
        let mut imports = Vec::new();
        let mut items = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::inner_doc_line => docs.push(doc_text(p.as_str(), "//!")),
                Rule::package_decl => {
                    let path = p
                        .into_inner()
                        .nth(1)
                        .expect("grammar guarantees a package path");
                    package = Some(self.ident(path));
                }
                Rule::import_decl => {
                    let s = p
                        .into_inner()
                        .nth(1)
                        .expect("grammar guarantees an import path");
                    imports.push(self.string(s));
                }
                Rule::item => items.push(self.item(p)),
                _ => {}
            }
        }
        let package = package.expect("grammar guarantees a package declaration");
        SchemaFile {
            docs,
            package,
            imports,
            items,
        }
    }

    /// Consumes leading doc lines and attributes.
    fn meta(&self, pairs: &mut std::iter::Peekable<pest::iterators::Pairs<'_, Rule>>) -> Meta {
        let mut meta = Meta::default();
        while let Some(p) = pairs.peek() {
            match p.as_rule() {
                Rule::doc_line => meta.docs.push(doc_text(p.as_str(), "///")),
                Rule::attribute => {
                    let p = p.clone();
                    meta.attributes.push(self.attribute(p));
                }
                _ => break,
            }
            pairs.next();
        }
        meta
    }

    fn attribute(&self, pair: Pair<'_, Rule>) -> Attribute {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name_pair = inner.next().expect("grammar guarantees an attribute name");
        let name_span = self.span(&name_pair);
        let name = Ident {
            name: name_pair.as_str().trim_start_matches('@').to_owned(),
            span: name_span,
        };
        let args = inner
            .filter(|p| p.as_rule() == Rule::string)
            .map(|p| self.string(p))
            .collect();
        Attribute { name, args, span }
    }

    fn item(&self, pair: Pair<'_, Rule>) -> Item {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().peekable();
        let meta = self.meta(&mut inner);
        let decl = inner.next().expect("grammar guarantees a declaration");
        let rule = decl.as_rule();
        let mut parts = decl.into_inner();
        parts.next(); // keyword
        let name = self.ident(parts.next().expect("grammar guarantees a declaration name"));
        let kind = match rule {
            Rule::struct_decl => {
                let (fields, reserved) = self.fields_and_reserved(parts);
                ItemKind::Struct(StructDecl { fields, reserved })
            }
            Rule::enum_decl | Rule::error_decl => {
                let body = parts.next().expect("grammar guarantees variants");
                let decl = self.variants(body);
                if rule == Rule::enum_decl {
                    ItemKind::Enum(decl)
                } else {
                    ItemKind::Error(decl)
                }
            }
            _ => ItemKind::Service(self.service(parts)),
        };
        Item {
            meta,
            name,
            kind,
            span,
        }
    }

    fn fields_and_reserved<'i>(
        &self,
        pairs: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> (Vec<Field>, Vec<StringLit>) {
        let mut fields = Vec::new();
        let mut reserved = Vec::new();
        for p in pairs {
            match p.as_rule() {
                Rule::field => fields.push(self.field(p)),
                Rule::reserved_decl => reserved.extend(self.reserved(p)),
                _ => {}
            }
        }
        (fields, reserved)
    }

    fn reserved(&self, pair: Pair<'_, Rule>) -> Vec<StringLit> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::string)
            .map(|p| self.string(p))
            .collect()
    }

    fn variants(&self, pair: Pair<'_, Rule>) -> EnumDecl {
        let mut variants = Vec::new();
        let mut reserved = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::variant => {
                    let span = self.span(&p);
                    let mut inner = p.into_inner().peekable();
                    let meta = self.meta(&mut inner);
                    let name = self.ident(inner.next().expect("grammar guarantees a variant name"));
                    let (fields, _) = self.fields_and_reserved(inner);
                    variants.push(Variant {
                        meta,
                        name,
                        fields,
                        span,
                    });
                }
                Rule::reserved_decl => reserved.extend(self.reserved(p)),
                _ => {}
            }
        }
        EnumDecl { variants, reserved }
    }

    fn field(&self, pair: Pair<'_, Rule>) -> Field {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().peekable();
        let meta = self.meta(&mut inner);
        let name = self.ident(inner.next().expect("grammar guarantees a field name"));
        inner.next(); // colon
        let mut next = inner.next().expect("grammar guarantees a field type");
        let stream = if next.as_rule() == Rule::stream_mark {
            let span = self.span(&next);
            next = inner
                .next()
                .expect("grammar guarantees a type after `stream`");
            Some(span)
        } else {
            None
        };
        let ty = self.type_expr(next);
        Field {
            meta,
            name,
            ty,
            stream,
            span,
        }
    }

    fn type_expr(&self, pair: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let base = inner.next().expect("grammar guarantees a base type");
        let base_span = self.span(&base);
        let kind = match base.as_rule() {
            Rule::list_type => {
                let elem = base.into_inner().find(|p| p.as_rule() == Rule::type_expr);
                TypeExprKind::List(Box::new(
                    self.type_expr(elem.expect("grammar guarantees a list element type")),
                ))
            }
            Rule::map_type => {
                let mut types = base.into_inner().filter(|p| p.as_rule() == Rule::type_expr);
                let k = self.type_expr(types.next().expect("grammar guarantees a map key type"));
                let v = self.type_expr(types.next().expect("grammar guarantees a map value type"));
                TypeExprKind::Map(Box::new(k), Box::new(v))
            }
            _ => TypeExprKind::Path(base.as_str().to_owned()),
        };
        let base = TypeExpr {
            kind,
            span: base_span,
        };
        if inner.next().is_some() {
            TypeExpr {
                kind: TypeExprKind::Optional(Box::new(base)),
                span,
            }
        } else {
            base
        }
    }

    fn service(&self, pairs: pest::iterators::Pairs<'_, Rule>) -> ServiceDecl {
        let mut decl = ServiceDecl {
            methods: Vec::new(),
            reserved: Vec::new(),
            client_blocks: Vec::new(),
        };
        for p in pairs {
            match p.as_rule() {
                Rule::method => decl.methods.push(self.method(p)),
                Rule::reserved_decl => decl.reserved.extend(self.reserved(p)),
                Rule::client_block => {
                    let span = self.span(&p);
                    let mut block = ClientBlock {
                        docs: Vec::new(),
                        methods: Vec::new(),
                        reserved: Vec::new(),
                        span,
                    };
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::doc_line => block.docs.push(doc_text(q.as_str(), "///")),
                            Rule::method => block.methods.push(self.method(q)),
                            Rule::reserved_decl => block.reserved.extend(self.reserved(q)),
                            _ => {}
                        }
                    }
                    decl.client_blocks.push(block);
                }
                _ => {}
            }
        }
        decl
    }

    fn method(&self, pair: Pair<'_, Rule>) -> MethodDecl {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().peekable();
        let meta = self.meta(&mut inner);
        let body = inner.next().expect("grammar guarantees a method body");
        let mut kind = if body.as_rule() == Rule::notify_method {
            MethodKindDecl::Notify
        } else {
            MethodKindDecl::Rpc
        };
        let mut parts = body.into_inner();
        parts.next(); // keyword
        let name = self.ident(parts.next().expect("grammar guarantees a method name"));
        let mut params = Vec::new();
        let mut returns = None;
        let mut throws = None;
        for p in parts {
            match p.as_rule() {
                Rule::params => {
                    params = p
                        .into_inner()
                        .filter(|q| q.as_rule() == Rule::param)
                        .map(|q| self.field(q))
                        .collect();
                }
                Rule::stream_mark => kind = MethodKindDecl::Stream,
                Rule::type_expr => returns = Some(self.type_expr(p)),
                Rule::throws_clause => {
                    let path = p
                        .into_inner()
                        .nth(1)
                        .expect("grammar guarantees a throws type");
                    throws = Some(self.ident(path));
                }
                _ => {}
            }
        }
        MethodDecl {
            meta,
            kind,
            name,
            params,
            returns,
            throws,
            span,
        }
    }
}

/// Strips the comment marker and one following space.
fn doc_text(line: &str, marker: &str) -> String {
    let text = line.strip_prefix(marker).unwrap_or(line);
    let text = text.strip_prefix(' ').unwrap_or(text);
    text.trim_end_matches('\r').to_owned()
}
