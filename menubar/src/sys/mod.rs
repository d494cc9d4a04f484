//! What differs by platform: opening a path in the file manager, a
//! terminal window, linking the command-line tools (an administrator's
//! prompt on macOS), and on macOS the bundle's login item (`SMAppService`). The only `unsafe` of
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

/// `argv` as one line a POSIX shell runs as it is (each word quoted).
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command that opens a terminal window running `argv`: Terminal on
/// macOS (through AppleScript), on Linux `$TERMINAL` or the system's
/// `x-terminal-emulator`, given `-e ARGV...` as both take it.
pub fn terminal_command(argv: &[String]) -> Command {
    if cfg!(target_os = "macos") {
        // An AppleScript string: backslashes and quotes escaped.
        let script = shell_line(argv).replace('\\', "\\\\").replace('"', "\\\"");
        let mut c = Command::new("osascript");
        c.args([
            "-e",
            "tell application \"Terminal\" to activate",
            "-e",
            &format!("tell application \"Terminal\" to do script \"{script}\""),
        ]);
        c
    } else {
        let terminal = std::env::var_os("TERMINAL")
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "x-terminal-emulator".into());
        let mut c = Command::new(terminal);
        c.arg("-e").args(argv);
        c
    }
}

/// Opens a terminal window running `argv` (see [`terminal_command`]).
/// Linux's terminal is left running; AppleScript's answer is waited for,
/// so a refusal (no permission to control Terminal) is reported.
pub fn open_terminal(argv: &[String]) -> Result<(), String> {
    let mut c = terminal_command(argv);
    let tool = c.get_program().to_string_lossy().into_owned();
    c.stdin(std::process::Stdio::null());
    if cfg!(target_os = "macos") {
        let out = c.output().map_err(|e| format!("cannot run {tool}: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "{tool} failed: {}",
                err.lines().next().unwrap_or("no output")
            ));
        }
        return Ok(());
    }
    let mut child = c
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot open a terminal ({tool}): {e}; set TERMINAL to yours"))?;
    // Reaped when it ends, so no zombie is left behind the app.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Where the command-line tools are linked for the user's shells:
/// `/usr/local/bin` on macOS (as editors install theirs), on Linux
/// `~/.local/bin` (on PATH in the usual distributions; no password).
pub fn command_line_dir() -> std::path::PathBuf {
    if cfg!(target_os = "macos") {
        "/usr/local/bin".into()
    } else {
        spfs_shared::paths::home().join(".local/bin")
    }
}

/// Makes each `(target, link)` symlink, replacing what `link` was. On
/// macOS `/usr/local/bin` belongs to root: the system asks for an
/// administrator's password (AppleScript's `with administrator
/// privileges`).
pub fn install_links(links: &[(std::path::PathBuf, std::path::PathBuf)]) -> Result<(), String> {
    if cfg!(target_os = "macos") {
        let mut line = String::new();
        for (target, link) in links {
            if let Some(dir) = link.parent() {
                line.push_str(&format!(
                    "mkdir -p {} && ",
                    shell_line(&[dir.display().to_string()])
                ));
            }
            line.push_str(&format!(
                "ln -sf {} && ",
                shell_line(&[target.display().to_string(), link.display().to_string()])
            ));
        }
        line.push_str("true");
        let script = line.replace('\\', "\\\\").replace('"', "\\\"");
        let out = Command::new("osascript")
            .args([
                "-e",
                &format!("do shell script \"{script}\" with administrator privileges"),
            ])
            .output()
            .map_err(|e| format!("cannot run osascript: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "linking the command line tools failed: {}",
                err.lines().next().unwrap_or("no output")
            ));
        }
        return Ok(());
    }
    for (target, link) in links {
        if let Some(dir) = link.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        // Replaced atomically: a link made beside, then renamed over.
        let tmp = link.with_extension("spfs-new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp)
            .and_then(|()| std::fs::rename(&tmp, link))
            .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    }
    Ok(())
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
    fn a_command_line_is_quoted_for_the_shell_and_for_applescript() {
        let argv = vec![
            "/A p/spfs".to_owned(),
            "join".to_owned(),
            "it's \"x\"".to_owned(),
        ];
        let line = shell_line(&argv);
        assert_eq!(line, r#"'/A p/spfs' 'join' 'it'\''s "x"'"#);
        // The shell gives back the same words.
        let out = Command::new("sh")
            .args(["-c", &format!("printf '%s\\n' {line}")])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "/A p/spfs\njoin\nit's \"x\"\n"
        );
        let c = terminal_command(&argv);
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if cfg!(target_os = "macos") {
            assert_eq!(c.get_program(), "osascript");
            assert!(args[3].contains(r#"it'\\''s \"x\""#), "{args:?}");
        } else {
            assert_eq!(&args[0], "-e");
            assert_eq!(&args[1..], &argv[..]);
        }
    }

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
