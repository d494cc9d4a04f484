//! Arbitrary text as an env spec: parsing must never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        spfs_repo::fuzz_env_spec(text);
    }
});
