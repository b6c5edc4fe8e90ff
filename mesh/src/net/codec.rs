//! The sync protocol's wire codec: a 4-byte big-endian length, then postcard. Lengths
//! above [`MAX_REQUEST`] / [`MAX_RESPONSE`] are refused before anything is allocated,
//! and bytes that do not decode are an `InvalidData` error (the stream is dropped).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::sync::{MAX_REQUEST, MAX_RESPONSE, Request, Response};

/// The protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/slope/sync/1");

/// The request-response codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec;

/// Decodes one length-prefixed postcard value of at most `max` bytes.
pub fn decode_frame<T: DeserializeOwned>(bytes: &[u8], max: usize) -> io::Result<T> {
    let len: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid("truncated length"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(invalid("message over the size limit"));
    }
    let body = bytes
        .get(4..4 + len)
        .ok_or_else(|| invalid("truncated body"))?;
    postcard::from_bytes(body).map_err(|_| invalid("malformed message"))
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

async fn read<T, R>(io: &mut R, max: usize) -> io::Result<T>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin + Send,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let n = u32::from_be_bytes(len) as usize;
    if n > max {
        return Err(invalid("message over the size limit"));
    }
    let mut body = vec![0u8; n];
    io.read_exact(&mut body).await?;
    postcard::from_bytes(&body).map_err(|_| invalid("malformed message"))
}

async fn write<T, W>(io: &mut W, value: &T, max: usize) -> io::Result<()>
where
    T: Serialize,
    W: AsyncWrite + Unpin + Send,
{
    let body = postcard::to_allocvec(value).map_err(|_| invalid("encode"))?;
    if body.len() > max {
        return Err(invalid("message over the size limit"));
    }
    io.write_all(&(body.len() as u32).to_be_bytes()).await?;
    io.write_all(&body).await?;
    io.close().await
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io, MAX_REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io, MAX_RESPONSE).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, &r, MAX_REQUEST).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        r: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, &r, MAX_RESPONSE).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let r = Request::Fetch {
            prefix: vec![1; 8],
            after: Some(3),
        };
        let body = postcard::to_allocvec(&r).unwrap();
        let mut framed = (body.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&body);
        assert_eq!(decode_frame::<Request>(&framed, MAX_REQUEST).unwrap(), r);
        assert!(decode_frame::<Request>(&framed, 2).is_err());
        assert!(decode_frame::<Request>(&framed[..framed.len() - 1], MAX_REQUEST).is_err());
        assert!(decode_frame::<Request>(&[0, 0, 0, 1, 0xff], MAX_REQUEST).is_err());
    }

    #[test]
    fn async_round_trip() {
        let r = Response::Summary {
            entries: vec![],
            more: false,
        };
        let mut buf = futures::io::Cursor::new(Vec::new());
        futures::executor::block_on(write(&mut buf, &r, MAX_RESPONSE)).unwrap();
        let bytes = buf.into_inner();
        let mut rd = futures::io::Cursor::new(bytes);
        let back: Response = futures::executor::block_on(read(&mut rd, MAX_RESPONSE)).unwrap();
        assert_eq!(back, r);
    }
}
