//! HTTP/1.1 message framing (RFC 9112 §6 and §9): where a request's body
//! ends, and whether the connection carries another request after the
//! answer. Pure: a parsed head in, a decision out.
//!
//! The session reads a head, asks [`of`] how long the body is, reads exactly
//! that many bytes, and hands head and body to the loop as one request. What
//! follows is the next request's head (pipelining, RFC 9112 §9.3), which
//! waits in the read buffer until this one is answered: answers go out in
//! the order the requests came.

use crate::handshake::{Refusal, Request};

/// How a request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Bytes of body after the head (`Content-Length`; 0 without one).
    pub body_len: usize,
    /// The connection may carry another request once this one is answered.
    pub keep_alive: bool,
    /// `Expect: 100-continue` (RFC 9110 §10.1.1): the client waits for a
    /// `100 Continue` before it sends the body (curl does, for bodies over
    /// 1 KiB; it gives up waiting after a second).
    pub expect_continue: bool,
}

/// The framing of a request, or the refusal for a body we cannot frame.
///
/// RFC 9112 §6.1: a request with `Transfer-Encoding` has a chunked body. We
/// do not decode chunked request bodies (no browser sends one for a short
/// POST), so such a request gets `411 Length Required`, which asks for a
/// `Content-Length` instead (RFC 9110 §15.5.12). §6.3: a `Content-Length`
/// that is not a number, or several that disagree, make the framing
/// unknowable: 400, and the connection closes.
pub fn of(request: &Request) -> Result<Framing, Refusal> {
    if request.header("Transfer-Encoding").is_some() {
        return Err(Refusal {
            status: 411,
            reason: "chunked request bodies are not accepted: send Content-Length",
        });
    }
    Ok(Framing {
        body_len: content_length(request)?,
        keep_alive: keep_alive(request),
        expect_continue: request.header_has_token("Expect", "100-continue"),
    })
}

/// `Content-Length`: one decimal number, possibly repeated identically
/// (RFC 9110 §8.6 allows `Content-Length: 5, 5`).
fn content_length(request: &Request) -> Result<usize, Refusal> {
    let bad = Refusal {
        status: 400,
        reason: "Content-Length must be one number",
    };
    let mut length = None;
    for value in request
        .header_values("Content-Length")
        .flat_map(|v| v.split(','))
    {
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad);
        }
        // Leading zeros and any size: a number too big for usize is refused,
        // never wrapped.
        let n: usize = value.parse().map_err(|_| bad)?;
        if length.is_some_and(|earlier| earlier != n) {
            return Err(bad);
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

/// RFC 9112 §9.3: HTTP/1.1 connections persist unless either side says
/// `Connection: close`; HTTP/1.0 ones close unless the client asks for
/// `keep-alive`. We keep the simpler half: 1.0 always closes.
pub fn keep_alive(request: &Request) -> bool {
    request.minor_version >= 1 && !request.header_has_token("Connection", "close")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(head: &str) -> Result<Framing, Refusal> {
        of(&Request::parse(head.as_bytes()).unwrap())
    }

    #[test]
    fn a_get_has_no_body_and_persists_in_http_1_1() {
        let f = framing("GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            f,
            Framing {
                body_len: 0,
                keep_alive: true,
                expect_continue: false
            }
        );
        assert!(
            !framing("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(!framing("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
    }

    #[test]
    fn content_length_gives_the_body_length() {
        let f = framing("POST /send HTTP/1.1\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!((f.body_len, f.expect_continue), (12, false));
        let expect = "POST /send HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-Continue\r\n\r\n";
        assert!(framing(expect).unwrap().expect_continue);
        let same = "POST /send HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(framing(same).unwrap().body_len, 5);
    }

    #[test]
    fn lengths_that_cannot_frame_a_body_are_refused() {
        for head in [
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(framing(head).unwrap_err().status, 400, "{head:?}");
        }
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(chunked).unwrap_err().status, 411);
    }
}
