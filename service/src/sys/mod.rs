//! The only code in the crate that needs `unsafe`: thin, documented
//! bridges to C and to APIs that declare it. Every `unsafe` block says
//! why it is sound (`SAFETY:`).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub mod daemon;
pub mod dir;
pub mod fd;
pub mod lock;
pub mod mount;
pub mod peer;
pub mod process;
pub mod user;
