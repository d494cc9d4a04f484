//! The only code in the crate that needs `unsafe`: the `Push` impl the
//! `flatbuffers` builder requires, the user and host names that tag
//! records carry, the locks on staged files, and `syncfs`.
#![allow(unsafe_code)]

pub(crate) mod flatbuffers;
pub(crate) mod lock;
pub(crate) mod sync;
pub(crate) mod user;
