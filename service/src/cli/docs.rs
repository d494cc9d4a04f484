//! Shell completions (bash, zsh, fish) and man pages for `spfs` and
//! `spfs-fuse-macos`, generated from their argument definitions with
//! clap's own crates; `bundle/make-app` puts them in `SPFS.app`.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

/// Writes, under `dir`, `completions/{bash,zsh,fish}/…` and
/// `man/man1/*.1` for both binaries (a page per subcommand too).
pub fn generate(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for cmd in [super::Cli::command(), crate::spfs_cli::command()] {
        let name = cmd.get_name().to_owned();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let out = dir.join("completions").join(shell.to_string());
            std::fs::create_dir_all(&out)?;
            written.push(clap_complete::generate_to(
                shell,
                &mut cmd.clone(),
                &name,
                &out,
            )?);
        }
        let man = dir.join("man").join("man1");
        std::fs::create_dir_all(&man)?;
        clap_mangen::generate_to(cmd, &man)?;
        for e in std::fs::read_dir(&man)? {
            let p = e?.path();
            if !written.contains(&p) {
                written.push(p);
            }
        }
    }
    written.sort();
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn completions_and_man_pages_cover_every_command() {
        let d = tempfile::tempdir().unwrap();
        let written = super::generate(d.path()).unwrap();
        let read = |rel: &str| std::fs::read_to_string(d.path().join(rel)).unwrap();
        let bash = read("completions/bash/spfs.bash");
        for sub in ["ls-tags", "tags", "info", "diff", "untag"] {
            assert!(bash.contains(sub), "bash completion lacks {sub}");
        }
        assert!(read("completions/zsh/_spfs-fuse-macos").contains("launchagent"));
        assert!(read("completions/fish/spfs.fish").contains("ls-tags"));
        for page in [
            "spfs.1",
            "spfs-ls-tags.1",
            "spfs-fuse-macos.1",
            "spfs-fuse-macos-run.1",
        ] {
            assert!(
                written.iter().any(|p| p.ends_with(page)),
                "no man page {page}: {written:?}"
            );
        }
        assert!(read("man/man1/spfs-diff.1").contains(".TH spfs-diff"));
    }
}
