//! Every schema in `schemas/` loads, and the model carries what generators need.

use std::path::Path;

use wsp_idl::{MethodKind, Model, Primitive, TypeKind, TypeRef};

fn schema(name: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(name);
    wsp_idl::load(&[&path]).unwrap_or_else(|e| panic!("{name} must be valid:\n{e}"))
}

#[test]
fn every_schema_file_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let mut count = 0;
    for sub in ["", "evolution"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("schemas/ exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "wsp") {
                wsp_idl::load(&[&path]).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
                count += 1;
            }
        }
    }
    assert!(count >= 8, "found only {count} schemas");
}

#[test]
fn top_level_schemas_load_together() {
    // What `wsp-codegen check schemas/*.wsp` does: one model, `common.wsp` read once.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let names = [
        "chat.wsp",
        "common.wsp",
        "geometry.wsp",
        "keywords.wsp",
        "kitchen_sink.wsp",
        "math.wsp",
    ];
    let paths: Vec<_> = names.iter().map(|n| dir.join(n)).collect();
    let model = wsp_idl::load(&paths).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.files.len(), names.len());
    assert_eq!(
        model.find_service("math.Math").expect("math").methods.len(),
        7
    );
}

#[test]
fn math_matches_the_readme_demo() {
    let model = schema("math.wsp");
    let math = model.find_service("math.Math").expect("math.Math");
    // The stream parameter is the method's input, not one of its (positional) parameters.
    let method = |name: &str| math.methods.iter().find(|m| m.name == name).expect(name);
    let sum = method("sum");
    assert_eq!(sum.kind, MethodKind::ClientStream);
    assert!(sum.params.is_empty());
    let input = sum.input.as_ref().expect("a stream parameter");
    assert_eq!(
        (input.name.as_str(), &input.ty),
        ("values", &TypeRef::Primitive(Primitive::I64))
    );
    let running = method("running");
    assert_eq!(running.kind, MethodKind::BidiStream);
    assert_eq!(running.params.len(), 1);
    assert!(running.input.is_some());
    assert_eq!(method("count").kind, MethodKind::Stream);
    assert!(method("count").input.is_none());
    let canonical = wsp_idl::fingerprint::canonical_form(&model, math.id);
    assert!(
        canonical.contains("  rpc sum(values: stream i64) -> i64 throws math.MathError\n"),
        "{canonical}"
    );
    assert!(
        canonical.contains(
            "  stream running(start: i64, values: stream i64) -> i64 throws math.MathError\n"
        ),
        "{canonical}"
    );
    let add = &math.methods[0];
    assert_eq!(math.method_path(add), "math.Math/add");
    assert_eq!(add.kind, MethodKind::Rpc);
    assert_eq!(
        add.params[0].ty,
        TypeRef::List(Box::new(TypeRef::Primitive(Primitive::I64)))
    );
    assert_eq!(add.returns, Some(TypeRef::Primitive(Primitive::I64)));
    let error = model.type_def(add.throws.expect("add throws"));
    assert_eq!(error.qualified_name, "math.MathError");
    assert!(error.is_error());
    let reset = math
        .methods
        .iter()
        .find(|m| m.name == "reset")
        .expect("reset");
    assert_eq!(
        (reset.kind, reset.returns.is_none()),
        (MethodKind::Rpc, true)
    );
    let count = math
        .methods
        .iter()
        .find(|m| m.name == "count")
        .expect("count");
    assert_eq!(count.kind, MethodKind::Stream);
    assert_eq!(count.returns, Some(TypeRef::Primitive(Primitive::U32)));
    let log = math.methods.iter().find(|m| m.name == "log").expect("log");
    assert_eq!(
        (log.kind, log.returns.is_none()),
        (MethodKind::Notify, true)
    );
}

#[test]
fn geometry_resolves_imported_types_and_client_calls() {
    let model = schema("geometry.wsp");
    assert_eq!(model.files.len(), 2);
    // Imports come before the files that import them.
    assert_eq!(model.files[0].package, "common");
    assert_eq!(model.files[1].imports, vec![model.files[0].id]);
    let measurement = model
        .find_type("geometry.Measurement")
        .expect("Measurement");
    let at = &measurement.fields().expect("struct")[1];
    let TypeRef::Named(id) = at.ty else {
        panic!("named type expected")
    };
    assert_eq!(model.type_def(id).qualified_name, "common.Timestamp");

    let geo = model.find_service("geometry.Geometry").expect("service");
    assert_eq!(geo.client_service_name(), "geometry.Geometry.client");
    let confirm = &geo.client_methods[0];
    assert_eq!(
        geo.client_method_path(confirm),
        "geometry.Geometry.client/confirm"
    );
    assert_eq!(geo.client_methods[1].kind, MethodKind::Notify);
    let measure = geo
        .methods
        .iter()
        .find(|m| m.name == "measure")
        .expect("measure");
    assert_eq!(
        model
            .type_def(measure.throws.expect("throws"))
            .qualified_name,
        "common.CommonError"
    );

    let shape = model.find_type("geometry.Shape").expect("Shape");
    let variants = shape.variants().expect("enum");
    assert_eq!(
        variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["Circle", "Polygon", "Empty"]
    );
    assert!(variants[2].is_unit());
    let label = &model
        .find_type("geometry.Point")
        .expect("Point")
        .fields()
        .expect("struct")[2];
    assert!(label.is_optional());
    assert_eq!(label.docs, vec!["Optional fields are written with `?`."]);
    assert_eq!(
        model.files[1].docs,
        vec!["Geometry service used by the examples."]
    );
}

#[test]
fn chat_declares_calls_in_both_directions() {
    let model = schema("chat.wsp");
    let chat = model.find_service("chat.Chat").expect("chat.Chat");
    let kinds: Vec<_> = chat
        .client_methods
        .iter()
        .map(|m| (m.name.as_str(), m.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("broadcast", MethodKind::Notify),
            ("ask", MethodKind::Rpc),
            ("typing", MethodKind::Stream),
            ("review", MethodKind::ClientStream),
            ("shout", MethodKind::BidiStream)
        ]
    );
}

#[test]
fn keyword_names_are_accepted_as_written() {
    let model = schema("keywords.wsp");
    let ty = model
        .find_type("keywords.type")
        .expect("struct named `type`");
    let names: Vec<&str> = ty
        .fields()
        .expect("struct")
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    for kw in [
        "type", "self", "fn", "match", "class", "function", "default", "delete", "new", "yield",
        "async", "await", "reserved", "stream",
    ] {
        assert!(names.contains(&kw), "field `{kw}` missing");
    }
    let service = model
        .find_service("keywords.fn")
        .expect("service named `fn`");
    let methods: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        methods,
        [
            "type", "class", "function", "await", "self", "match", "client", "reserved"
        ]
    );
}

#[test]
fn evolution_v2_is_compatible_with_v1_and_not_the_reverse() {
    let v1 = schema("evolution/v1.wsp");
    let v2 = schema("evolution/v2.wsp");
    let s1 = v1.find_service("evolution.Accounts").expect("v1 service");
    let s2 = v2.find_service("evolution.Accounts").expect("v2 service");
    assert_ne!(s1.fingerprint, s2.fingerprint);
    let forward = wsp_idl::breaking::check(&v1, &v2);
    assert!(forward.is_empty(), "{}", forward.rendered());
    // Going back undoes every change, and each undoing is a break.
    let back = wsp_idl::breaking::check(&v2, &v1);
    let messages: Vec<&str> = back
        .diagnostics()
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "service `evolution.Badges` was removed",
            "optional field `evolution.Profile.email` was removed without reserving its name",
            "field `evolution.Profile.nickname` reuses a name reserved in the old schema",
            "variant `evolution.Status.Away` was removed without reserving its name",
            "variant `evolution.Status.Invisible` reuses a name reserved in the old schema",
            "method `evolution.Accounts/list` was removed without reserving its name",
            "method `evolution.Accounts.client/changed` was removed without reserving its name",
            "parameter `note` of `evolution.Accounts/set_status` was removed",
            "method `evolution.Accounts/delete_account` reuses a name reserved in the old schema",
        ]
    );
}

#[test]
fn kitchen_sink_carries_deprecation_reserved_names_and_boxes() {
    let model = schema("kitchen_sink.wsp");
    assert_eq!(model.files[0].package, "kitchen.sink");
    let old = model.find_type("kitchen.sink.Old").expect("Old");
    assert_eq!(
        old.deprecated.as_ref().and_then(|d| d.reason.as_deref()),
        Some("use Containers instead")
    );
    assert_eq!(old.reserved, vec!["removed_field", "another_removed"]);
    let fields = old.fields().expect("struct");
    assert!(
        fields[1]
            .deprecated
            .as_ref()
            .is_some_and(|d| d.reason.is_none())
    );
    assert!(fields[2].deprecated.is_none());
    let mode = model.find_type("kitchen.sink.Mode").expect("Mode");
    assert!(mode.variants().expect("enum")[1].deprecated.is_some());
    let sink = model
        .find_service("kitchen.sink.KitchenSink")
        .expect("service");
    assert!(sink.deprecated.is_some());
    assert!(
        sink.methods
            .iter()
            .find(|m| m.name == "old_echo")
            .expect("old_echo")
            .deprecated
            .is_some()
    );
    assert_eq!(sink.client_reserved, vec!["removed_client_method"]);

    let needs_box = |ty: &str, field: &str| {
        let t = model.find_type(ty).expect(ty);
        let all: Vec<_> = match &t.kind {
            TypeKind::Struct(f) => f.iter().collect(),
            TypeKind::Enum(v) | TypeKind::Error(v) => v.iter().flat_map(|v| &v.fields).collect(),
        };
        all.into_iter()
            .find(|f| f.name == field)
            .expect(field)
            .needs_box
    };
    assert!(needs_box("kitchen.sink.Node", "next"));
    assert!(!needs_box("kitchen.sink.Node", "value"));
    assert!(
        !needs_box("kitchen.sink.Tree", "children"),
        "a list is already indirect"
    );
    assert!(needs_box("kitchen.sink.A", "b") && needs_box("kitchen.sink.B", "a"));
    assert!(needs_box("kitchen.sink.Expr", "left"));
    assert!(!needs_box("kitchen.sink.Expr", "terms"));
    assert!(!needs_box("kitchen.sink.Containers", "by_name"));

    let prims = model
        .find_type("kitchen.sink.Primitives")
        .expect("Primitives");
    for p in Primitive::ALL {
        assert!(
            prims
                .fields()
                .expect("struct")
                .iter()
                .any(|f| f.ty == TypeRef::Primitive(p)),
            "{} unused",
            p.name()
        );
    }
    assert!(
        prims
            .docs
            .iter()
            .any(|l| l == "    assert!(x == 2); // must not run"),
        "indentation kept"
    );
}
