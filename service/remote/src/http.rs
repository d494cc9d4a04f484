//! Payloads over HTTP, as upstream's server serves them: `GET <url>` for a
//! download, `POST <url>` for an upload (answered with an encoded
//! `UploadResponse`). Plain `application/octet-stream` both ways.
//!
//! Downloads stream through a bounded channel (tokio's) into a blocking
//! reader, so the repository library hashes and stages them as they
//! arrive; a pause longer than the remote timeout ends the download with
//! an error.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::error::{Error, Result};
use crate::io::Io;

/// How many chunks the reader may fall behind the network by: a slow
/// writer holds the download back rather than filling memory.
const CHUNKS_AHEAD: usize = 16;

enum Chunk {
    Data(Bytes),
    End,
    Failed(Error),
}

/// A download in progress, read as a `Read`.
pub struct Download {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    current: Bytes,
    done: bool,
    /// The runtime the download's task runs on, kept while it is read.
    _io: Io,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.current = b,
                Some(Chunk::End) => self.done = true,
                Some(Chunk::Failed(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Err(std::io::Error::other("the download stopped")),
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        if let Some(into) = buf.get_mut(..n) {
            into.copy_from_slice(&chunk);
        }
        Ok(n)
    }
}

fn unreachable(remote: &str, reason: impl std::fmt::Display) -> Error {
    Error::Unreachable {
        remote: remote.to_owned(),
        reason: reason.to_string(),
    }
}

fn timed_out(remote: &str, what: &str, limit: Duration) -> Error {
    Error::Timeout {
        remote: remote.to_owned(),
        what: what.to_owned(),
        secs: limit.as_secs().max(1),
    }
}

/// Sends `request` on a new connection to its host.
async fn send<B>(
    remote: &str,
    request: hyper::Request<B>,
    limit: Duration,
) -> Result<hyper::Response<hyper::body::Incoming>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or_else(|| unreachable(remote, format!("payload URL {uri} names no host")))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    let stream = tokio::time::timeout(limit, connect)
        .await
        .map_err(|_| timed_out(remote, &format!("connecting to {host}:{port}"), limit))?
        .map_err(|e| unreachable(remote, format!("payload server {host}:{port}: {e}")))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| unreachable(remote, format!("payload server {host}:{port}: {e}")))?;
    tokio::spawn(conn);
    tokio::time::timeout(limit, sender.send_request(request))
        .await
        .map_err(|_| timed_out(remote, "waiting for the payload server", limit))?
        .map_err(|e| unreachable(remote, format!("payload server {host}:{port}: {e}")))
}

/// Starts downloading `url` on `io`; the returned reader yields its
/// bytes. Dropping it ends the download.
pub(crate) fn download(io: &Io, remote: &str, url: &str, limit: Duration) -> Result<Download> {
    let request = hyper::Request::get(url)
        .header(hyper::header::ACCEPT, "application/octet-stream")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| unreachable(remote, format!("payload URL {url}: {e}")))?;
    let response = io.block_on(send(remote, request, limit))?;
    if !response.status().is_success() {
        return Err(Error::Server {
            remote: remote.to_owned(),
            what: "send a payload".into(),
            message: format!("HTTP {}", response.status()),
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let remote_name = remote.to_owned();
    let mut body = response.into_body();
    io.handle().spawn(async move {
        loop {
            let next = tokio::time::timeout(limit, body.frame()).await;
            let chunk = match next {
                Err(_) => Chunk::Failed(timed_out(
                    &remote_name,
                    "in the middle of a download",
                    limit,
                )),
                Ok(None) => Chunk::End,
                Ok(Some(Err(e))) => Chunk::Failed(unreachable(
                    &remote_name,
                    format!("the download broke off: {e}"),
                )),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Chunk::Data(data),
                    Err(_) => continue,
                },
            };
            let last = !matches!(chunk, Chunk::Data(_));
            // Waits while the reader is behind; fails once it is dropped.
            if tx.send(chunk).await.is_err() || last {
                return;
            }
        }
    });
    Ok(Download {
        rx,
        current: Bytes::new(),
        done: false,
        _io: io.clone(),
    })
}

/// Uploads everything `data` yields to `url`; returns the digest and size
/// the server computed.
pub(crate) fn upload(
    io: &Io,
    remote: &str,
    url: &str,
    data: Box<dyn Read + Send + '_>,
    limit: Duration,
) -> Result<(spfs_repo::Digest, u64)> {
    // The body is fed from this thread: `data` need not be 'static.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let body = http_body_util::StreamBody::new(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }));
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .map_err(|e| unreachable(remote, format!("payload URL {url}: {e}")))?;
    let remote_name = remote.to_owned();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    io.handle().spawn(async move {
        let result = async {
            let response = send(&remote_name, request, limit).await?;
            let status = response.status();
            let body = tokio::time::timeout(limit, response.into_body().collect())
                .await
                .map_err(|_| timed_out(&remote_name, "waiting for an upload's answer", limit))?
                .map_err(|e| unreachable(&remote_name, format!("the upload broke off: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(Error::Server {
                    remote: remote_name.clone(),
                    what: "store a payload".into(),
                    message: format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                });
            }
            crate::grpc::decode_upload(&remote_name, &body)
        }
        .await;
        let _ = done_tx.send(result);
    });
    let mut data = data;
    let mut buf = vec![0u8; 256 * 1024];
    let mut read_error = None;
    loop {
        let chunk = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => Bytes::copy_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // The body ends short; the server's answer is moot.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                read_error = Some(e);
                break;
            }
        };
        if tx.blocking_send(Ok(chunk)).is_err() {
            break;
        }
    }
    drop(tx);
    let answer = done_rx
        .blocking_recv()
        .unwrap_or_else(|_| Err(unreachable(remote, "the upload task ended")));
    match read_error {
        Some(e) => Err(Error::Server {
            remote: remote.to_owned(),
            what: "receive a payload".into(),
            message: format!("reading it here failed: {e}"),
        }),
        None => answer,
    }
}
