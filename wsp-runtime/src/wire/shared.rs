//! `bytes` values decoded as slices of the message they arrived in, instead of copies.
//!
//! A payload is decoded from a borrowed `&[u8]`, so serde hands a `bytes` value to its visitor as
//! a plain slice, with no way back to the refcounted [`Bytes`] the slice lies in. While a large
//! payload is decoded, [`Payload::decode`](super::codec::Payload::decode) keeps that `Bytes` in a
//! thread-local ([`decoding`]), and the `bytes` adapter turns a slice into a [`Bytes`] with
//! [`bytes_of`]: a shared slice of the message when it lies in it, a copy otherwise.
//!
//! Only a value of [`SHARE_AT`] bytes or more that is at least half of its payload is shared
//! (the argument of an upload, the result of a download). Any other value is copied, which costs
//! little for a small one and keeps a value the application holds on to from keeping a much
//! larger message alive: a kept value holds at most twice its size. A payload smaller than
//! [`SHARE_AT`] (every small call) does not touch the thread-local. JSON carries bytes as base64
//! text, which is decoded into a new buffer: only MessagePack values are shared.

use std::cell::RefCell;

use bytes::Bytes;

/// The smallest `bytes` value shared with its message rather than copied.
pub(crate) const SHARE_AT: usize = 4096;

thread_local! {
    /// The message being decoded on this thread, if it is large enough to share from.
    static FRAME: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` with `frame` as the message `bytes` values may share; nested calls restore the
/// outer message when they end, also by panic.
pub(crate) fn decoding<R>(frame: &Bytes, decode: impl FnOnce() -> R) -> R {
    if frame.len() < SHARE_AT {
        return decode();
    }
    struct Restore(Option<Bytes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            FRAME.with(|f| *f.borrow_mut() = outer);
        }
    }
    let _restore = Restore(FRAME.with(|f| f.replace(Some(frame.clone()))));
    decode()
}

/// `v` as [`Bytes`]: a shared slice of the payload being decoded if `v` lies in it, is large
/// and is at least half of it; otherwise a copy.
pub(crate) fn bytes_of(v: &[u8]) -> Bytes {
    if v.len() >= SHARE_AT {
        let shared = FRAME.with(|f| {
            let f = f.borrow();
            let frame = f.as_ref()?;
            let (start, end) = (
                frame.as_ptr() as usize,
                frame.as_ptr() as usize + frame.len(),
            );
            let at = v.as_ptr() as usize;
            let inside = at >= start && at + v.len() <= end;
            (inside && 2 * v.len() >= frame.len()).then(|| frame.slice_ref(v))
        });
        if let Some(b) = shared {
            return b;
        }
    }
    Bytes::copy_from_slice(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_in_the_message_are_shared_others_copied() {
        let frame = Bytes::from(vec![7u8; 3 * SHARE_AT]);
        let inside = &frame[10..10 + 2 * SHARE_AT];
        let outside = vec![7u8; 2 * SHARE_AT];
        decoding(&frame, || {
            let shared = bytes_of(inside);
            assert_eq!(shared.as_ptr(), inside.as_ptr(), "shared, not copied");
            let small = bytes_of(&frame[10..20]);
            assert_ne!(
                small.as_ptr(),
                frame[10..].as_ptr(),
                "small values are copied"
            );
            let third = &frame[..SHARE_AT];
            assert_ne!(
                bytes_of(third).as_ptr(),
                third.as_ptr(),
                "under half is copied"
            );
            let copied = bytes_of(&outside);
            assert_ne!(copied.as_ptr(), outside.as_ptr());
            assert_eq!(copied, outside);
        });
        // Outside a decode nothing is shared.
        assert_ne!(bytes_of(inside).as_ptr(), inside.as_ptr());
    }

    #[test]
    fn a_panicking_decode_leaves_nothing_behind() {
        let frame = Bytes::from(vec![3u8; 2 * SHARE_AT]);
        let caught = std::panic::catch_unwind(|| decoding(&frame, || panic!("a visitor panics")));
        assert!(caught.is_err());
        assert!(FRAME.with(|f| f.borrow().is_none()));
        assert_ne!(bytes_of(&frame[..SHARE_AT]).as_ptr(), frame.as_ptr());
    }

    #[test]
    fn a_nested_decode_restores_the_outer_message() {
        let outer = Bytes::from(vec![1u8; 2 * SHARE_AT]);
        let inner = Bytes::from(vec![2u8; 2 * SHARE_AT]);
        decoding(&outer, || {
            decoding(&inner, || {
                assert_eq!(bytes_of(&inner[..SHARE_AT]).as_ptr(), inner.as_ptr());
            });
            assert_eq!(bytes_of(&outer[..SHARE_AT]).as_ptr(), outer.as_ptr());
        });
    }
}
