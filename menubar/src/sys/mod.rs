//! What differs by platform: opening a path in the file manager, and on
//! macOS the bundle's login item (`SMAppService`). The only `unsafe` of
//! the app is here.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "macos")]
pub mod macos;

use std::path::Path;
use std::process::Command;

/// Shows `path` in Finder (macOS) or the file manager (Linux).
pub fn reveal(path: &Path) -> Result<(), String> {
    let (tool, args): (&str, Vec<&std::ffi::OsStr>) = if cfg!(target_os = "macos") {
        ("open", vec![path.as_os_str()])
    } else {
        ("xdg-open", vec![path.as_os_str()])
    };
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{tool} {} failed: {}",
            path.display(),
            err.lines().next().unwrap_or("no output")
        ))
    }
}

/// Prepares the GUI toolkit; call first thing, before any thread starts.
///
/// On Linux GTK opens an OpenGL context at start that a tray icon and its
/// menus never draw with; under software rendering (Mesa's llvmpipe, as on
/// a server or in Xvfb) that alone maps 44 MB of LLVM. `GDK_GL=disable`
/// skips it, unless the user chose otherwise. Nothing to do on macOS.
pub fn prepare_toolkit() {
    #[cfg(not(target_os = "macos"))]
    if std::env::var_os("GDK_GL").is_none() {
        // Edition 2021: safe; no other thread exists yet (see above).
        std::env::set_var("GDK_GL", "disable");
    }
}

/// Whether this app runs from an app bundle (`SPFS.app/Contents/MacOS`).
#[cfg(target_os = "macos")]
pub fn in_app_bundle() -> bool {
    std::env::current_exe().is_ok_and(|p| is_bundle_executable(&p))
}

/// Whether `exe` is an app bundle's executable (`X.app/Contents/MacOS/x`).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub fn is_bundle_executable(exe: &Path) -> bool {
    exe.parent().is_some_and(|d| {
        d.ends_with("Contents/MacOS")
            && d.parent()
                .and_then(Path::parent)
                .and_then(Path::extension)
                .is_some_and(|e| e == "app")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_executable_is_recognised() {
        assert!(is_bundle_executable(Path::new(
            "/Applications/SPFS.app/Contents/MacOS/spfs-menubar"
        )));
        assert!(!is_bundle_executable(Path::new(
            "/work/target/release/spfs-menubar"
        )));
        assert!(!is_bundle_executable(Path::new(
            "/x/Contents/MacOS/spfs-menubar"
        )));
    }
}
