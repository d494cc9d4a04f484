//! The only code in the crate that needs `unsafe`: the `Push` impl the
//! `flatbuffers` builder requires, and the user and host names that tag
//! records carry.
#![allow(unsafe_code)]

pub(crate) mod flatbuffers;
pub(crate) mod user;
