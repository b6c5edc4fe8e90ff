//! Any bytes into the mesh's sync codec (`slope_mesh::net::codec::decode_frame`), as a
//! request and as a response: never a panic, nothing over the size limits accepted, and
//! every accepted message round-trips through its encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_mesh::net::codec::decode_frame;
use slope_mesh::net::sync::{MAX_REQUEST, MAX_RESPONSE, Request, Response};

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_frame::<Request>(data, MAX_REQUEST) {
        assert!(data.len() >= 4);
        let body = postcard::to_allocvec(&req).expect("a decoded request encodes");
        assert!(body.len() <= MAX_REQUEST);
        let again: Request = decode_frame(&framed(&body), MAX_REQUEST).expect("round trip");
        assert_eq!(again, req);
    }
    if let Ok(resp) = decode_frame::<Response>(data, MAX_RESPONSE) {
        let body = postcard::to_allocvec(&resp).expect("a decoded response encodes");
        assert!(body.len() <= MAX_RESPONSE);
        let again: Response = decode_frame(&framed(&body), MAX_RESPONSE).expect("round trip");
        assert_eq!(again, resp);
    }
});
