//! Reading a vendor's answer under the cap: a larger one is refused as soon as its
//! `Content-Length` or its bytes say so, never read whole; a 2xx body must look like JSON.

use bytes::{Bytes, BytesMut};
use switchboard_core::{Error, ErrorKind, codes};

use crate::retry::timeout_error;

/// Why a vendor's answer could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The connection failed while the answer came in.
    Transport(reqwest::Error),
    /// The answer is larger than the cap.
    TooLarge,
}

/// Reads `response`'s body, at most `cap` bytes of it.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body =
        BytesMut::with_capacity(response.content_length().map_or(8 * 1024, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The error of an answer over the cap: not temporary, since the same read gets the same answer.
pub(crate) fn too_large(cap: usize) -> Error {
    Error::new(
        ErrorKind::UpstreamUnavailable,
        format!("the vendor's answer was larger than the gateway accepts ({cap} bytes)"),
    )
    .with_code(codes::UPSTREAM_RESPONSE_TOO_LARGE)
    .set_temporary(false)
}

/// The error of a 2xx answer whose body is not JSON (an HTML page, a body cut short).
pub(crate) fn not_json() -> Error {
    Error::new(
        ErrorKind::UpstreamUnavailable,
        "the vendor answered with a body the gateway could not read",
    )
}

/// Whether a vendor's body can be JSON: empty, or an object or array whose last byte closes
/// what its first opened, or a bare literal. A body cut short ends inside a value and fails; a
/// body that passes and still does not parse fails in the adapter as `upstream_unavailable`.
pub(crate) fn looks_like_json(body: &[u8]) -> bool {
    let body = body.trim_ascii();
    match (body.first(), body.last()) {
        (None, _) => true,
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')) => true,
        (Some(b'{' | b'['), _) => false,
        _ => serde_json::from_slice::<serde_json::Value>(body).is_ok(),
    }
}

/// A request that failed on the way. One that never connected was never sent (`unsent`); any
/// other may have reached the vendor.
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    if e.is_connect() {
        let error = if e.is_timeout() {
            timeout_error()
        } else {
            Error::new(
                ErrorKind::UpstreamUnavailable,
                "the vendor could not be reached",
            )
        };
        error.with_source(e).unsent()
    } else if e.is_timeout() {
        timeout_error().with_source(e)
    } else {
        Error::new(
            ErrorKind::UpstreamUnavailable,
            "the connection to the vendor failed",
        )
        .with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Answers one request on a port of its own with `answer`, written as it is.
    async fn answering(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds a port");
        let address = listener.local_addr().expect("has an address");
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accepts");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
        format!("http://{address}/")
    }

    async fn read(answer: &'static str, cap: usize) -> Result<Bytes, BodyError> {
        let url = answering(answer).await;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("builds a client");
        let response = client.get(url).send().await.expect("answers");
        read_capped(response, cap).await
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        let body = read(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n{\"a\": [1]}",
            10,
        )
        .await
        .expect("reads");
        assert_eq!(&body[..], b"{\"a\": [1]}");
    }

    #[tokio::test]
    async fn a_body_announced_over_the_cap_is_refused_unread() {
        // The body itself never comes: the announcement alone is enough.
        let refused = read(
            "HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\n",
            10,
        )
        .await;
        assert!(matches!(refused, Err(BodyError::TooLarge)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_streamed_body_is_refused_once_its_bytes_pass_the_cap() {
        let refused = read(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             6\r\n[1, 2,\r\n6\r\n 3, 4]\r\n0\r\n\r\n",
            10,
        )
        .await;
        assert!(matches!(refused, Err(BodyError::TooLarge)), "{refused:?}");
        let within = read(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             6\r\n[1, 2,\r\n6\r\n 3, 4]\r\n0\r\n\r\n",
            12,
        )
        .await
        .expect("reads");
        assert_eq!(&within[..], b"[1, 2, 3, 4]");
    }

    #[test]
    fn too_large_is_not_worth_retrying() {
        let error = too_large(10);
        assert_eq!(error.code(), codes::UPSTREAM_RESPONSE_TOO_LARGE);
        assert!(!error.is_temporary());
    }

    #[test]
    fn a_body_cut_short_or_not_json_is_refused() {
        for (body, json) in [
            (&b""[..], true),
            (b" {\"a\": [1, {\"b\": 2}]} \n", true),
            (b"[]", true),
            (b"null", true),
            (b"\"text\"", true),
            (b"42", true),
            (b"{\"conversations\": [ {\"id\": ", false),
            (b"[1, 2", false),
            (b"<html><body>Bad gateway</body></html>", false),
            (b"{\"a\": 1}]", false),
            (b"nul", false),
        ] {
            assert_eq!(
                looks_like_json(body),
                json,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
