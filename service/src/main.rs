//! The `spfs-fuse-macos` binary.

fn main() -> std::process::ExitCode {
    spfs_fuse_macos::cli::run()
}
