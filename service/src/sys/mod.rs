//! The only code in the crate that needs `unsafe`: thin, documented
//! bridges to C and to APIs that declare it.

pub mod daemon;
pub mod fd;
pub mod file;
pub mod mount;
pub mod peer;
pub mod process;
pub mod user;
