//! The menu-bar app (`spfs-menubar`) against the real service: the menu it
//! prints for live runtimes, and the app itself on an X display with a
//! tray host (Xvfb + trayer), clicked open with xdotool and captured.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::service::{menubar_bin, ok, text, RuntimeShell, Service};

fn menubar() -> PathBuf {
    menubar_bin()
}

fn print_menu(svc: &Service) -> String {
    ok(&svc
        .command(menubar().to_str().unwrap())
        .arg("--print-menu")
        .output()
        .unwrap())
}

/// Waits (up to 10 s) until the printed menu satisfies `pred`.
fn wait_menu(svc: &Service, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let menu = print_menu(svc);
        if pred(&menu) {
            return menu;
        }
        assert!(Instant::now() < deadline, "{what}; the menu:\n{menu}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn print_menu_lists_live_runtimes_with_scratch_sizes_and_drops_a_removed_one() {
    let svc = Service::start("repo");
    let idle = print_menu(&svc);
    assert!(idle.starts_with("SPFS idle · quits in "), "{idle}");
    assert!(idle.contains("No runtimes\n"), "{idle}");

    let mut ed = RuntimeShell::start(&svc, "ed", "fixture/base");
    ed.eval("head -c 12400 /dev/zero > $M/big; mkdir $M/d; echo hi > $M/d/small");
    let _ro = RuntimeShell::start_read_only(&svc, "ro", "fixture/base+fixture/top");

    let menu = wait_menu(&svc, "both runtimes with the scratch size", |m| {
        m.contains("12.4 kB")
    });
    assert!(menu.starts_with("SPFS running · 2 runtimes\n"), "{menu}");
    assert!(
        menu.contains(&format!("{} · ", svc.mnt.display())),
        "{menu}"
    );
    assert!(
        menu.contains(
            "ed — fixture/base · 12.4 kB >\n  Environment: fixture/base\n  editable · scratch 12.4 kB (2 files)\n"
        ),
        "{menu}"
    );
    assert!(
        menu.contains("ro — fixture/base+fixture/top >\n  Environment: fixture/base+fixture/top\n  read-only\n"),
        "{menu}"
    );
    assert!(menu.contains("  Reveal scratch\n"), "{menu}");
    assert!(menu.contains("Stop service\n"), "{menu}");

    text(&svc.cli(&["runtime", "rm", "ro"]));
    let menu = wait_menu(&svc, "ro gone", |m| !m.contains("ro — "));
    assert!(menu.starts_with("SPFS running · 1 runtime\n"), "{menu}");
    assert!(menu.contains("ed — fixture/base"), "{menu}");
}

fn click(svc: &Service, item: &str, envs: &[(&str, &Path)]) -> std::process::Output {
    svc.command(menubar().to_str().unwrap())
        .args(["--click", item])
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let mut p = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(path, p).unwrap();
}

/// "Open shell here": the user's terminal (`$TERMINAL -e ...` on Linux)
/// runs `spfs join NAME`, whose shell is in the runtime.
#[test]
fn open_shell_here_opens_a_terminal_joined_to_the_runtime() {
    let svc = Service::start("repo");
    let _rt = RuntimeShell::start_read_only(&svc, "here", "fixture/base");
    let menu = wait_menu(&svc, "the runtime", |m| m.contains("here — "));
    assert!(menu.contains("  Open shell here\n"), "{menu}");
    let dir = tempfile::tempdir().unwrap();
    let (term, shell, out) = (
        dir.path().join("term"),
        dir.path().join("shell"),
        dir.path().join("out"),
    );
    script(
        &term,
        &format!(
            "[ \"$1\" = -e ] && shift; exec \"$@\" > {} 2>&1 < /dev/null",
            out.display()
        ),
    );
    script(&shell, "cat \"$SPFS_FUSE_MOUNTPOINT/hello.txt\"");
    let o = click(
        &svc,
        "shell/here",
        &[("TERMINAL", &term), ("SHELL", &shell)],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let seen = poll(10, || {
        std::fs::read_to_string(&out).ok().filter(|t| !t.is_empty())
    });
    assert_eq!(seen.as_deref(), Some("hello from base\n"));
    // No such runtime: nothing to click.
    let o = click(&svc, "shell/nope", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no menu item 'shell/nope'"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// "Install command line tools": `spfs` and `spfs-fuse-macos` linked
/// where the user's shells find them (`~/.local/bin` on Linux), once.
#[test]
fn install_command_line_tools_links_spfs_for_the_users_shells() {
    let svc = Service::start("repo");
    let menu = print_menu(&svc);
    assert!(
        menu.contains("Install command line tools (spfs)…\n"),
        "{menu}"
    );
    let o = click(&svc, "install-cli", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bin = svc.dir.path().join(".local/bin");
    let beside = menubar().with_file_name("spfs");
    assert_eq!(std::fs::read_link(bin.join("spfs")).unwrap(), beside);
    assert_eq!(
        std::fs::read_link(bin.join("spfs-fuse-macos")).unwrap(),
        beside.with_file_name("spfs-fuse-macos")
    );
    let o = Command::new(bin.join("spfs"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(o.status.success());
    let menu = print_menu(&svc);
    assert!(
        menu.contains("Command line tools installed (spfs)\n"),
        "{menu}"
    );
    // Installed: nothing left to click.
    assert_eq!(click(&svc, "install-cli", &[]).status.code(), Some(1));
}

/// "Clean up repository…" shows what nothing uses (as `spfs clean
/// --dry-run` counts it), and "Remove them" removes it.
#[test]
fn clean_up_repository_shows_what_it_would_remove_then_removes_it() {
    let svc = Service::start("repo");
    let spfs = menubar().with_file_name("spfs");
    let src = svc.dir.path().join("stray");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("s.txt"), "nobody tags me").unwrap();
    let o = svc
        .command(spfs.to_str().unwrap())
        .args(["commit", "--path", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Young: kept by the age rule.
    assert_eq!(
        shown(&click(&svc, "cleanup", &[])),
        "Nothing to remove; 4 files newer than 15 minutes kept\n",
    );
    let st = Command::new("sh")
        .arg("-c")
        .arg("find \"$1/objects\" \"$1/payloads\" -type f -exec touch -d '1 hour ago' {} +")
        .arg("sh")
        .arg(&svc.repo)
        .status()
        .unwrap();
    assert!(st.success());
    let would = shown(&click(&svc, "cleanup", &[]));
    assert!(
        would.starts_with("Would remove 3 objects and 1 payload ("),
        "{would}"
    );
    let removed = shown(&click(&svc, "cleanup-now", &[]));
    assert_eq!(removed, would.replace("Would remove", "Removed"));
    assert_eq!(shown(&click(&svc, "cleanup", &[])), "Nothing to remove\n");
    let o = svc
        .command(spfs.to_str().unwrap())
        .arg("check")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn print_menu_says_when_the_service_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(menubar())
        .env("HOME", dir.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SPFS_SENTRY_DSN")
        .env("SPFS_FUSE_SOCKET", dir.path().join("none.sock"))
        .arg("--print-menu")
        .output()
        .unwrap();
    let menu = text(&out);
    assert!(menu.starts_with("SPFS not running\n"), "{menu}");
    assert!(menu.contains("Start service\n"), "{menu}");
    assert!(
        menu.contains("[ ] Send error reports (disabled)\n"),
        "{menu}"
    );
    // The idle submenu shows the file's setting (the default, 30).
    assert!(menu.contains("  [x] 30 minutes\n"), "{menu}");

    // A broken settings file is shown, not ignored.
    let settings = dir.path().join(".config/spfs-fuse-macos/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{not json").unwrap();
    let out = Command::new(menubar())
        .env("HOME", dir.path())
        .env_remove("XDG_CONFIG_HOME")
        .env("SPFS_FUSE_SOCKET", dir.path().join("none.sock"))
        .arg("--print-menu")
        .output()
        .unwrap();
    let menu = text(&out);
    assert!(
        menu.contains(&format!(
            "⚠ settings file {} is not valid",
            settings.display()
        )),
        "{menu}"
    );
}

/// A process killed when dropped.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need_tool(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: the GUI smoke test needs Xvfb, trayer, xdotool and ImageMagick (scripts/setup installs them)"
    );
}

fn spawn(cmd: &mut Command, name: &'static str, log: &Path) -> Bg {
    let log = std::fs::File::create(log.join(format!("{name}.log"))).unwrap();
    Bg(cmd
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}")))
}

fn x(display: &str, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .output()
        .unwrap()
}

/// Polls `f` every 100 ms for up to `secs`.
fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (x, y, width, height) of a window.
fn geometry(display: &str, window: &str) -> Option<(i32, i32, i32, i32)> {
    let out = x(
        display,
        "xdotool",
        &["getwindowgeometry", "--shell", window],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((get("X")?, get("Y")?, get("WIDTH")?, get("HEIGHT")?))
}

/// The mean brightness (0..1) of a region of a screenshot.
fn brightness(png: &Path, (x0, y0, w, h): (i32, i32, i32, i32)) -> f64 {
    let out = Command::new("convert")
        .arg(png)
        .args([
            "-crop",
            &format!("{w}x{h}+{x0}+{y0}"),
            "-colorspace",
            "Gray",
        ])
        .args(["-format", "%[fx:mean]", "info:"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("convert: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The app under Xvfb with trayer as the tray: its icon appears, a click
/// opens its menu, and the open menu is captured
/// (`target/menubar-smoke.png`).
#[test]
fn the_app_shows_its_icon_and_a_click_opens_the_menu() {
    for tool in ["Xvfb", "trayer", "xdotool", "import", "convert"] {
        need_tool(tool);
    }
    let svc = Service::start("repo");
    let _ed = RuntimeShell::start(&svc, "smoke", "fixture/base");
    let logs = svc.dir.path();

    // A display of our own (the first free number from 90).
    let n = (90..200)
        .find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
        .unwrap();
    let display = format!(":{n}");
    let _xvfb = spawn(
        Command::new("Xvfb").args([&display, "-screen", "0", "800x600x24", "-nolisten", "tcp"]),
        "xvfb",
        logs,
    );
    assert!(
        poll(10, || Path::new(&format!("/tmp/.X11-unix/X{n}"))
            .exists()
            .then_some(()))
        .is_some(),
        "Xvfb did not start on {display}"
    );
    let _tray = spawn(
        Command::new("trayer")
            .args([
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
            ])
            .args([
                "--height",
                "32",
                "--transparent",
                "false",
                "--tint",
                "0xffffff",
            ])
            .env("DISPLAY", &display),
        "trayer",
        logs,
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut app_cmd = svc.command(menubar().to_str().unwrap());
    app_cmd.env("DISPLAY", &display);
    let mut app = spawn(&mut app_cmd, "menubar", logs);

    // The icon: a window the tray embeds, named by tray-icon.
    let icon = poll(15, || {
        if let Ok(Some(status)) = app.0.try_wait() {
            panic!(
                "the app exited ({status}): {}",
                std::fs::read_to_string(logs.join("menubar.log")).unwrap_or_default()
            );
        }
        let out = x(
            &display,
            "xdotool",
            &["search", "--classname", "^tray-icon tray app"],
        );
        let id = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .to_owned();
        let g = geometry(&display, &id)?;
        (g.2 > 0 && g.3 > 0 && g.0 >= 0).then_some(g)
    })
    .unwrap_or_else(|| {
        panic!(
            "no tray icon appeared; app log: {}",
            std::fs::read_to_string(logs.join("menubar.log")).unwrap_or_default()
        )
    });
    // Let it take the runtime news (icon state) before the click.
    std::thread::sleep(Duration::from_millis(500));
    let before = logs.join("before.png");
    assert!(x(
        &display,
        "import",
        &["-window", "root", before.to_str().unwrap()]
    )
    .status
    .success());
    let icon_ink = brightness(&before, icon);
    assert!(icon_ink < 0.98, "the icon area is blank ({icon_ink})");

    let (cx, cy) = (icon.0 + icon.2 / 2, icon.1 + icon.3 / 2);
    let click = x(
        &display,
        "xdotool",
        &["mousemove", &cx.to_string(), &cy.to_string(), "click", "1"],
    );
    assert!(click.status.success());

    // The menu: a new mapped window of the app, larger than the icon.
    let menu = poll(10, || {
        let out = x(
            &display,
            "xdotool",
            &["search", "--onlyvisible", "--classname", "^spfs-menubar$"],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|id| geometry(&display, id))
            .find(|g| g.2 > 100 && g.3 > 100)
    })
    .expect("no menu opened after clicking the icon");
    std::thread::sleep(Duration::from_millis(300));
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("menubar-smoke.png");
    assert!(x(
        &display,
        "import",
        &["-window", "root", shot.to_str().unwrap()]
    )
    .status
    .success());
    // A menu is light on the black root window.
    let menu_light = brightness(&shot, menu);
    assert!(
        menu_light > 0.5,
        "the menu area is dark ({menu_light}): {menu:?}"
    );
    assert!(
        brightness(&before, menu) < 0.2,
        "the area was not dark before the click"
    );
    eprintln!("menubar smoke test: screenshot at {}", shot.display());

    // A click in the menu sends its request: the first clickable item is
    // the runtime's submenu, whose second clickable item is Stop.
    for key in ["Down", "Right", "Down", "Return"] {
        let k = x(&display, "xdotool", &["mousemove", "0", "599", "key", key]);
        assert!(k.status.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let stopped = poll(10, || {
        let ls = text(&svc.cli(&["runtime", "ls"]));
        (!ls.contains("smoke")).then_some(())
    });
    assert!(
        stopped.is_some(),
        "Stop in the menu did not stop the runtime"
    );
    assert!(app.0.try_wait().unwrap().is_none(), "the app exited");
}
