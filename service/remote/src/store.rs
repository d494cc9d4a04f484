//! What a sync reads from and writes to: the local repository, an fs
//! remote, or upstream's server ([`crate::grpc`]). Objects travel as
//! object files (header and flatbuffers body, as upstream's gRPC sends
//! them); every write checks the digest before anything is stored.

use std::io::Read;

use spfs_repo::object::ReceivedError;
use spfs_repo::tags::Tag;
use spfs_repo::{Digest, EncodingFormat, FsRepository, Object, TagSpec};

use crate::Result;

/// One repository a sync reads from or writes to.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// How messages name it: `remote 'origin' (grpc://host:7737)`.
    fn describe(&self) -> &str;
    /// The newest record of tag `spec` (or the version it asks for);
    /// `None` if there is no such tag.
    fn resolve_tag(&self, spec: &TagSpec) -> Result<Option<Tag>>;
    /// True if it holds object `d`.
    fn has_object(&self, d: &Digest) -> Result<bool>;
    /// Object `d` as an object file with a flatbuffers body.
    fn read_object(&self, d: &Digest) -> Result<Vec<u8>>;
    /// Stores object file `bytes` as `d`, if they decode and hash to `d`.
    fn write_object(&self, d: &Digest, bytes: &[u8]) -> Result<Object>;
    /// True if it holds payload `d`.
    fn has_payload(&self, d: &Digest) -> Result<bool>;
    /// Payload `d`'s bytes.
    fn open_payload(&self, d: &Digest) -> Result<Box<dyn Read + Send>>;
    /// Stores a payload read from `data` as `d`, only if it hashes to `d`
    /// (`from` names where it came from, for the error); returns its size.
    fn write_payload(&self, d: &Digest, data: Box<dyn Read + Send + '_>, from: &str)
        -> Result<u64>;
    /// Adds tag record `tag` as it is (see [`FsRepository::insert_tag`]).
    fn insert_tag(&self, tag: &Tag) -> Result<bool>;
    /// The repository on this machine's disk, if that is what it is: a
    /// sync into it writes many payloads in batches made durable at once.
    fn local_repo(&self) -> Option<&FsRepository> {
        None
    }
    /// [`Store::write_object`], replacing a copy already here (a resync);
    /// a store that cannot replace writes as usual.
    fn rewrite_object(&self, d: &Digest, bytes: &[u8]) -> Result<Object> {
        self.write_object(d, bytes)
    }
    /// [`Store::write_payload`], replacing a copy already here (a resync);
    /// a store that cannot replace writes as usual.
    fn rewrite_payload(
        &self,
        d: &Digest,
        data: Box<dyn Read + Send + '_>,
        from: &str,
    ) -> Result<u64> {
        self.write_payload(d, data, from)
    }
}

/// A repository on a file system: the local one, or a `file://` remote.
#[derive(Debug)]
pub struct LocalStore {
    repo: FsRepository,
    name: String,
}

impl LocalStore {
    /// The local repository `repo`.
    pub fn local(repo: FsRepository) -> Self {
        let name = format!("the local repository {}", repo.root().display());
        Self { repo, name }
    }

    /// `repo` as a remote called `name` in messages.
    pub fn named(repo: FsRepository, name: String) -> Self {
        Self { repo, name }
    }

    /// The repository.
    pub fn repo(&self) -> &FsRepository {
        &self.repo
    }
}

impl Store for LocalStore {
    fn describe(&self) -> &str {
        &self.name
    }

    fn resolve_tag(&self, spec: &TagSpec) -> Result<Option<Tag>> {
        Ok(self.repo.resolve_tag(spec)?)
    }

    fn has_object(&self, d: &Digest) -> Result<bool> {
        Ok(self.repo.has_object(d))
    }

    fn read_object(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.repo.object_path(d);
        let bytes = match spfs_shared::bounded::read(&path, spfs_repo::storage::MAX_OBJECT_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(crate::Error::UnknownObject {
                    digest: *d,
                    remote: self.name.clone(),
                })
            }
            Err(e) => return Err(spfs_repo::Error::io("read object", &path)(e).into()),
        };
        let (header, object) =
            Object::decode(&bytes).map_err(|reason| spfs_repo::Error::CorruptObject {
                path: path.clone(),
                reason,
            })?;
        if header.encoding == EncodingFormat::FlatBuffers {
            return Ok(bytes);
        }
        // Upstream's wire format is flatbuffers whatever the repository
        // stores; the digest does not depend on the encoding.
        Ok(object.encode(header.strategy, EncodingFormat::FlatBuffers)?)
    }

    fn write_object(&self, d: &Digest, bytes: &[u8]) -> Result<Object> {
        Ok(self.repo.import_object(d, bytes, &self.name)?)
    }

    fn has_payload(&self, d: &Digest) -> Result<bool> {
        Ok(self.repo.has_payload(d))
    }

    fn open_payload(&self, d: &Digest) -> Result<Box<dyn Read + Send>> {
        let path = self.repo.payload_path(d);
        match std::fs::File::open(&path) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(crate::Error::UnknownPayload {
                    digest: *d,
                    remote: self.name.clone(),
                })
            }
            Err(e) => Err(spfs_repo::Error::io("open payload", &path)(e).into()),
        }
    }

    fn write_payload(
        &self,
        d: &Digest,
        data: Box<dyn Read + Send + '_>,
        from: &str,
    ) -> Result<u64> {
        Ok(self.repo.import_payload(d, data, from)?)
    }

    fn insert_tag(&self, tag: &Tag) -> Result<bool> {
        Ok(self.repo.insert_tag(tag)?)
    }

    fn local_repo(&self) -> Option<&FsRepository> {
        Some(&self.repo)
    }

    fn rewrite_object(&self, d: &Digest, bytes: &[u8]) -> Result<Object> {
        Ok(self.repo.reimport_object(d, bytes, &self.name)?)
    }

    fn rewrite_payload(
        &self,
        d: &Digest,
        data: Box<dyn Read + Send + '_>,
        from: &str,
    ) -> Result<u64> {
        Ok(self.repo.reimport_payload(d, data, from)?)
    }
}

/// Decodes object file `bytes` received from `from` as object `d` (see
/// [`Object::decode_received`]): the bytes to store and the object.
pub(crate) fn decode_wire(bytes: &[u8], d: &Digest, from: &str) -> Result<(Vec<u8>, Object)> {
    Object::decode_received(bytes, d).map_err(|e| {
        match e {
            ReceivedError::Mismatch(actual) => {
                spfs_repo::Error::mismatch("object", *d, actual, from.to_owned())
            }
            ReceivedError::Undecodable(reason) => {
                spfs_repo::Error::Decode(format!("object {d} from {from}: {reason}"))
            }
        }
        .into()
    })
}
