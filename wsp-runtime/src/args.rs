//! A method's argument array (PROTOCOL §5), decoded for generated services by one generic
//! decoder instead of a generated one per method.
//!
//! The parameters are a type-level list, `(Req<A>, (Opt<B>, ()))`, decoded into the values
//! `(a, (b, ()))`:
//! - [`Req<T>`]: a required parameter; a missing one is an `invalid length` error;
//! - [`Opt<T>`]: an optional one (`T` is an `Option`, or a [`Wire`](crate::codegen::Wire) of
//!   one); a missing one is `T::default()`, that is `None`.
//!
//! Extra trailing arguments are ignored (a newer peer may send more), and a nil instead of the
//! array is accepted when every parameter is optional (some peers send it for no arguments).
//!
//! ```
//! use wsp_runtime::codegen::{Args, Opt, Req};
//!
//! type AddArgs = Args<(Req<Vec<i64>>, (Opt<Option<String>>, ()))>;
//! let Args((values, (label, ()))) = serde_json::from_str::<AddArgs>("[[1, 2]]").unwrap();
//! assert_eq!((values, label), (vec![1, 2], None));
//! assert!(serde_json::from_str::<AddArgs>("[]").is_err());
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, Deserialize, DeserializeOwned, Deserializer, Expected, IgnoredAny, SeqAccess, Visitor,
};

/// A required parameter whose value is a `T`.
pub struct Req<T>(PhantomData<fn() -> T>);

/// An optional parameter whose value is a `T` (an `Option`, or a `Wire` of one): `T::default()`
/// when the caller left it out.
pub struct Opt<T>(PhantomData<fn() -> T>);

/// One parameter: how it is read from the argument array.
pub trait Param {
    /// The value it decodes into.
    type Value;

    /// Reads the parameter at `index`.
    fn read<'de, S: SeqAccess<'de>>(
        seq: &mut S,
        index: usize,
        expected: &dyn Expected,
    ) -> Result<Self::Value, S::Error>;

    /// Its value when the caller sent no arguments at all, if it may be absent.
    fn absent() -> Option<Self::Value>;
}

impl<T: DeserializeOwned> Param for Req<T> {
    type Value = T;

    fn read<'de, S: SeqAccess<'de>>(
        seq: &mut S,
        index: usize,
        expected: &dyn Expected,
    ) -> Result<T, S::Error> {
        seq.next_element::<T>()?
            .ok_or_else(|| de::Error::invalid_length(index, expected))
    }

    fn absent() -> Option<T> {
        None
    }
}

impl<T: DeserializeOwned + Default> Param for Opt<T> {
    type Value = T;

    fn read<'de, S: SeqAccess<'de>>(
        seq: &mut S,
        _index: usize,
        _expected: &dyn Expected,
    ) -> Result<T, S::Error> {
        Ok(seq.next_element::<T>()?.unwrap_or_default())
    }

    fn absent() -> Option<T> {
        Some(T::default())
    }
}

/// A list of parameters: `()` or `(Param, ParamList)`.
pub trait ParamList {
    /// The decoded values, nested like the list.
    type Values;
    /// How many parameters the list has.
    const LEN: usize;

    /// Reads the parameters from `index` on.
    fn read<'de, S: SeqAccess<'de>>(
        seq: &mut S,
        index: usize,
        expected: &dyn Expected,
    ) -> Result<Self::Values, S::Error>;

    /// The values when no arguments were sent, if every parameter may be absent.
    fn absent() -> Option<Self::Values>;
}

impl ParamList for () {
    type Values = ();
    const LEN: usize = 0;

    fn read<'de, S: SeqAccess<'de>>(
        _seq: &mut S,
        _index: usize,
        _expected: &dyn Expected,
    ) -> Result<(), S::Error> {
        Ok(())
    }

    fn absent() -> Option<()> {
        Some(())
    }
}

impl<H: Param, T: ParamList> ParamList for (H, T) {
    type Values = (H::Value, T::Values);
    const LEN: usize = 1 + T::LEN;

    fn read<'de, S: SeqAccess<'de>>(
        seq: &mut S,
        index: usize,
        expected: &dyn Expected,
    ) -> Result<Self::Values, S::Error> {
        let head = H::read(seq, index, expected)?;
        Ok((head, T::read(seq, index + 1, expected)?))
    }

    fn absent() -> Option<Self::Values> {
        Some((H::absent()?, T::absent()?))
    }
}

/// The decoded arguments of a method with the parameter list `P`.
pub struct Args<P: ParamList>(pub P::Values);

impl<'de, P: ParamList> Deserialize<'de> for Args<P> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor<P>(PhantomData<fn() -> P>);

        impl<'de, P: ParamList> Visitor<'de> for ArgsVisitor<P> {
            type Value = Args<P>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of {} arguments", P::LEN)
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args<P>, S::Error> {
                let values = P::read(&mut seq, 0, &self)?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Args(values))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Args<P>, E> {
                P::absent()
                    .map(Args)
                    .ok_or_else(|| de::Error::invalid_type(de::Unexpected::Unit, &self))
            }
        }

        deserializer.deserialize_any(ArgsVisitor::<P>(PhantomData))
    }
}
