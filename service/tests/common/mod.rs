//! Helpers shared by the service's integration tests: the fixture helpers
//! of `spfs-repo`'s tests, and a real service to drive.
#![allow(dead_code)]

#[path = "../../repo/tests/common/mod.rs"]
mod fixtures;
pub mod server;
pub mod service;

pub use fixtures::*;
