//! `ls-tags`, `tags`, `log`, `search`: tags as upstream lists them, from
//! a repository on disk or, with `-r`, upstream's server.

use crate::repo::config::RemoteLocation;
use crate::repo::listing::TagEntry;
use crate::repo::tags::Tag;
use crate::repo::{Config, FsRepository, TagSpec};
use spfs_remote::grpc::GrpcRemote;

use super::format;
use super::{CmdError, CmdResult, Repositories};

/// Where tags are read: a repository on disk (the local one, or a
/// `file://` remote), or upstream's server.
pub(crate) enum TagSource {
    /// A repository on disk.
    Local(FsRepository),
    /// Upstream's `spfs server` (`grpc://`).
    Server(GrpcRemote),
}

impl TagSource {
    /// The source remote `name` at `location` names.
    pub(crate) fn remote(name: &str, location: &RemoteLocation) -> Result<Self, CmdError> {
        match location {
            RemoteLocation::Fs {
                path,
                tag_namespace,
            } => Ok(TagSource::Local(
                FsRepository::open(path)?.with_tag_namespace(tag_namespace.clone()),
            )),
            RemoteLocation::Grpc { address } => {
                Ok(TagSource::Server(GrpcRemote::connect(name, address)?))
            }
            RemoteLocation::Unsupported(kind) => Err(format!(
                "remote '{name}' is a {kind} repository, which this spfs cannot read"
            )
            .into()),
        }
    }

    fn ls_tags(&self, path: &str) -> Result<Vec<TagEntry>, CmdError> {
        Ok(match self {
            TagSource::Local(repo) => repo.ls_tags(path)?,
            TagSource::Server(server) => server.ls_tags(path)?,
        })
    }

    fn tag_specs(&self) -> Result<Vec<TagSpec>, CmdError> {
        Ok(match self {
            TagSource::Local(repo) => repo.tag_specs()?,
            TagSource::Server(server) => server.tag_specs()?,
        })
    }

    /// The records of tag stream `spec`, oldest first.
    fn read_tag_stream(&self, spec: &TagSpec) -> Result<Option<Vec<Tag>>, CmdError> {
        Ok(match self {
            TagSource::Local(repo) => repo.read_tag_stream(spec)?,
            TagSource::Server(server) => server.read_tag_stream(spec)?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct LsTagsArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Walk the tag tree recursively, listing only tags.
    #[arg(long)]
    recursive: bool,
    /// The tag directory to list.
    #[arg(default_value = "/")]
    path: String,
}

/// `ls-tags [--recursive] [PATH]`: one entry a line (`name/` for a
/// directory), names relative to PATH — except at the top, which upstream
/// shows with a leading `/`.
pub(crate) fn ls_tags(args: LsTagsArgs) -> CmdResult {
    let repo = args.repos.open_any()?;
    let root: Vec<&str> = args.path.split('/').filter(|p| !p.is_empty()).collect();
    let lead = if root.is_empty() { "/" } else { "" };
    let mut names = Vec::new();
    let mut dirs = std::collections::VecDeque::from([Vec::<String>::new()]);
    while let Some(rel) = dirs.pop_front() {
        let mut full: Vec<&str> = root.clone();
        full.extend(rel.iter().map(String::as_str));
        for entry in repo.ls_tags(&full.join("/"))? {
            let mut path = rel.clone();
            match entry {
                TagEntry::Folder(name) if args.recursive => {
                    path.push(name);
                    dirs.push_back(path);
                    continue;
                }
                TagEntry::Folder(name) => path.push(format!("{name}/")),
                TagEntry::Tag(name) => path.push(name),
            }
            names.push(format!("{lead}{}", path.join("/")));
        }
    }
    names.sort();
    for name in names {
        println!("{name}");
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagsArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Show each tag's target digest.
    #[arg(long)]
    target: bool,
    /// Show each tag's target, shortened.
    #[arg(long)]
    short: bool,
}

/// `tags [--short | --target]`: every tag, `org/name[ -> TARGET]`.
pub(crate) fn tags(args: TagsArgs) -> CmdResult {
    let repo = args.repos.open_any()?;
    for spec in repo.tag_specs()? {
        let Some(tag) = repo.read_tag_stream(&spec)?.and_then(|s| s.last().cloned()) else {
            continue;
        };
        let suffix = if args.short {
            format!(" -> {}", format::short(&tag.target))
        } else if args.target {
            format!(" -> {}", tag.target)
        } else {
            String::new()
        };
        println!("{spec}{suffix}");
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogArgs {
    #[command(flatten)]
    repos: Repositories,
    /// The tag whose history to show.
    tag: String,
}

/// `log TAG`: the tag's versions, newest first:
/// `TARGET10 org/name~N user@host local-time`.
pub(crate) fn log(args: LogArgs) -> CmdResult {
    let repo = args.repos.open_any()?;
    let spec = TagSpec::parse(&args.tag)?;
    let stream = repo
        .read_tag_stream(&spec.with_version(0))?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unknown(&args.tag))?;
    for (version, tag) in stream.iter().rev().enumerate() {
        println!(
            "{} {} {} {}",
            &tag.target.to_string()[..10],
            spec.with_version(version as u64),
            tag.user,
            format::local_time(&tag.time)
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Part of a tag's path.
    #[arg(value_name = "TERM")]
    term: String,
}

/// `search TERM`: the tags that contain TERM, in the local repository and
/// then each remote of the config. `-r` is accepted, as upstream's 0.44
/// accepts it, and changes nothing: every remote is searched anyway
/// (upstream's order, so each tag is printed once). A remote that cannot
/// be opened or reached is skipped with a warning, as upstream skips one
/// it cannot connect to.
pub(crate) fn search(args: SearchArgs) -> CmdResult {
    let _searched_anyway = args.repos;
    let mut repos = vec![Repositories { remote: None }.open_any()?];
    let config = Config::load()?;
    for remote in &config.remotes {
        match TagSource::remote(&remote.name, &remote.location) {
            Ok(r) => repos.push(r),
            Err(e) => {
                tracing::warn!(remote = %remote.name, error = %e.message, "failed to load remote repository")
            }
        }
    }
    for repo in repos {
        let specs = match (&repo, repo.tag_specs()) {
            (_, Ok(specs)) => specs,
            (TagSource::Server(server), Err(e)) => {
                tracing::warn!(remote = %spfs_remote::Store::describe(server), error = %e.message, "failed to load remote repository");
                continue;
            }
            (TagSource::Local(_), Err(e)) => return Err(e),
        };
        for spec in specs {
            let text = spec.to_string();
            if text.contains(&args.term) {
                println!("{text}");
            }
        }
    }
    Ok(())
}

/// Upstream's error for a reference that names nothing.
pub(crate) fn unknown(reference: &str) -> CmdError {
    CmdError {
        diagnostic: None,
        causes: Vec::new(),
        logged: false,
        message: format!(
            "Unknown Reference: {}",
            spfs_shared::display::quoted(reference)
        ),
        status: 1,
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct TagArgs {
    #[command(flatten)]
    repos: Repositories,
    /// The reference to tag.
    #[arg(value_name = "TARGET_REF")]
    reference: String,
    /// The tags to point at it.
    #[arg(value_name = "TAG", required = true)]
    tags: Vec<String>,
}

/// `tag TARGET_REF TAG...`: points each tag at what TARGET_REF names (a
/// tag already pointing there gains no new version), as the config's user.
pub(crate) fn tag(args: TagArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let config = Config::load()?;
    let author =
        crate::repo::tags::TagAuthor(format!("{}@{}", config.user.name, config.user.domain));
    let (target, _) = super::objects::read_ref(&repo, &args.reference)?;
    let specs = args
        .tags
        .iter()
        .map(|t| TagSpec::parse_to_write(t))
        .collect::<Result<Vec<_>, _>>()?;
    for spec in specs {
        repo.push_tag(&spec, target, &author)?;
        super::log_info_field("created", "tag", &spec.to_string());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct UntagArgs {
    #[command(flatten)]
    repos: Repositories,
    /// Remove the newest version of the tag.
    #[arg(long)]
    latest: bool,
    /// Remove the whole tag stream.
    #[arg(short, long)]
    all: bool,
    /// The tag (`org/name~N` for one version).
    #[arg(value_name = "TAG")]
    tag: String,
}

/// `untag [--latest | --all] TAG`: removes one version of a tag, or all.
pub(crate) fn untag(args: UntagArgs) -> CmdResult {
    let repo = args.repos.open()?;
    let has_version = args.tag.contains('~') || args.latest;
    let mut spec = TagSpec::parse(&args.tag)?;
    if args.latest {
        spec = spec.with_version(0);
    }
    if !args.all && !has_version {
        // (upstream logs this one rather than reporting it)
        return Err(CmdError {
            diagnostic: None,
            causes: Vec::new(),
            logged: true,
            message: "You must specify one of --all, --latest or provide a tag with an explicit version number (eg: path/name~0)".into(),
            status: 1,
        });
    }
    let removed = if args.all {
        repo.remove_tag_stream(&spec)
    } else {
        repo.remove_tag_version(&spec)
    };
    match removed {
        Ok(()) => {
            super::log_info_field("removed", "tag", &spec.to_string());
            Ok(())
        }
        Err(crate::repo::Error::UnknownReference { .. }) => Err(unknown(&spec.to_string())),
        Err(e) => Err(e.into()),
    }
}
