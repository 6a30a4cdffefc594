//! A connection whose writes make no progress for too long is closed: a client that stops
//! reading (an event stream's, or a large answer's) cannot hold a connection slot and its
//! buffers forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `inner`, with writes that fail once they have been stuck for `timeout`.
#[derive(Debug)]
pub struct WriteStallTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled_since: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStallTimeout<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Duration) -> WriteStallTimeout<S> {
        WriteStallTimeout {
            inner,
            timeout,
            stalled_since: None,
        }
    }

    /// Passes a ready write result through (progress resets the clock); a pending one fails
    /// once the stall has lasted `timeout`.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled_since = None;
            return polled;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for too long",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStallTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStallTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.guard(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.guard(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.guard(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_stuck_for_the_timeout_fails_and_progress_resets_it() {
        // A pipe with room for 8 bytes whose other end reads nothing.
        let (client, mut server) = tokio::io::duplex(8);
        let mut guarded = WriteStallTimeout::new(client, Duration::from_secs(30));
        guarded.write_all(b"12345678").await.expect("fits");
        let error = guarded
            .write_all(b"more")
            .await
            .expect_err("nobody reads: the write fails after the timeout");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (client, mut reader) = tokio::io::duplex(8);
        let mut guarded = WriteStallTimeout::new(client, Duration::from_secs(30));
        let reading = tokio::spawn(async move {
            let mut sink = Vec::new();
            let mut buf = [0u8; 4];
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {
                    Ok(0) | Err(_) => return sink,
                    Ok(n) => sink.extend_from_slice(&buf[..n]),
                }
            }
        });
        // A slow reader (4 bytes every 20 s) keeps the writer moving: never 30 s without progress.
        guarded
            .write_all(&[7u8; 40])
            .await
            .expect("progress within the timeout");
        drop(guarded);
        assert_eq!(reading.await.expect("reader").len(), 40);
        drop(server.shutdown().await);
    }
}
