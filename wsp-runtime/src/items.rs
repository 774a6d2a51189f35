//! The items a caller sends in a client-streaming or bidirectional call, as the handler reads
//! them: [`Input`] (undecoded) decoded one by one into `T`.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde::de::DeserializeOwned;

use crate::adapt::Wire;
pub use crate::connection::Input;
use crate::error::{CallError, MAX_ECHOED_DECODE_ERROR, peer_text};
use crate::wire::codec::{DecodeError, Payload};

/// The caller's items of a client-streaming or bidirectional call, decoded into `T`: `Ok`
/// items in the order sent, then the end (`None`) when the caller has sent its last one.
///
/// An item that does not decode is an `Err(CallError::InvalidArguments)`; a handler that passes
/// it on with `?` (into a `ServiceError` or an `RpcError<E>`) fails the call with
/// `INVALID_ARGUMENTS`. Items are granted to the caller as they are taken
/// (PROTOCOL §2.7), so a handler that stops reading pauses the caller. When the caller
/// cancels, the deadline passes or the connection is lost, the handler is stopped.
pub struct Items<T> {
    input: Input,
    decode: fn(&Payload) -> Result<T, DecodeError>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Items<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Items").field(&self.input).finish()
    }
}

impl<T: DeserializeOwned> Items<T> {
    /// Decodes each item as `T`.
    pub fn new(input: Input) -> Self {
        Items {
            input,
            decode: |p| p.decode::<T>(),
            _t: PhantomData,
        }
    }
}

impl<T> Items<T> {
    /// Decodes each item through the adapter `A` (`Wire<T, A>`), as generated code does for
    /// 64-bit integers, bytes and floats.
    pub fn adapted<A>(input: Input) -> Self
    where
        Wire<T, A>: DeserializeOwned,
    {
        Items {
            input,
            decode: |p| p.decode::<Wire<T, A>>().map(|w| w.0),
            _t: PhantomData,
        }
    }

    /// The undecoded items.
    pub fn into_input(self) -> Input {
        self.input
    }
}

impl<T> Stream for Items<T> {
    type Item = Result<T, CallError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.input).poll_next(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(payload))) => {
                Poll::Ready(Some((this.decode)(&payload).map_err(|e| {
                    // The text may quote the peer's value: only a short, printable prefix of it.
                    let text = peer_text(&e.0, MAX_ECHOED_DECODE_ERROR);
                    CallError::InvalidArguments(format!("an item does not decode: {text}"))
                })))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}
