//! Loader, resolution, fingerprints and diagnostics, with in-memory sources.

use wsp_idl::{Loader, Model, TypeRef};

fn load(files: &[(&str, &str)]) -> Result<Model, wsp_idl::Error> {
    let mut loader = Loader::new();
    for (path, source) in files {
        loader.add_source(path, *source);
    }
    loader.load(&[files[0].0])
}

#[test]
fn in_memory_imports_resolve_relative_to_the_importer() {
    let model = load(&[
        (
            "app/main.wsp",
            "package app; import \"../lib/time.wsp\"; struct E { at: time.Instant }",
        ),
        ("lib/time.wsp", "package time; struct Instant { ms: u64 }"),
    ])
    .expect("valid");
    assert_eq!(
        model.paths(),
        [
            std::path::Path::new("lib/time.wsp"),
            std::path::Path::new("app/main.wsp")
        ]
    );
    let e = model.find_type("app.E").expect("E");
    let TypeRef::Named(id) = e.fields().expect("struct")[0].ty else {
        panic!("named")
    };
    assert_eq!(model.type_def(id).qualified_name, "time.Instant");
    assert_eq!(model.packages(), ["time", "app"]);
}

#[test]
fn a_file_imported_twice_is_read_once() {
    let model = load(&[
        ("a.wsp", "package a; import \"b.wsp\"; import \"c.wsp\";"),
        ("b.wsp", "package b; import \"./d.wsp\";"),
        ("c.wsp", "package c; import \"d.wsp\";"),
        ("d.wsp", "package d; struct D {}"),
    ])
    .expect("valid");
    assert_eq!(model.files.len(), 4);
    assert_eq!(model.types.len(), 1);
}

#[test]
fn same_package_across_files_shares_unqualified_names_when_imported() {
    let model = load(&[
        (
            "a.wsp",
            "package shop; import \"b.wsp\"; struct Order { item: Item }",
        ),
        ("b.wsp", "package shop; struct Item { sku: string }"),
    ])
    .expect("valid");
    assert_eq!(model.types.len(), 2);
}

#[test]
fn every_error_is_reported_in_one_run() {
    let err = load(&[(
        "x.wsp",
        "package x;\n\
         struct P { a: Q, a: i32, b: map<f64, i32>, $c: i32 }\n\
         struct L { me: L }\n\
         service S { rpc m(a: i32?, b: i32) throws P; }\n",
    )])
    .expect_err("invalid");
    let messages: Vec<&str> = err
        .diagnostics()
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "unknown type `Q`",
            "duplicate field `a` in struct `P`",
            "invalid map key type `f64`",
            "name `$c` starts with `$`",
            "struct `L` contains itself through required fields",
            "`P` is a struct, not an error type",
        ]
    );
    // Display renders all of them.
    assert_eq!(
        err.to_string().matches("\nerror: ").count() + 1,
        messages.len()
    );
}

#[test]
fn an_optional_parameter_may_stand_anywhere_and_only_the_trailing_run_may_be_left_out() {
    let model = load(&[(
        "x.wsp",
        "package x;\n\
         service S {\n\
             rpc list(prefix: string?, limit: u32) -> list<string>;\n\
             rpc search(query: string, limit: u32?, cursor: string?);\n\
             rpc mixed(a: i32?, b: i32, c: i32?);\n\
             rpc none(a: i32?, b: i32?);\n\
             notify bare();\n\
         }\n",
    )])
    .expect("an optional parameter before a required one is valid");
    let s = &model.services[0];
    let omittable: Vec<(&str, usize)> = s
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.omittable_from()))
        .collect();
    assert_eq!(
        omittable,
        [
            ("list", 2),
            ("search", 1),
            ("mixed", 2),
            ("none", 0),
            ("bare", 0)
        ]
    );
}

#[test]
fn import_cycle_and_missing_file_are_reported_together_with_parse_errors_of_other_files() {
    let err = load(&[
        (
            "a.wsp",
            "package a; import \"b.wsp\"; import \"gone.wsp\"; import \"bad.wsp\";",
        ),
        ("b.wsp", "package b; import \"a.wsp\";"),
        ("bad.wsp", "package bad; struct {"),
    ])
    .expect_err("invalid");
    let messages: Vec<&str> = err
        .diagnostics()
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "import cycle: `a.wsp` → `b.wsp` → `a.wsp`",
            "imported file `gone.wsp` not found",
            "expected a name, found `{`",
        ]
    );
    // The files read are known even on failure (for `cargo:rerun-if-changed`).
    let read: Vec<_> = err
        .sources()
        .files()
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(read, ["a.wsp", "b.wsp", "bad.wsp"]);
}

#[test]
fn a_missing_root_file_is_an_error_without_location() {
    let err = wsp_idl::load(&["/definitely/not/here.wsp"]).expect_err("missing");
    assert!(err.diagnostics()[0].span.is_none());
    assert!(
        err.to_string()
            .starts_with("error: cannot read `/definitely/not/here.wsp`: "),
        "{err}"
    );
}

#[test]
fn duplicate_definitions_across_files_of_one_package_are_errors() {
    let err = load(&[
        ("a.wsp", "package p; import \"b.wsp\"; struct T {}"),
        ("b.wsp", "package p; enum T { X }"),
    ])
    .expect_err("duplicate");
    assert_eq!(
        err.diagnostics()[0].message,
        "`p.T` is defined more than once"
    );
}

const GEOMETRY: &str = r#"
package geometry;
/// A point.
struct Point { x: f64, y: f64, label: string? }
enum Shape { Circle { center: Point, radius: f64 }, Empty, reserved "Square"; }
error GeometryError { TooLarge }
struct Unused { x: i32 }
service Geometry {
    rpc area(shape: Shape) -> f64 throws GeometryError;
    notify log(line: string);
    rpc walk(shape: Shape, steps: u32) -> stream Point;
    rpc reset();
    client { rpc confirm(question: string) -> bool; }
}
"#;

#[test]
fn canonical_form_is_documented_text() {
    let model = load(&[("g.wsp", GEOMETRY)]).expect("valid");
    let text = wsp_idl::fingerprint::canonical_form(&model, model.services[0].id);
    assert_eq!(
        text,
        "service geometry.Geometry\n\
         \x20 rpc area(shape: geometry.Shape) -> f64 throws geometry.GeometryError\n\
         \x20 notify log(line: string)\n\
         \x20 stream walk(shape: geometry.Shape, steps: u32) -> geometry.Point\n\
         \x20 rpc reset()\n\
         client\n\
         \x20 rpc confirm(question: string) -> bool\n\
         error geometry.GeometryError\n\
         \x20 TooLarge\n\
         struct geometry.Point\n\
         \x20 x: f64\n\
         \x20 y: f64\n\
         \x20 label: string?\n\
         enum geometry.Shape\n\
         \x20 reserved \"Square\"\n\
         \x20 Circle { center: geometry.Point, radius: f64 }\n\
         \x20 Empty\n"
    );
    let fp = &model.services[0].fingerprint;
    assert_eq!(fp.len(), 16);
    assert!(
        fp.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(
        *fp,
        wsp_idl::fingerprint::fingerprint(&model, model.services[0].id)
    );
}

#[test]
fn fingerprint_ignores_formatting_docs_comments_and_deprecation() {
    let base = load(&[("g.wsp", GEOMETRY)]).expect("valid").services[0]
        .fingerprint
        .clone();
    let reformatted = GEOMETRY
        .replace("{ x: f64,", "{\n  /// X.\n  x:   f64, // comment\n")
        .replace(
            "/// A point.",
            "/// Another doc.\n// comment\n@deprecated(\"old\")",
        )
        .replace("rpc reset();", "@deprecated rpc reset ( ) ;")
        .replace("struct Unused { x: i32 }", "struct Unused { x: i64 }");
    assert_ne!(reformatted, GEOMETRY);
    let model = load(&[("other/path.wsp", &reformatted)]).expect("valid");
    assert_eq!(model.services[0].fingerprint, base);
}

#[test]
fn fingerprint_changes_with_meaning() {
    let base = load(&[("g.wsp", GEOMETRY)]).expect("valid").services[0]
        .fingerprint
        .clone();
    for (from, to) in [
        ("radius: f64", "radius: f32"),
        ("label: string?", "label: string"),
        ("Empty,", "Empty, Square2,"),
        ("steps: u32", "steps: u32, extra: u8?"),
        ("notify log", "rpc log"),
        ("-> bool", "-> bool?"),
        ("package geometry", "package geometry2"),
        ("reserved \"Square\"", "reserved \"Circle2\""),
    ] {
        let changed = GEOMETRY.replace(from, to);
        assert_ne!(changed, GEOMETRY, "{from}");
        let fp = load(&[("g.wsp", &changed)])
            .unwrap_or_else(|e| panic!("{e}"))
            .services[0]
            .fingerprint
            .clone();
        assert_ne!(
            fp, base,
            "changing `{from}` to `{to}` must change the fingerprint"
        );
    }
}

#[test]
fn reachable_types_follow_fields_transitively() {
    let model = load(&[("g.wsp", GEOMETRY)]).expect("valid");
    let names: Vec<&str> = model
        .reachable_types(model.services[0].id)
        .into_iter()
        .map(|id| model.type_def(id).name.as_str())
        .collect();
    assert_eq!(names, ["Point", "Shape", "GeometryError"]);
}

#[test]
fn parse_builds_an_ast_with_spans_and_docs() {
    let src = "//! File docs.\npackage a.b;\n/// Item docs.\n@deprecated(\"x\\\"y\")\nstruct P { x: list<i32>?, reserved \"old\"; }";
    let file = wsp_idl::parse("p.wsp", src).expect("valid");
    assert_eq!(file.docs, ["File docs."]);
    assert_eq!(file.package.name, "a.b");
    let item = &file.items[0];
    assert_eq!(item.meta.docs, ["Item docs."]);
    assert_eq!(item.meta.attributes[0].args[0].value, "x\"y");
    assert_eq!(&src[item.name.span.start..item.name.span.end], "P");
    let wsp_idl::ast::ItemKind::Struct(s) = &item.kind else {
        panic!("struct")
    };
    assert_eq!(
        &src[s.fields[0].ty.span.start..s.fields[0].ty.span.end],
        "list<i32>?"
    );
    assert_eq!(s.reserved[0].value, "old");
}

#[test]
fn parse_errors_use_words_not_rule_names() {
    let cases = [
        ("package a; struct P { x: }", "expected a type, found `}`"),
        ("package a; struct P { x f64 }", "expected `:`, found `f64`"),
        (
            "package a; service S { fn x(); }",
            "expected `reserved`, `}`, `client` or a method (`rpc` or `notify`), found `fn`",
        ),
        (
            "package a; struct P { x: i32 ",
            "expected `,`, `}` or `?`, found end of file",
        ),
        ("struct P {}", "expected `package`, found `struct`"),
        (
            "package a; enum E { A B }",
            "expected `,`, `{` or `}`, found `B`",
        ),
    ];
    for (src, expected) in cases {
        let err = wsp_idl::parse("p.wsp", src).expect_err(src);
        assert_eq!(err.diagnostics()[0].message, expected, "for {src:?}");
    }
}

#[test]
fn very_deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    for open in ["list<", "map<string, ", "(", "{"] {
        let src = format!(
            "package a; struct P {{ x: {}i32{} }}",
            open.repeat(10_000),
            ">".repeat(10_000)
        );
        let err = wsp_idl::parse("deep.wsp", &src).expect_err("too deep");
        assert!(
            err.diagnostics()[0]
                .message
                .starts_with("brackets nested too deeply"),
            "{err}"
        );
    }
    // Within the limit is fine.
    let depth = wsp_idl::MAX_NESTING - 2;
    let src = format!(
        "package a; struct P {{ x: {}i32{} }}",
        "list<".repeat(depth),
        ">".repeat(depth)
    );
    load(&[("ok.wsp", &src)]).expect("nesting within the limit");
}

#[test]
fn render_points_at_the_span_with_carets() {
    let err = load(&[("s.wsp", "package s;\nstruct P {\n\tx: Strin,\n}\n")]).expect_err("unknown");
    assert_eq!(
        err.rendered(),
        "error: unknown type `Strin`\n --> s.wsp:3:5\n  |\n3 |  x: Strin,\n  |     ^^^^^ not found\n  |\n  = help: did you mean `string`?\n"
    );
}

#[test]
fn the_language_reference_example_and_its_canonical_form_agree() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md"))
        .expect("docs/language.md");
    let block = |fence: &str, after: &str| -> String {
        let start = doc.find(after).expect("section") + after.len();
        let rest = &doc[start..];
        let open = rest.find(fence).expect("fence") + fence.len() + 1;
        let close = rest[open..].find("```").expect("closing fence");
        rest[open..open + close].to_owned()
    };
    let example = block("```wsp", "# The `.wsp` schema language");
    let expected = block("```text", "## 8. Fingerprints");
    let model = load(&[
        ("geometry.wsp", &example),
        (
            "common.wsp",
            "package common; struct Timestamp { millis: u64 }",
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let service = model.find_service("geometry.Geometry").expect("service");
    assert_eq!(
        wsp_idl::fingerprint::canonical_form(&model, service.id),
        expected
    );
}
