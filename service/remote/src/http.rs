//! Payloads over HTTP, as upstream's server serves them: `GET <url>` for a
//! download, `POST <url>` for an upload (answered with an encoded
//! `UploadResponse`). Plain `application/octet-stream` both ways.
//!
//! Downloads stream through a bounded channel into a blocking reader, so
//! the repository library hashes and stages them as they arrive; a pause
//! longer than the remote timeout ends the download with an error.

use std::io::Read;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::error::{Error, Result};
use crate::grpc::runtime;

enum Chunk {
    Data(Bytes),
    End,
    Failed(Error),
}

/// A download in progress, read as a `Read`.
pub struct Download {
    rx: mpsc::Receiver<Chunk>,
    /// One permit per chunk the reader may fall behind by: the task takes
    /// one before each chunk it sends, the reader gives it back.
    room: Arc<tokio::sync::Semaphore>,
    current: Bytes,
    done: bool,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            let chunk = self.rx.recv();
            self.room.add_permits(1);
            match chunk {
                Ok(Chunk::Data(b)) => self.current = b,
                Ok(Chunk::End) => self.done = true,
                Ok(Chunk::Failed(e)) => return Err(std::io::Error::other(e.to_string())),
                Err(_) => return Err(std::io::Error::other("the download stopped")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        // A task waiting for room ends instead of waiting forever.
        self.room.close();
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

/// Starts downloading `url`; the returned reader yields its bytes.
pub fn download(remote: &str, url: &str, limit: Duration) -> Result<Download> {
    let request = hyper::Request::get(url)
        .header(hyper::header::ACCEPT, "application/octet-stream")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| unreachable(remote, format!("payload URL {url}: {e}")))?;
    // A few chunks in flight: the writer keeps up with the network, and a
    // slow writer holds the download back rather than filling memory.
    let (tx, rx) = mpsc::channel();
    let room = Arc::new(tokio::sync::Semaphore::new(16));
    let task_room = room.clone();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
    let remote_name = remote.to_owned();
    runtime(remote)?.spawn(async move {
        let response = match send(&remote_name, request, limit).await {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        if !response.status().is_success() {
            let _ = ready_tx.send(Err(Error::Server {
                remote: remote_name.clone(),
                what: "send a payload".into(),
                message: format!("HTTP {}", response.status()),
            }));
            return;
        }
        let _ = ready_tx.send(Ok(()));
        let mut body = response.into_body();
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
            match task_room.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return,
            }
            if tx.send(chunk).is_err() || last {
                return;
            }
        }
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Download {
            rx,
            room,
            current: Bytes::new(),
            done: false,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(unreachable(remote, "the download task ended")),
    }
}

/// Uploads everything `data` yields to `url`; returns the digest and size
/// the server computed.
pub fn upload(
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
    let (done_tx, done_rx) = mpsc::channel();
    runtime(remote)?.spawn(async move {
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
            Ok(n) => Bytes::copy_from_slice(&buf[..n]),
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
        .recv()
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
