//! A struct with a `@deprecated` field is built in user code under `deny(deprecated)` without an
//! `#[allow]`: generated structs whose fields all have a default derive `Default`, so the
//! deprecated field need not be named.

#![deny(deprecated)]

use wsp_codegen_compile_tests::deprecation::{Line, Order};

#[test]
fn a_struct_with_a_deprecated_field_is_built_with_default() {
    let order = Order {
        sku: "A-1".into(),
        quantity: 2,
        lines: vec![Line {
            note: "gift".into(),
        }],
        ..Default::default()
    };
    assert_eq!(order.quantity, 2);
    assert_eq!(Line::default().note, "");
}
