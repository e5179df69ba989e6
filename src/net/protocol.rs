//! The sync request/response protocol `/gradientcoin/sync/1`: its messages, their limits,
//! and the length-limited codec that puts them on a libp2p stream.
//!
//! Owns the wire form of sync messages: one frame per message, a `u32` little-endian byte
//! length followed by the canonical encoding ([`crate::chain::encode`]) of the message.
//! It checks sizes and counts only; whether the headers or blocks in a response are valid
//! is for `chain` to decide, and which peer to ask is for `node`.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};

use crate::chain::block::{Block, Header};
use crate::chain::encode;
use crate::hash::Hash256;

/// The protocol name negotiated with multistream-select.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/gradientcoin/sync/1");

/// Most headers in one [`SyncResponse::Headers`] (as Bitcoin's `headers` message).
pub const MAX_HEADERS: usize = 2000;

/// Most blocks asked for in one [`SyncRequest::GetBlocks`] or sent in one
/// [`SyncResponse::Blocks`].
pub const MAX_BLOCKS_PER_RESPONSE: usize = 16;

/// Most hashes in a [`SyncRequest::GetHeaders`] locator (Bitcoin Core's
/// `MAX_LOCATOR_SZ`): a locator is logarithmic in the chain length, so 101 covers any
/// chain with room to spare.
pub const MAX_LOCATOR_HASHES: usize = 101;

/// Largest encoded response frame. Twice the largest block limit of any network (8 MiB),
/// so one block always fits, while a peer cannot make us buffer more than this per stream.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Largest encoded request frame: a full locator is about 3.3 KiB, so 64 KiB leaves room
/// for future request kinds without letting a peer make us buffer much.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Longest text in a [`SyncResponse::Error`]: enough for a reason, too short to abuse.
pub const MAX_ERROR_LEN: usize = 1024;

/// A request from a syncing peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Headers following the first locator hash the responder knows, up to and including
    /// `stop` (or [`MAX_HEADERS`] of them; `stop` = zero means "as many as allowed").
    GetHeaders {
        /// Block hashes from the requester's tip backwards, dense first then exponentially
        /// sparse, ending at genesis (as Bitcoin's block locator).
        locator: Vec<Hash256>,
        /// Last header wanted.
        stop: Hash256,
    },
    /// Full blocks by hash.
    GetBlocks {
        /// The blocks wanted, at most [`MAX_BLOCKS_PER_RESPONSE`].
        hashes: Vec<Hash256>,
    },
}

/// The answer to a [`SyncRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to `GetHeaders`: consecutive headers, at most [`MAX_HEADERS`].
    Headers(Vec<Header>),
    /// Answer to `GetBlocks`: the blocks the responder has, in the order asked, at most
    /// [`MAX_BLOCKS_PER_RESPONSE`] and at most [`MAX_RESPONSE_BYTES`] encoded.
    Blocks(Vec<Block>),
    /// The responder cannot answer (at most [`MAX_ERROR_LEN`] bytes of text).
    Error(String),
}

/// A message that breaks a limit of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Too many items of one kind.
    #[error("{what} has {count} items, the limit is {limit}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Items present.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A frame or its encoding is too long.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which message.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

fn at_most(what: &'static str, count: usize, limit: usize) -> Result<(), LimitError> {
    if count > limit {
        return Err(LimitError::TooMany { what, count, limit });
    }
    Ok(())
}

impl SyncRequest {
    /// Checks the counts against the protocol limits (both sides run it: the sender
    /// before writing, the receiver after decoding).
    pub fn check(&self) -> Result<(), LimitError> {
        match self {
            SyncRequest::GetHeaders { locator, .. } => at_most("locator", locator.len(), MAX_LOCATOR_HASHES),
            SyncRequest::GetBlocks { hashes } => at_most("block request", hashes.len(), MAX_BLOCKS_PER_RESPONSE),
        }
    }
}

impl SyncResponse {
    /// Checks the counts against the protocol limits; the byte limit is the codec's.
    pub fn check(&self) -> Result<(), LimitError> {
        match self {
            SyncResponse::Headers(h) => at_most("headers response", h.len(), MAX_HEADERS),
            SyncResponse::Blocks(b) => at_most("blocks response", b.len(), MAX_BLOCKS_PER_RESPONSE),
            SyncResponse::Error(text) => {
                if text.len() > MAX_ERROR_LEN {
                    return Err(LimitError::TooLarge { what: "error text", len: text.len(), limit: MAX_ERROR_LEN });
                }
                Ok(())
            }
        }
    }

    /// A `Blocks` response from `blocks`, keeping the longest prefix that fits both
    /// [`MAX_BLOCKS_PER_RESPONSE`] and [`MAX_RESPONSE_BYTES`]; the requester asks again for
    /// the rest. The first block is always kept: any valid block fits on its own.
    pub fn blocks_within_limits(blocks: impl IntoIterator<Item = Block>) -> SyncResponse {
        // Variant tag (u32) + vector length (u64) of the fixed-int encoding.
        let mut total = 4 + 8;
        let mut out = Vec::new();
        for block in blocks.into_iter().take(MAX_BLOCKS_PER_RESPONSE) {
            let size = block.size();
            if !out.is_empty() && total + size > MAX_RESPONSE_BYTES {
                break;
            }
            total += size;
            out.push(block);
        }
        SyncResponse::Blocks(out)
    }
}

/// The length-limited codec of [`PROTOCOL`]: `u32` little-endian length, then the
/// canonical encoding. Oversize frames are refused from their length prefix, before any
/// buffer is allocated, and bytes are buffered only as they arrive.
#[derive(Clone, Debug)]
pub struct SyncCodec {
    max_request_bytes: usize,
    max_response_bytes: usize,
}

impl Default for SyncCodec {
    fn default() -> Self {
        SyncCodec { max_request_bytes: MAX_REQUEST_BYTES, max_response_bytes: MAX_RESPONSE_BYTES }
    }
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Reads one frame of at most `limit` bytes.
async fn read_frame<T>(io: &mut T, limit: usize, what: &'static str) -> io::Result<Vec<u8>>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > limit {
        return Err(invalid(LimitError::TooLarge { what, len, limit }));
    }
    // `take` + `read_to_end` grows the buffer with the data actually received, so a peer
    // that announces 16 MiB and sends nothing costs us nothing.
    let mut buf = Vec::new();
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what} frame ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

/// Writes one frame, refusing to send more than the receiver will accept.
async fn write_frame<T>(io: &mut T, bytes: &[u8], limit: usize, what: &'static str) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if bytes.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            LimitError::TooLarge { what, len: bytes.len(), limit },
        ));
    }
    // `limit` is at most 16 MiB, so the length fits a u32.
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_frame(io, self.max_request_bytes, "sync request").await?;
        let req: SyncRequest = encode::decode(&buf, self.max_request_bytes, "sync request").map_err(invalid)?;
        req.check().map_err(invalid)?;
        Ok(req)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_frame(io, self.max_response_bytes, "sync response").await?;
        let resp: SyncResponse = encode::decode(&buf, self.max_response_bytes, "sync response").map_err(invalid)?;
        resp.check().map_err(invalid)?;
        Ok(resp)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: SyncRequest) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        req.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        write_frame(io, &encode::encode(&req), self.max_request_bytes, "sync request").await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, resp: SyncResponse) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        resp.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        write_frame(io, &encode::encode(&resp), self.max_response_bytes, "sync response").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn header(n: u64) -> Header {
        let mut h = crate::chain::params::ChainParams::dev().genesis.header;
        h.nonce = n;
        h
    }

    fn written<F>(f: F) -> Vec<u8>
    where
        F: FnOnce(&mut SyncCodec, &mut Cursor<Vec<u8>>) -> io::Result<()>,
    {
        let mut cur = Cursor::new(Vec::new());
        f(&mut SyncCodec::default(), &mut cur).unwrap();
        cur.into_inner()
    }

    #[test]
    fn requests_and_responses_round_trip_through_frames() {
        let req = SyncRequest::GetHeaders { locator: vec![Hash256([1; 32]), Hash256([2; 32])], stop: Hash256::ZERO };
        let bytes = written(|c, io| block_on(c.write_request(&PROTOCOL, io, req.clone())));
        assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        let back = block_on(SyncCodec::default().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap();
        assert_eq!(back, req);

        let resp = SyncResponse::Headers((0..3).map(header).collect());
        let bytes = written(|c, io| block_on(c.write_response(&PROTOCOL, io, resp.clone())));
        let back = block_on(SyncCodec::default().read_response(&PROTOCOL, &mut Cursor::new(bytes))).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn an_oversize_length_prefix_is_rejected_before_reading_the_body() {
        // A 1 GiB announcement with no body: the error must be the limit, not an early EOF,
        // which shows the codec refused it from the prefix alone.
        let bytes = (1u32 << 30).to_le_bytes().to_vec();
        let err = block_on(SyncCodec::default().read_response(&PROTOCOL, &mut Cursor::new(bytes.clone()))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
        // Requests have a much smaller limit.
        let bytes = ((MAX_REQUEST_BYTES + 1) as u32).to_le_bytes().to_vec();
        let err = block_on(SyncCodec::default().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn counts_above_the_limits_are_rejected_on_both_sides() {
        let too_many = SyncRequest::GetBlocks { hashes: vec![Hash256::ZERO; MAX_BLOCKS_PER_RESPONSE + 1] };
        let mut cur = Cursor::new(Vec::new());
        assert!(block_on(SyncCodec::default().write_request(&PROTOCOL, &mut cur, too_many.clone())).is_err());

        // A peer that skips the check: frame it by hand.
        let body = encode::encode(&too_many);
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let err = block_on(SyncCodec::default().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        let headers = SyncResponse::Headers(vec![header(0); MAX_HEADERS + 1]);
        let body = encode::encode(&headers);
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        let err = block_on(SyncCodec::default().read_response(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert!(err.to_string().contains("2001"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_frames_are_errors() {
        let mut bytes = 10u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xff; 3]);
        let err = block_on(SyncCodec::default().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut bytes = 4u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0xff; 4]);
        let err = block_on(SyncCodec::default().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn blocks_within_limits_caps_count() {
        let g = crate::chain::params::ChainParams::dev().genesis;
        let SyncResponse::Blocks(b) = SyncResponse::blocks_within_limits(vec![g; 40]) else { unreachable!() };
        assert_eq!(b.len(), MAX_BLOCKS_PER_RESPONSE);
    }
}
