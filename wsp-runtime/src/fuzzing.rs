//! Entry points for the fuzz targets in `fuzz/`, compiled only with `--cfg fuzzing` (which the
//! fuzz build sets): they reach the crate's private decoders the way a peer's bytes do.

use bytes::Bytes;

use crate::connection::guarded_io::FrameTracker;
use crate::wire::codec::{Codec, Payload};
use crate::wire::{self, Frame};

/// What a received message goes through before a handler sees it: the envelope, then (for
/// the first HELLO) the services map, then the payload value with the default depth limit.
pub fn frame(codec: Codec, bytes: &[u8]) {
    let msg = Bytes::copy_from_slice(bytes);
    let Ok(frame) = wire::parse(codec, &msg) else {
        return;
    };
    let payload = match frame {
        Frame::Hello { services, .. } => {
            let _ = wire::parse_services(codec, &services, 1024);
            return;
        }
        Frame::Call { args, .. } | Frame::Notify { args, .. } => args,
        Frame::Reply { result, .. } => result,
        Frame::Error { details, .. } => details,
        Frame::Item { item, .. } | Frame::Push { item, .. } => item,
        Frame::End { .. }
        | Frame::Cancel { .. }
        | Frame::Credit { .. }
        | Frame::PushEnd { .. }
        | Frame::Pull { .. } => return,
    };
    let _ = Payload::new(codec, payload, 128).to_value();
}

/// The frame-header tracker under every connection, fed `bytes` in two reads split at `cut`.
pub fn byte_stream(bytes: &[u8], cut: usize) {
    let mut tracker = FrameTracker::default();
    let cut = cut.min(bytes.len());
    tracker.feed(&bytes[..cut]);
    tracker.feed(&bytes[cut..]);
    let _ = tracker.in_progress();
}
