//! The only code in the crate that needs `unsafe`: thin, documented
//! bridges to C and to APIs that declare it.

pub mod flatbuffers;
pub mod process;
pub mod user;
