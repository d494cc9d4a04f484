//! Arbitrary bytes as a tag file: decoding must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = spfs_repo::tags::decode_stream(data);
});
