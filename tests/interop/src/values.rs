//! Values both sides of the interop tests build identically (the TypeScript copies are in
//! `ts/tests/test/interop.test.ts`).

use std::collections::BTreeMap;

use crate::BIG;
use crate::kitchen::sink;

/// Every primitive at an extreme.
pub(crate) fn primitives() -> sink::Primitives {
    sink::Primitives {
        a_bool: true,
        an_i8: i8::MIN,
        an_i16: i16::MIN,
        an_i32: i32::MIN,
        an_i64: i64::MIN,
        a_u8: u8::MAX,
        a_u16: u16::MAX,
        a_u32: u32::MAX,
        a_u64: u64::MAX,
        an_f32: 1.5,
        an_f64: 2.0,
        a_string: "héllo ✓".into(),
        some_bytes: vec![0, 1, 2, 255].into(),
        maybe_bool: None,
        maybe_i64: Some((1 << 53) + 1),
        maybe_u64: None,
        maybe_bytes: Some(wsp_runtime::Bytes::new()),
        maybe_string: None,
    }
}

/// Lists, maps with integer and string keys, optionals.
pub(crate) fn containers() -> sink::Containers {
    sink::Containers {
        numbers: vec![1, -2, 3],
        matrix: vec![vec![1.0, 2.5], vec![]],
        by_name: BTreeMap::new(),
        by_id: BTreeMap::from([(u64::MAX, "max".to_owned()), (0, "zero".to_owned())]),
        by_small_id: BTreeMap::from([(-1, vec![Some("a".to_owned()), None]), (2, vec![])]),
        by_u32: BTreeMap::from([(7, BTreeMap::from([("x".to_owned(), vec![BIG])]))]),
        maybe_list: None,
        list_of_maybe: vec![None],
        maybe_map: Some(BTreeMap::from([(-5, true)])),
        deep: vec![BTreeMap::from([(
            "k".to_owned(),
            vec![BTreeMap::from([
                (1, Some(wsp_runtime::Bytes::from_static(&[9]))),
                (2, None),
            ])],
        )])],
    }
}

/// A recursive expression.
pub(crate) fn expr() -> sink::Expr {
    sink::Expr::Add {
        left: Box::new(sink::Expr::Literal { value: 1.0 }),
        right: Box::new(sink::Expr::Sum {
            terms: vec![sink::Expr::Negate {
                inner: Box::new(sink::Expr::Nothing),
            }],
        }),
    }
}
