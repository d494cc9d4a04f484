use super::*;

/// A fake macOS root: `macos` version, macFUSE `macfuse` (version, with a
/// kext?), FUSE-T `fuse_t` (version).
fn mac_root(macos: &str, macfuse: Option<(&str, bool)>, fuse_t: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let write_plist = |rel: &str, pairs: &[(&str, &str)]| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut d = plist::Dictionary::new();
        for (k, v) in pairs {
            d.insert((*k).into(), plist::Value::String((*v).into()));
        }
        plist::Value::Dictionary(d).to_file_xml(&p).unwrap();
    };
    write_plist(
        "System/Library/CoreServices/SystemVersion.plist",
        &[("ProductName", "macOS"), ("ProductVersion", macos)],
    );
    if let Some((version, kext)) = macfuse {
        write_plist(
            "Library/Filesystems/macfuse.fs/Contents/Info.plist",
            &[("CFBundleShortVersionString", version)],
        );
        if kext {
            std::fs::create_dir_all(
                root.path()
                    .join("Library/Filesystems/macfuse.fs/Contents/Extensions/15/macfuse.kext"),
            )
            .unwrap();
        }
    }
    if let Some(version) = fuse_t {
        let lib = root.path().join("usr/local/lib");
        std::fs::create_dir_all(lib.join("pkgconfig")).unwrap();
        std::fs::write(lib.join("libfuse-t.dylib"), "").unwrap();
        std::fs::write(
            lib.join("pkgconfig/fuse-t.pc"),
            format!("Name: fuse-t\nVersion: {version}\n"),
        )
        .unwrap();
    }
    root
}

fn mac(macos: &str, macfuse: Option<(&str, bool)>, fuse_t: Option<&str>) -> Installed {
    let root = mac_root(macos, macfuse, fuse_t);
    detect(root.path(), Os::MacOs)
}

#[test]
fn detection_reads_versions_and_the_kext_from_the_tree() {
    let i = mac("15.5", Some(("5.1.2", true)), Some("1.0.49"));
    assert_eq!(i.os_version.as_deref(), Some("15.5"));
    assert_eq!(
        i.macfuse,
        Some(detect::Macfuse {
            version: Some("5.1.2".into()),
            kext: true
        })
    );
    assert_eq!(
        i.fuse_t.as_ref().unwrap().version.as_deref(),
        Some("1.0.49")
    );
    assert_eq!(
        i.found(),
        vec![
            (Kind::MacfuseKext, Some("5.1.2".into())),
            (Kind::MacfuseFskit, Some("5.1.2".into())),
            (Kind::FuseT, Some("1.0.49".into())),
        ]
    );
    let bare = mac("14.6", None, None);
    assert_eq!(bare.macfuse, None);
    assert_eq!(bare.fuse_t, None);
    assert!(bare.found().is_empty());
    // Linux: /dev/fuse and the kernel release
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("dev")).unwrap();
    std::fs::create_dir_all(root.path().join("proc/sys/kernel")).unwrap();
    std::fs::write(root.path().join("dev/fuse"), "").unwrap();
    std::fs::write(
        root.path().join("proc/sys/kernel/osrelease"),
        "6.1.0-28-amd64\n",
    )
    .unwrap();
    let l = detect(root.path(), Os::Linux);
    assert!(l.dev_fuse);
    assert_eq!(l.os_version.as_deref(), Some("6.1.0-28-amd64"));
}

#[test]
fn auto_prefers_a_backend_that_gives_the_callers_pid() {
    let kext = choose(
        Choice::Auto,
        &mac("15.5", Some(("5.1.2", true)), None),
        false,
    )
    .unwrap();
    assert_eq!(kext.kind, Kind::MacfuseKext);
    assert!(!kext.single_runtime);
    assert_eq!(kext.describe(), "macFUSE (kernel extension) 5.1.2");

    // No kext (or not for this macOS): FSKit, one runtime at a time.
    let fskit = choose(
        Choice::Auto,
        &mac("15.5", Some(("5.1.2", false)), None),
        false,
    )
    .unwrap();
    assert_eq!(fskit.kind, Kind::MacfuseFskit);
    assert!(fskit.single_runtime, "no pid: single-runtime mode");

    // --single-runtime on a backend with the pid.
    let forced = choose(
        Choice::Auto,
        &mac("15.5", Some(("5.1.2", true)), None),
        true,
    )
    .unwrap();
    assert_eq!(forced.kind, Kind::MacfuseKext);
    assert!(forced.single_runtime);
}

#[test]
fn what_cannot_serve_is_refused_with_what_to_do() {
    // Nothing at all.
    let err = choose(Choice::Auto, &mac("15.5", None, None), false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no FUSE backend is installed: install macFUSE"),
        "{err}"
    );
    // Only FUSE-T: named, and why not.
    let err = choose(Choice::Auto, &mac("15.5", None, Some("1.0.49")), false).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("FUSE-T is not supported yet: FUSE-T serves the filesystem over NFS"),
        "{err}"
    );
    // macFUSE 4 without a kext on macOS 15.5: no FSKit either.
    let err = choose(
        Choice::Auto,
        &mac("15.5", Some(("4.8.0", false)), None),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "macFUSE on FSKit needs macFUSE 5 or later and macOS 15.4 or later (found macFUSE 4.8.0, macOS 15.5): update macFUSE, or allow its kernel extension (docs/macos.md)"
    );
    // macOS 15.3: no FSKit.
    let i = mac("15.3.2", Some(("5.0.0", true)), None);
    let err = choose(Choice::Only(Kind::MacfuseFskit), &i, false).unwrap_err();
    assert!(
        matches!(err, BackendError::FskitUnavailable { .. }),
        "{err}"
    );
    // ... while its kext still serves.
    assert_eq!(
        choose(Choice::Auto, &i, false).unwrap().kind,
        Kind::MacfuseKext
    );
    // The other platform's backend.
    let err = choose(Choice::Only(Kind::LinuxFuse), &i, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Linux FUSE exists only on Linux; this is macOS (use --backend auto)"
    );
    // A native FSKit module: the seam, with its reason.
    let err = choose(Choice::Only(Kind::Fskit), &i, false).unwrap_err();
    assert!(
        err.to_string().contains("FSKit gives no caller pid"),
        "{err}"
    );
    // Names
    assert_eq!("auto".parse::<Choice>(), Ok(Choice::Auto));
    assert_eq!(
        "macfuse-fskit".parse::<Choice>(),
        Ok(Choice::Only(Kind::MacfuseFskit))
    );
    assert_eq!(
        "kext".parse::<Choice>().unwrap_err(),
        "unknown backend 'kext': use auto, linux, macfuse, macfuse-fskit, fuse-t, fskit"
    );
}

#[test]
fn versions_compare_as_numbers() {
    assert!(at_least("15.4", &[15, 4]));
    assert!(at_least("15.10", &[15, 4]));
    assert!(at_least("26.0", &[15, 4]));
    assert!(!at_least("15.3.2", &[15, 4]));
    assert!(!at_least("15", &[15, 4]));
    assert!(at_least("5.0.0", &[5]));
    assert!(at_least("5.1.2-beta", &[5]));
    assert!(!at_least("4.10.1", &[5]));
    assert!(!at_least("", &[5]));
}

#[test]
fn the_kext_turns_the_name_cache_off_unless_one_runtime_is_served() {
    let mut b = Backend {
        kind: Kind::MacfuseKext,
        version: Some("5.1.2".into()),
        single_runtime: false,
    };
    assert_eq!(
        b.mount_options(),
        ["novncache", "noappledouble", "volname=SPFS"]
    );
    b.single_runtime = true;
    assert_eq!(b.mount_options(), ["noappledouble", "volname=SPFS"]);
    let fskit = Backend {
        kind: Kind::MacfuseFskit,
        version: None,
        single_runtime: true,
    };
    assert!(fskit.mount_options().contains(&"backend=fskit".to_owned()));
    let linux = Backend {
        kind: Kind::LinuxFuse,
        version: None,
        single_runtime: false,
    };
    assert!(linux.mount_options().is_empty());
}

#[test]
fn fskit_mounts_under_volumes_with_spfs_as_a_link() {
    let fskit = Backend {
        kind: Kind::MacfuseFskit,
        version: Some("5.1.2".into()),
        single_runtime: true,
    };
    let plan = fskit.mount_plan(Path::new("/spfs"), true).unwrap();
    assert_eq!(plan.mount_at, Path::new("/Volumes/spfs"));
    assert_eq!(plan.link.as_deref(), Some(Path::new("/spfs")));
    let own = fskit.mount_plan(Path::new("/Volumes/mine"), false).unwrap();
    assert_eq!(own.link, None);
    let err = fskit
        .mount_plan(Path::new("/Users/me/spfs"), false)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("macFUSE on FSKit mounts only under /Volumes, not at /Users/me/spfs"),
        "{err}"
    );
    let kext = Backend {
        kind: Kind::MacfuseKext,
        version: None,
        single_runtime: false,
    };
    assert_eq!(
        kext.mount_plan(Path::new("/spfs"), true).unwrap().mount_at,
        Path::new("/spfs")
    );

    let info = fskit.info(&plan, Some("missing"));
    assert_eq!(
        info.link.as_deref(),
        Some("/spfs → /Volumes/spfs (missing)")
    );
    assert!(!info.caller_pid && info.single_runtime);
    assert_eq!(
        info.summary(),
        "macFUSE on FSKit 5.1.2, one runtime at a time"
    );
}

#[test]
fn the_spfs_link_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("Volumes/spfs");
    std::fs::create_dir_all(&target).unwrap();
    let link = dir.path().join("spfs");
    assert!(link_problem(&link, &target).unwrap().starts_with("missing"));
    std::os::unix::fs::symlink("Volumes/spfs", &link).unwrap();
    assert_eq!(link_problem(&link, &target), None);
    let other = dir.path().join("other");
    std::os::unix::fs::symlink("/elsewhere", &other).unwrap();
    assert_eq!(
        link_problem(&other, &target).as_deref(),
        Some("it links to /elsewhere instead")
    );
    assert!(link_problem(dir.path(), &target)
        .unwrap()
        .starts_with("not a link"));
}
