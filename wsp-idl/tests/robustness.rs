//! Random and mutated inputs never make parsing or validation panic (the nightly-free companion
//! of `fuzz/fuzz_targets/parse_validate.rs`). Bounded to run in a few seconds.

use proptest::prelude::*;

const SCHEMAS: &[(&str, &str)] = &[
    ("math.wsp", include_str!("../../schemas/math.wsp")),
    ("common.wsp", include_str!("../../schemas/common.wsp")),
    ("geometry.wsp", include_str!("../../schemas/geometry.wsp")),
    ("chat.wsp", include_str!("../../schemas/chat.wsp")),
    ("keywords.wsp", include_str!("../../schemas/keywords.wsp")),
    (
        "kitchen_sink.wsp",
        include_str!("../../schemas/kitchen_sink.wsp"),
    ),
    ("v2.wsp", include_str!("../../schemas/evolution/v2.wsp")),
];

const VOCABULARY: &[&str] = &[
    "package",
    "import",
    "struct",
    "enum",
    "error",
    "service",
    "client",
    "rpc",
    "notify",
    "stream",
    "throws",
    "reserved",
    "list",
    "map",
    "<",
    ">",
    "{",
    "}",
    "(",
    ")",
    ",",
    ";",
    ":",
    "?",
    "->",
    "@deprecated",
    "(\"why\")",
    "\"common.wsp\"",
    "\"x\"",
    "///",
    "//!",
    "//",
    "\n",
    "x",
    "Point",
    "common.Timestamp",
    "i64",
    "string",
    "$type",
    "a.b",
    "Self",
    "é",
    "\"",
    "\\",
];

/// Splits source text into tokens (words, punctuation, whitespace runs) that concatenate back.
fn tokens(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_kind = None;
    for (i, c) in src.char_indices() {
        let kind = if c.is_alphanumeric() || c == '_' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2 + i // every punctuation character is its own token
        };
        if prev_kind.is_some_and(|k| k != kind) {
            out.push(&src[start..i]);
            start = i;
        }
        prev_kind = Some(kind);
    }
    out.push(&src[start..]);
    out
}

/// Loads `source` as `main.wsp` next to the valid schemas; must not panic.
fn check(source: &str) {
    let _ = wsp_idl::parse("main.wsp", source);
    let mut loader = wsp_idl::Loader::new();
    for (name, text) in SCHEMAS {
        loader.add_source(name, *text);
    }
    loader.add_source("main.wsp", source);
    if let Err(err) = loader.load(&["main.wsp"]) {
        // Rendering must not panic either, and every error says something.
        assert!(!err.rendered().is_empty());
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Delete(usize),
    Duplicate(usize),
    Swap(usize),
    Insert(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        any::<usize>().prop_map(Mutation::Swap),
        (any::<usize>(), 0..VOCABULARY.len()).prop_map(|(i, w)| Mutation::Insert(i, w)),
    ]
}

fn mutate(src: &str, mutations: &[Mutation]) -> String {
    let mut toks: Vec<String> = tokens(src).into_iter().map(str::to_owned).collect();
    for m in mutations {
        if toks.is_empty() {
            break;
        }
        let n = toks.len();
        match *m {
            Mutation::Truncate(i) => toks.truncate(i % n),
            Mutation::Delete(i) => {
                toks.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let t = toks[i % n].clone();
                toks.insert(i % n, t);
            }
            Mutation::Swap(i) => toks.swap(i % n, (i + 1) % n),
            Mutation::Insert(i, w) => toks.insert(i % n, VOCABULARY[w].to_owned()),
        }
    }
    toks.concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_token_sequences_do_not_panic(words in proptest::collection::vec(0..VOCABULARY.len(), 0..80)) {
        let src: Vec<&str> = words.into_iter().map(|w| VOCABULARY[w]).collect();
        check(&src.join(" "));
    }

    #[test]
    fn mutated_schemas_do_not_panic(
        which in 0..SCHEMAS.len(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        check(&mutate(SCHEMAS[which].1, &mutations));
    }
}

#[test]
fn tokens_round_trip() {
    for (_, src) in SCHEMAS {
        assert_eq!(tokens(src).concat(), *src);
    }
}

#[test]
fn single_token_deletions_of_every_schema_are_handled() {
    for (_, src) in SCHEMAS {
        let toks = tokens(src);
        // Every non-blank token of the small schemas, a deterministic sample of the large ones.
        let stride = if toks.len() > 400 { 5 } else { 1 };
        for skip in (0..toks.len()).step_by(stride) {
            if toks[skip].trim().is_empty() {
                continue;
            }
            let mutated: String = toks
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, t)| *t)
                .collect();
            check(&mutated);
        }
    }
}
