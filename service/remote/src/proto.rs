//! Upstream spfs's gRPC protocol, generated at build time from its
//! `.proto` files (`proto/` beside this crate).

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("spfs");
