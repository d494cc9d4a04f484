//! Generates the gRPC client from upstream spfs's own `.proto` files
//! (`proto/`, copied unchanged): the wire format is never hand-written.
//! `protox` compiles them in Rust, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/database.proto",
        "proto/repository.proto",
        "proto/payload.proto",
        "proto/tag.proto",
        "proto/types.proto",
    ];
    for f in files.iter().chain(["proto/error.proto"].iter()) {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .bytes(".spfs.Object.buffer")
        .compile_fds(descriptors)?;
    Ok(())
}
