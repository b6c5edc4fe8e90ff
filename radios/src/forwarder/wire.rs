//! GWMP datagram framing: the 4-byte header (version, token, identifier), the gateway EUI,
//! and the acknowledgements and PULL_RESP the server sends back.

use super::Eui;

/// PUSH_DATA identifier.
pub const PUSH_DATA: u8 = 0x00;
/// PUSH_ACK identifier.
pub const PUSH_ACK: u8 = 0x01;
/// PULL_DATA identifier.
pub const PULL_DATA: u8 = 0x02;
/// PULL_RESP identifier.
pub const PULL_RESP: u8 = 0x03;
/// PULL_ACK identifier.
pub const PULL_ACK: u8 = 0x04;
/// TX_ACK identifier.
pub const TX_ACK: u8 = 0x05;

/// An upstream datagram whose header is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upstream<'a> {
    /// Protocol version, 1 or 2.
    pub version: u8,
    /// Token to echo in the acknowledgement.
    pub token: [u8; 2],
    /// What it is.
    pub kind: Kind,
    /// Gateway EUI.
    pub gateway: Eui,
    /// JSON body (PUSH_DATA, TX_ACK), possibly empty; a trailing NUL is removed.
    pub body: &'a [u8],
}

/// Upstream datagram type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Received packets and/or status.
    PushData,
    /// Keep-alive opening the downstream route.
    PullData,
    /// Feedback on a PULL_RESP (version 2).
    TxAck,
}

/// Why a datagram was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than its fixed part.
    Truncated,
    /// Version other than 1 or 2.
    UnknownVersion(u8),
    /// Identifier not valid upstream.
    UnknownIdentifier(u8),
}

/// Parse the fixed part of an upstream datagram.
pub fn parse_upstream(d: &[u8]) -> Result<Upstream<'_>, HeaderError> {
    let (&[version, t0, t1, id], rest) =
        d.split_first_chunk::<4>().ok_or(HeaderError::Truncated)?;
    if version != 1 && version != 2 {
        return Err(HeaderError::UnknownVersion(version));
    }
    let kind = match id {
        PUSH_DATA => Kind::PushData,
        PULL_DATA => Kind::PullData,
        TX_ACK if version == 2 => Kind::TxAck,
        other => return Err(HeaderError::UnknownIdentifier(other)),
    };
    let (eui, body) = rest
        .split_first_chunk::<8>()
        .ok_or(HeaderError::Truncated)?;
    let body = body.strip_suffix(&[0]).unwrap_or(body);
    Ok(Upstream {
        version,
        token: [t0, t1],
        kind,
        gateway: Eui(*eui),
        body,
    })
}

/// PUSH_ACK or PULL_ACK for `up`, in its version and with its token.
pub fn ack(up: &Upstream<'_>) -> Option<[u8; 4]> {
    let id = match up.kind {
        Kind::PushData => PUSH_ACK,
        Kind::PullData => PULL_ACK,
        Kind::TxAck => return None,
    };
    Some([up.version, up.token[0], up.token[1], id])
}

/// A PULL_RESP datagram.
pub fn pull_resp(version: u8, token: u16, json: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + json.len());
    v.push(version);
    v.extend_from_slice(&token.to_be_bytes());
    v.push(PULL_RESP);
    v.extend_from_slice(json.as_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let d = [2, 0xAB, 0xCD, 0, 1, 2, 3, 4, 5, 6, 7, 8, b'{', b'}', 0];
        let up = parse_upstream(&d).unwrap();
        assert_eq!(up.version, 2);
        assert_eq!(up.kind, Kind::PushData);
        assert_eq!(up.gateway, Eui([1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(up.body, b"{}");
        assert_eq!(ack(&up), Some([2, 0xAB, 0xCD, 1]));
        assert_eq!(parse_upstream(&d[..11]), Err(HeaderError::Truncated));
        assert_eq!(parse_upstream(&d[..3]), Err(HeaderError::Truncated));
        assert_eq!(
            parse_upstream(&[3, 0, 0, 0]),
            Err(HeaderError::UnknownVersion(3))
        );
        assert_eq!(
            parse_upstream(&[1, 0, 0, 9]),
            Err(HeaderError::UnknownIdentifier(9))
        );
        assert_eq!(
            parse_upstream(&[1, 0, 0, 5]),
            Err(HeaderError::UnknownIdentifier(5))
        );
        let pull = [1, 0, 7, 2, 1, 2, 3, 4, 5, 6, 7, 8];
        let up = parse_upstream(&pull).unwrap();
        assert_eq!(ack(&up), Some([1, 0, 7, 4]));
    }
}
