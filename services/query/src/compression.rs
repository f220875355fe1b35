//! Response compression for the whole HTTP surface: pages, the JSON API, static files
//! and `/metrics` go out gzip-compressed when the client sends `Accept-Encoding: gzip`
//! (browsers always do; `curl` only with `--compressed`), as identity otherwise. A
//! 10 000-span trace page is about 11 MiB of HTML and its JSON about as much; both shrink
//! by an order of magnitude, which is what a user on a slow link waits for.
//!
//! What stays true:
//! - Bodies under [`MIN_BYTES`] go as they are: gzip's own framing and a round of CPU
//!   buy nothing below a packet. Images but SVG are already compressed, and
//!   `text/event-stream` would be held back by the encoder's buffer, so neither is
//!   touched (the query service streams nothing today; this keeps it so if it does).
//! - A response that could be compressed says `Vary: Accept-Encoding`, compressed or
//!   not, so a cache between never hands gzip to a client that did not ask for it.
//! - The encoder works on the body as it is produced (no whole-body buffering), drops
//!   `Content-Length` for what it compresses and keeps every other header (the security
//!   headers, `Content-Disposition` of the OTLP download, `Server-Timing`).
//! - Only gzip: brotli would bring the `brotli` crate, a large encoder the workspace has
//!   no other use for, and gzip already gains an order of magnitude on this text.

use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};

/// Bodies smaller than this (from `Content-Length` or the body's exact size) are sent
/// uncompressed.
const MIN_BYTES: u16 = 1024;

/// gzip's level. On the HTML of a 10 000-span trace page (11.6 MB), written in 8 KiB
/// chunks, a release build spends 34 ms of CPU for 576 kB at level 4, against 80 ms for
/// 560 kB at the default level 6 and 12 ms for 938 kB at level 1.
const LEVEL: i32 = 4;

/// The layer: gzip at [`LEVEL`] for bodies worth it.
pub fn layer() -> CompressionLayer<impl Predicate> {
    let worth_it = SizeAbove::new(MIN_BYTES)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(LEVEL))
        .compress_when(worth_it)
}
