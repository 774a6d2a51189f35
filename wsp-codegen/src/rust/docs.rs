//! Doc comments: schema docs become `#[doc]` attributes that never turn into doctests.

use proc_macro2::TokenStream;
use quote::quote;

/// `#[doc]` attributes for `lines`, or for `fallback` when there are none.
pub(crate) fn doc_attrs(lines: &[String], fallback: &str) -> TokenStream {
    let lines = if lines.iter().all(|l| l.trim().is_empty()) {
        vec![fallback.to_owned()]
    } else {
        sanitize(lines)
    };
    let attrs = lines.iter().map(|l| {
        let text = if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        };
        quote!(#[doc = #text])
    });
    quote!(#(#attrs)*)
}

/// `#[doc]` attributes for a method: its docs (or `fallback`), then a `# Parameters` section
/// when parameters have docs or are deprecated (Rust has no attributes on parameters).
pub(crate) fn method_doc_attrs(m: &wsp_idl::Method, fallback: &str) -> TokenStream {
    let mut lines: Vec<String> = if m.docs.iter().all(|l| l.trim().is_empty()) {
        vec![fallback.to_owned()]
    } else {
        m.docs.clone()
    };
    let documented: Vec<&wsp_idl::Field> = m
        .params
        .iter()
        .filter(|p| !p.docs.is_empty() || p.deprecated.is_some())
        .collect();
    if !documented.is_empty() {
        lines.push(String::new());
        lines.push("# Parameters".to_owned());
        lines.push(String::new());
        for p in documented {
            let mut text = p.docs.join(" ");
            if let Some(d) = &p.deprecated {
                let why = d
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                text = format!("{text} (deprecated{why})").trim().to_owned();
            }
            lines.push(format!("- `{}`: {text}", p.name));
        }
    }
    doc_attrs(&lines, fallback)
}

/// Whether a fence's info string would make rustdoc compile the block as Rust.
fn is_rust_info(info: &str) -> bool {
    let info = info.trim();
    info.is_empty()
        || info.split(',').any(|w| {
            matches!(
                w.trim(),
                "rust" | "should_panic" | "no_run" | "ignore" | "compile_fail"
            ) || w.trim().starts_with("edition")
        })
}

/// Rewrites Rust code blocks (fenced without a language, or indented by four spaces) as
/// ```` ```text ```` blocks, so that rustdoc never runs schema docs as doctests.
pub(crate) fn sanitize(lines: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len() + 4);
    // `Some(fence)` while inside a fenced block opened with that fence string.
    let mut fence: Option<String> = None;
    // `true` while inside an indented block we opened a ```text fence for.
    let mut indented = false;
    let mut prev_blank = true;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(open) = &fence {
            if trimmed.starts_with(open.as_str()) && trimmed.trim_end() == open.as_str() {
                fence = None;
            }
            out.push(line.clone());
            prev_blank = false;
            continue;
        }
        if indented {
            let is_code = line.starts_with("    ") || line.trim().is_empty();
            let continues = is_code
                && (!line.trim().is_empty()
                    || lines[i + 1..]
                        .iter()
                        .find(|l| !l.trim().is_empty())
                        .is_some_and(|l| l.starts_with("    ")));
            if continues {
                out.push(line.strip_prefix("    ").unwrap_or("").to_owned());
                continue;
            }
            out.push("```".to_owned());
            indented = false;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker = &trimmed[..3];
            let ticks: String = trimmed
                .chars()
                .take_while(|c| *c == marker.as_bytes()[0] as char)
                .collect();
            let info = &trimmed[ticks.len()..];
            let indent = &line[..line.len() - trimmed.len()];
            if is_rust_info(info) {
                out.push(format!("{indent}{ticks}text"));
            } else {
                out.push(line.clone());
            }
            fence = Some(ticks);
            prev_blank = false;
            continue;
        }
        if prev_blank && line.starts_with("    ") && !line.trim().is_empty() {
            out.push("```text".to_owned());
            out.push(line[4..].to_owned());
            indented = true;
            continue;
        }
        prev_blank = line.trim().is_empty();
        out.push(line.clone());
    }
    if indented {
        out.push("```".to_owned());
    }
    if let Some(open) = fence {
        out.push(open);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    fn run(text: &str) -> String {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        sanitize(&lines).join("\n")
    }

    #[test]
    fn fences_without_language_become_text() {
        assert_eq!(
            run("a\n```\nfn main() {}\n```\nb"),
            "a\n```text\nfn main() {}\n```\nb"
        );
        assert_eq!(run("```rust\nx\n```"), "```text\nx\n```");
        assert_eq!(run("```json\n{}\n```"), "```json\n{}\n```");
    }

    #[test]
    fn indented_blocks_are_fenced() {
        assert_eq!(
            run("Intro:\n\n    let x = 1;\n\n    x\nafter"),
            "Intro:\n\n```text\nlet x = 1;\n\nx\n```\nafter"
        );
        assert_eq!(run("    code"), "```text\ncode\n```");
        assert_eq!(run("text\n    not code"), "text\n    not code");
    }

    #[test]
    fn unclosed_fence_is_closed() {
        assert_eq!(run("```\ncode"), "```text\ncode\n```");
    }
}
