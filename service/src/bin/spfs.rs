//! The `spfs` binary: upstream spfs's command line (see `spfs_cli`).

fn main() -> std::process::ExitCode {
    spfs_fuse_macos::spfs_cli::run()
}
