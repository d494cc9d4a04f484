//! Arbitrary bytes as an object file: decoding, digesting and (for
//! manifests) building a view must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    spfs_repo::fuzz_object(data);
});
