//! The client of upstream's `spfs server`: objects and tags over gRPC
//! (the client generated from upstream's `.proto` files), payloads over
//! HTTP at the locations the server names ([`crate::http`]).
//!
//! Callers are plain threads (the CLI, FUSE request threads, the
//! service's blocking pool); each call runs on the remote's own runtime
//! ([`crate::io`]) and waits for its answer, bounded by
//! [`crate::timeout`].

use std::io::Read;
use std::time::Duration;

use prost::Message;
use spfs_repo::listing::TagEntry;
use spfs_repo::tags::Tag;
use spfs_repo::{Digest, Object, TagSpec};
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use crate::io::Io;
use crate::proto;
use crate::proto::database_service_client::DatabaseServiceClient;
use crate::proto::payload_service_client::PayloadServiceClient;
use crate::proto::tag_service_client::TagServiceClient;
use crate::store::Store;

/// Upstream's server at one address.
#[derive(Debug)]
pub struct GrpcRemote {
    name: String,
    channel: Channel,
    limit: Duration,
    io: Io,
}

/// Objects can be large manifests: no smaller limit than the server's.
const MAX_MESSAGE: usize = 1 << 30;

impl GrpcRemote {
    /// A client of the server at `address` (`grpc://host:port`), called
    /// `name` in the config. Connects on first use.
    pub fn connect(name: &str, address: &str) -> Result<Self> {
        let describe = format!("remote '{name}' ({address})");
        let http = address
            .strip_prefix("grpc://")
            .map(|rest| format!("http://{rest}"))
            .ok_or_else(|| Error::Unsupported {
                remote: name.to_owned(),
                address: address.to_owned(),
            })?;
        let limit = crate::timeout();
        let endpoint = Endpoint::from_shared(http).map_err(|e| Error::Unreachable {
            remote: describe.clone(),
            reason: format!("not a valid address: {e}"),
        })?;
        let io = Io::new(&describe)?;
        let channel = {
            let _inside = io.handle().enter();
            endpoint
                .connect_timeout(limit)
                .timeout(limit)
                .connect_lazy()
        };
        Ok(Self {
            name: describe,
            channel,
            limit,
            io,
        })
    }

    fn database(&self) -> DatabaseServiceClient<Channel> {
        DatabaseServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    fn tags(&self) -> TagServiceClient<Channel> {
        TagServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    fn payloads(&self) -> PayloadServiceClient<Channel> {
        PayloadServiceClient::new(self.channel.clone())
    }

    /// Runs `call` on the runtime and waits for it, at most the timeout.
    fn call<T, F>(&self, what: &str, call: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let limit = self.limit;
        // The timer is made inside the runtime, which drives it.
        match self
            .io
            .block_on(async { tokio::time::timeout(limit, call).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(status)) => Err(self.status_error(what, status)),
            Err(_) => Err(Error::Timeout {
                remote: self.name.clone(),
                what: what.to_owned(),
                secs: limit.as_secs().max(1),
            }),
        }
    }

    fn status_error(&self, what: &str, status: tonic::Status) -> Error {
        use tonic::Code;
        match status.code() {
            Code::Unavailable => Error::Unreachable {
                remote: self.name.clone(),
                reason: connection_reason(&status),
            },
            // A transport failure tonic could not classify.
            Code::Unknown if is_connection_error(&status) => Error::Unreachable {
                remote: self.name.clone(),
                reason: connection_reason(&status),
            },
            Code::DeadlineExceeded | Code::Cancelled => Error::Timeout {
                remote: self.name.clone(),
                what: what.to_owned(),
                secs: self.limit.as_secs().max(1),
            },
            _ => Error::Server {
                remote: self.name.clone(),
                what: what.to_owned(),
                message: status.message().to_owned(),
            },
        }
    }

    fn rpc_error(&self, what: &str, error: Option<proto::Error>) -> Error {
        use proto::error::Kind;
        let message = match error.and_then(|e| e.kind) {
            Some(Kind::Other(m)) => m,
            Some(Kind::UnknownObject(e)) => format!("unknown object {}", e.message),
            Some(Kind::UnknownReference(e)) => format!("unknown reference {}", e.message),
            Some(Kind::AmbiguousReference(e)) => format!("ambiguous reference {}", e.message),
            Some(Kind::InvalidReference(e)) => format!("invalid reference {}", e.message),
            None => "no reason given".to_owned(),
        };
        Error::Server {
            remote: self.name.clone(),
            what: what.to_owned(),
            message,
        }
    }

    fn payload_url(&self, d: &Digest) -> Result<String> {
        let mut client = self.payloads();
        let request = proto::OpenPayloadRequest {
            digest: Some(digest(d)),
        };
        let what = format!("locate payload {d}");
        let response = self.call(&what, async move {
            client.open_payload(request).await.map(|r| r.into_inner())
        })?;
        use proto::open_payload_response::Result as R;
        match response.result {
            Some(R::Ok(option)) => {
                option
                    .locations
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Server {
                        remote: self.name.clone(),
                        what,
                        message: "no download location given".into(),
                    })
            }
            Some(R::Error(e)) if is_unknown(&e) => Err(Error::UnknownPayload {
                digest: *d,
                remote: self.name.clone(),
            }),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }
}

/// Tag reads for the command line's `-r` (upstream's `ls-tags`, `tags`,
/// `log`, `search` read a server's tags in place).
impl GrpcRemote {
    /// The entries of tag directory `path` (`""`: the top), as the
    /// server lists them.
    pub fn ls_tags(&self, path: &str) -> Result<Vec<TagEntry>> {
        let mut client = self.tags();
        let request = proto::LsTagsRequest {
            path: path.to_owned(),
            namespace: String::new(),
        };
        let what = format!("list tags under '{path}'");
        let response = self.call(&what, async move {
            client.ls_tags(request).await.map(|r| r.into_inner())
        })?;
        use proto::ls_tags_response::entry::Kind;
        use proto::ls_tags_response::Result as R;
        match response.result {
            Some(R::Ok(list)) => Ok(list
                .entries
                .into_iter()
                .filter_map(|e| match e.kind? {
                    Kind::Folder(name) => Some(TagEntry::Folder(name)),
                    Kind::Tag(name) => Some(TagEntry::Tag(name)),
                    // Namespaces are not tags of this one.
                    Kind::Namespace(_) => None,
                })
                .collect()),
            Some(R::Error(e)) if is_unknown(&e) => Ok(Vec::new()),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }

    /// Every tag stream the server has.
    pub fn tag_specs(&self) -> Result<Vec<TagSpec>> {
        let mut client = self.tags();
        let request = proto::IterTagSpecsRequest {
            namespace: String::new(),
        };
        let what = "list every tag";
        let response = self.call(what, async move {
            client.iter_tag_specs(request).await.map(|r| r.into_inner())
        })?;
        use proto::iter_tag_specs_response::Result as R;
        match response.result {
            Some(R::Ok(list)) => list
                .tag_specs
                .iter()
                .map(|t| {
                    TagSpec::parse(t).map_err(|e| Error::Server {
                        remote: self.name.clone(),
                        what: what.to_owned(),
                        message: format!("it sent a tag that is not one: {e}"),
                    })
                })
                .collect(),
            Some(R::Error(e)) => Err(self.rpc_error(what, Some(e))),
            None => Err(self.rpc_error(what, None)),
        }
    }

    /// The records of tag stream `spec`, oldest first (as a repository on
    /// disk reads them); `None` if the server has no such tag.
    pub fn read_tag_stream(&self, spec: &TagSpec) -> Result<Option<Vec<Tag>>> {
        let mut client = self.tags();
        let request = proto::ReadTagRequest {
            tag_spec: spec.with_version(0).to_string(),
            namespace: String::new(),
        };
        let what = format!("read tag {spec}");
        let response = self.call(&what, async move {
            client.read_tag(request).await.map(|r| r.into_inner())
        })?;
        use proto::read_tag_response::Result as R;
        match response.result {
            Some(R::Ok(list)) => {
                let mut tags = list
                    .tags
                    .into_iter()
                    .map(|t| self.tag(t))
                    .collect::<Result<Vec<_>>>()?;
                // The server sends the newest first.
                tags.reverse();
                Ok(Some(tags))
            }
            Some(R::Error(e)) if is_unknown(&e) => Ok(None),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }

    /// A tag record as the server sent it, in the form tag files hold.
    fn tag(&self, tag: proto::Tag) -> Result<Tag> {
        Ok(Tag {
            org: tag.org,
            name: tag.name,
            target: from_proto_digest(&self.name, tag.target)?,
            parent: from_proto_digest(&self.name, tag.parent)?,
            user: tag.user,
            time: file_time(&self.name, tag.time)?,
        })
    }
}

fn is_connection_error(status: &tonic::Status) -> bool {
    let text = format!("{status:?}");
    text.contains("onnect") || text.contains("transport")
}

/// The innermost cause of a transport failure ("Connection refused").
fn connection_reason(status: &tonic::Status) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut last = status.message().to_owned();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

fn is_unknown(e: &proto::Error) -> bool {
    matches!(
        e.kind,
        Some(proto::error::Kind::UnknownObject(_)) | Some(proto::error::Kind::UnknownReference(_))
    )
}

fn digest(d: &Digest) -> proto::Digest {
    proto::Digest {
        bytes: d.as_bytes().to_vec(),
    }
}

fn from_proto_digest(remote: &str, d: Option<proto::Digest>) -> Result<Digest> {
    d.and_then(|d| Digest::from_slice(&d.bytes))
        .ok_or_else(|| Error::Server {
            remote: remote.to_owned(),
            what: "send a digest".into(),
            message: "a digest of the wrong length, or none".into(),
        })
}

/// A tag time as the server sends it (chrono's display form, "2026-11-23
/// 20:40:54.490741 UTC") in the RFC 3339 form tag files hold.
fn file_time(remote: &str, time: Option<proto::DateTime>) -> Result<String> {
    let text = time.map(|t| t.iso_timestamp).unwrap_or_default();
    let parsed = chrono::DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| text.parse::<chrono::DateTime<chrono::Utc>>());
    match parsed {
        Ok(t) => Ok(t.to_rfc3339()),
        Err(e) => Err(Error::Server {
            remote: remote.to_owned(),
            what: "send a tag".into(),
            message: format!("a tag time '{text}' that is not a time: {e}"),
        }),
    }
}

/// A tag file's RFC 3339 time in the form upstream's server sends and
/// parses.
fn wire_time(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.with_timezone(&chrono::Utc).to_string())
        .unwrap_or_else(|_| time.to_owned())
}

/// Decodes the body of an HTTP upload's answer.
pub(crate) fn decode_upload(remote: &str, body: &[u8]) -> Result<(Digest, u64)> {
    use proto::write_payload_response::upload_response::Result as R;
    let bad = |message: String| Error::Server {
        remote: remote.to_owned(),
        what: "store a payload".into(),
        message,
    };
    let answer = proto::write_payload_response::UploadResponse::decode(body)
        .map_err(|e| bad(format!("an answer that does not decode: {e}")))?;
    match answer.result {
        Some(R::Ok(ok)) => Ok((from_proto_digest(remote, ok.digest)?, ok.size)),
        Some(R::Error(e)) => Err(bad(format!("{:?}", e.kind))),
        None => Err(bad("an empty answer".into())),
    }
}

impl Store for GrpcRemote {
    fn describe(&self) -> &str {
        &self.name
    }

    fn resolve_tag(&self, spec: &TagSpec) -> Result<Option<Tag>> {
        let mut client = self.tags();
        let request = proto::ResolveTagRequest {
            tag_spec: spec.to_string(),
            namespace: String::new(),
        };
        let what = format!("resolve tag {spec}");
        let response = self.call(&what, async move {
            client.resolve_tag(request).await.map(|r| r.into_inner())
        })?;
        use proto::resolve_tag_response::Result as R;
        match response.result {
            Some(R::Ok(tag)) => Ok(Some(self.tag(tag)?)),
            Some(R::Error(e)) if is_unknown(&e) => Ok(None),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }

    fn has_object(&self, d: &Digest) -> Result<bool> {
        let mut client = self.database();
        let request = proto::HasObjectRequest {
            digest: Some(digest(d)),
        };
        self.call(&format!("check for object {d}"), async move {
            client
                .has_object(request)
                .await
                .map(|r| r.into_inner().exists)
        })
    }

    fn read_object(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut client = self.database();
        let request = proto::ReadObjectRequest {
            digest: Some(digest(d)),
        };
        let what = format!("send object {d}");
        let response = self.call(&what, async move {
            client.read_object(request).await.map(|r| r.into_inner())
        })?;
        use proto::read_object_response::Result as R;
        match response.result {
            Some(R::Ok(proto::Object {
                kind: Some(proto::object::Kind::Buffer(bytes)),
            })) => Ok(bytes.to_vec()),
            Some(R::Ok(other)) => Err(Error::Server {
                remote: self.name.clone(),
                what,
                message: format!(
                    "an object in the old per-field form ({:?}), which this tool does not read: upgrade the server to spfs 0.40 or later",
                    other.kind.map(|k| std::mem::discriminant(&k))
                ),
            }),
            Some(R::Error(e)) if is_unknown(&e) => Err(Error::UnknownObject {
                digest: *d,
                remote: self.name.clone(),
            }),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }

    fn write_object(&self, d: &Digest, bytes: &[u8]) -> Result<Object> {
        // Checked here too: a server stores what it is sent.
        let (wire, object) = crate::store::decode_wire(bytes, d, "the local repository")?;
        let mut client = self.database();
        let request = proto::WriteObjectRequest {
            object: Some(proto::Object {
                kind: Some(proto::object::Kind::Buffer(wire.into())),
            }),
        };
        let what = format!("store object {d}");
        let response = self.call(&what, async move {
            client.write_object(request).await.map(|r| r.into_inner())
        })?;
        use proto::write_object_response::Result as R;
        match response.result {
            Some(R::Ok(_)) => Ok(object),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }

    fn has_payload(&self, d: &Digest) -> Result<bool> {
        let mut client = self.payloads();
        let request = proto::HasPayloadRequest {
            digest: Some(digest(d)),
        };
        self.call(&format!("check for payload {d}"), async move {
            client
                .has_payload(request)
                .await
                .map(|r| r.into_inner().exists)
        })
    }

    fn open_payload(&self, d: &Digest) -> Result<Box<dyn Read + Send>> {
        let url = self.payload_url(d)?;
        Ok(Box::new(crate::http::download(
            &self.io, &self.name, &url, self.limit,
        )?))
    }

    fn write_payload(
        &self,
        d: &Digest,
        data: Box<dyn Read + Send + '_>,
        _from: &str,
    ) -> Result<u64> {
        let mut client = self.payloads();
        let what = format!("accept payload {d}");
        let response = self.call(&what, async move {
            client
                .write_payload(proto::WritePayloadRequest {})
                .await
                .map(|r| r.into_inner())
        })?;
        use proto::write_payload_response::Result as R;
        let url = match response.result {
            Some(R::Ok(option)) => option.url,
            Some(R::Error(e)) => return Err(self.rpc_error(&what, Some(e))),
            None => return Err(self.rpc_error(&what, None)),
        };
        let (stored, size) = crate::http::upload(&self.io, &self.name, &url, data, self.limit)?;
        if stored != *d {
            // The server stored what it received under its own digest;
            // it is not the payload the manifest names.
            return Err(spfs_repo::Error::mismatch(
                "payload",
                *d,
                stored,
                format!("the upload to {}", self.name),
            )
            .into());
        }
        Ok(size)
    }

    fn insert_tag(&self, tag: &Tag) -> Result<bool> {
        let mut client = self.tags();
        let request = proto::InsertTagRequest {
            tag: Some(proto::Tag {
                org: tag.org.clone(),
                name: tag.name.clone(),
                target: Some(digest(&tag.target)),
                parent: Some(digest(&tag.parent)),
                user: tag.user.clone(),
                time: Some(proto::DateTime {
                    iso_timestamp: wire_time(&tag.time),
                }),
            }),
            namespace: String::new(),
        };
        let what = format!("store tag {}/{}", tag.org, tag.name);
        let response = self.call(&what, async move {
            client.insert_tag(request).await.map(|r| r.into_inner())
        })?;
        use proto::insert_tag_response::Result as R;
        match response.result {
            Some(R::Ok(_)) => Ok(true),
            Some(R::Error(e)) => Err(self.rpc_error(&what, Some(e))),
            None => Err(self.rpc_error(&what, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_times_travel_in_the_servers_form_and_are_stored_in_the_files_form() {
        let sent = proto::DateTime {
            iso_timestamp: "2026-11-23 20:40:54.490741 UTC".into(),
        };
        let stored = file_time("r", Some(sent)).unwrap();
        assert_eq!(stored, "2026-11-23T20:40:54.490741+00:00");
        assert_eq!(wire_time(&stored), "2026-11-23 20:40:54.490741 UTC");
        // Another offset is converted to UTC on the wire.
        assert_eq!(
            wire_time("2026-11-23T22:40:54+02:00"),
            "2026-11-23 20:40:54 UTC"
        );
        let rfc = proto::DateTime {
            iso_timestamp: "2026-11-23T20:40:54+00:00".into(),
        };
        assert_eq!(
            file_time("r", Some(rfc)).unwrap(),
            "2026-11-23T20:40:54+00:00"
        );
        let err = file_time("remote x", None).unwrap_err().to_string();
        assert!(
            err.contains("remote x") && err.contains("not a time"),
            "{err}"
        );
    }

    #[test]
    fn addresses_other_than_grpc_are_refused_with_the_remote_named() {
        let err = GrpcRemote::connect("studio", "http://h:1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("studio") && err.contains("grpc://"), "{err}");
        // A lazy connection: nothing is contacted until it is used.
        GrpcRemote::connect("studio", "grpc://127.0.0.1:1").unwrap();
    }
}
