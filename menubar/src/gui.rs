//! The GUI layer: a tao event loop on the main thread, the tray icon
//! created once the loop runs, and a thread that follows the service and
//! wakes the loop with its news. All decisions are the model's; this only
//! applies them. At rest nothing runs: the loop waits for an event, and a
//! ticker thread sleeps until the menu's text next changes by the clock
//! (an idle countdown's or a runtime age's minute; at most once a minute).

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use tao::event::{Event, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tray_icon::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::actions::{self, Env};
use crate::client::{self, Update};
use crate::icon;
use crate::model::{self, Action, IconState, Item, Service, State};

enum UserEvent {
    Update(Update),
    Menu(String),
    /// The menu reads differently by the clock now (see `next_change`).
    Tick,
    /// An action finished: its error, if any, and whether always-on and
    /// the command-line tools are installed now (when they may have
    /// changed).
    Done(
        Result<actions::Performed, String>,
        Option<Option<bool>>,
        Option<Option<bool>>,
    ),
}

/// Pixels of the tray icon (macOS scales a 36-px template for retina).
const ICON_SIZE: u32 = if cfg!(target_os = "macos") { 36 } else { 32 };
/// Menu-bar icons are template images on macOS (black, tinted by the
/// system for light and dark bars); coloured elsewhere.
const TEMPLATE: bool = cfg!(target_os = "macos");

fn tray_icon(state: IconState) -> Option<Icon> {
    let img = icon::tray(state, ICON_SIZE, TEMPLATE);
    Icon::from_rgba(img.rgba, img.size, img.size).ok()
}

/// Sets the icon: as a template on macOS (tinted by the system).
#[cfg(target_os = "macos")]
fn show_icon(tray: &TrayIcon, icon: Option<Icon>) {
    let _ = tray.set_icon_templated(icon);
}

#[cfg(not(target_os = "macos"))]
fn show_icon(tray: &TrayIcon, icon: Option<Icon>) {
    let _ = tray.set_icon(icon);
}

#[cfg(target_os = "macos")]
fn with_icon(b: TrayIconBuilder, icon: Icon) -> TrayIconBuilder {
    b.with_icon_templated(icon)
}

#[cfg(not(target_os = "macos"))]
fn with_icon(b: TrayIconBuilder, icon: Icon) -> TrayIconBuilder {
    b.with_icon(icon)
}

fn add(parent: &dyn Fn(&dyn tray_icon::menu::IsMenuItem) -> bool, items: &[Item]) {
    for item in items {
        match item {
            Item::Label(t) => {
                parent(&MenuItem::new(t, false, None));
            }
            Item::Separator => {
                parent(&PredefinedMenuItem::separator());
            }
            Item::Action { id, text, enabled } => {
                parent(&MenuItem::with_id(id.clone(), text, *enabled, None));
            }
            Item::Check {
                id,
                text,
                checked,
                enabled,
            } => {
                parent(&CheckMenuItem::with_id(
                    id.clone(),
                    text,
                    *enabled,
                    *checked,
                    None,
                ));
            }
            Item::Submenu { text, items } => {
                let sub = Submenu::new(text, true);
                add(&|i| sub.append(i).is_ok(), items);
                parent(&sub);
            }
        }
    }
}

fn build_menu(items: &[Item]) -> Menu {
    let menu = Menu::new();
    add(&|i| menu.append(i).is_ok(), items);
    menu
}

struct App {
    env: Env,
    state: State,
    tray: Option<TrayIcon>,
    shown: Option<IconState>,
    clipboard: Option<arboard::Clipboard>,
    poke: mpsc::Sender<()>,
    /// Wakes the loop at the instant it is sent (`None`: never).
    ticker: mpsc::Sender<Option<Instant>>,
    /// What the ticker is armed for.
    armed: Option<Instant>,
    /// When it last woke the loop.
    last_tick: Option<Instant>,
    proxy: EventLoopProxy<UserEvent>,
    reporting: crate::Reporting,
}

impl App {
    fn refresh(&mut self) {
        let items = model::menu(&self.state, SystemTime::now(), Instant::now());
        let Some(tray) = &self.tray else { return };
        tray.set_menu(Some(Box::new(build_menu(&items))));
        let _ = tray.set_tooltip(Some(model::status_line(&self.state, Instant::now())));
        let look = model::icon_state(&self.state);
        if self.shown != Some(look) {
            show_icon(tray, tray_icon(look));
            self.shown = Some(look);
        }
        // The number of runtimes beside the icon (macOS; app indicators
        // that show labels on Linux).
        tray.set_title(model::icon_title(&self.state));
    }

    /// Arms the ticker for the menu's next change by the clock (the
    /// countdown, an age), or disarms it, if that differs from what it is
    /// armed for.
    fn arm_ticker(&mut self) {
        let now = Instant::now();
        let next = model::next_change(&self.state, SystemTime::now(), now)
            .map(|d| now + d)
            // At most one wake-up a minute, however many runtimes' ages
            // turn at different seconds (they may lag by under a minute).
            .map(|at| match self.last_tick {
                Some(t) => at.max(t + Duration::from_secs(60)),
                None => at,
            });
        let same = match (self.armed, next) {
            (Some(a), Some(n)) => a.max(n) - a.min(n) < Duration::from_secs(1),
            (a, n) => a.is_none() && n.is_none(),
        };
        if !same {
            self.armed = next;
            let _ = self.ticker.send(next);
        }
    }

    fn apply(&mut self, update: Update) {
        match update {
            Update::Service(s) => {
                let was_running = matches!(self.state.service, Service::Running(_));
                self.state.service = s;
                if let Service::Running(snap) = &self.state.service {
                    self.state.reporting_address = snap.status.reporting.host.is_some();
                    self.state.settings = snap.settings.settings.clone();
                    self.reporting.configure(&self.state.settings);
                    if !was_running {
                        // Connected (again): ask about always-on once.
                        self.check_always_on();
                    }
                } else {
                    self.reload_settings();
                }
            }
            Update::Event(e) => {
                if let Service::Running(snap) = &mut self.state.service {
                    snap.apply(e, Instant::now());
                    self.state.settings = snap.settings.settings.clone();
                    self.reporting.configure(&self.state.settings);
                }
            }
        }
    }

    fn reload_settings(&mut self) {
        if let Ok(s) = spfs_shared::settings::Settings::load(&self.env.settings) {
            self.state.reporting_address = s.reporting_address();
            self.reporting.configure(&s);
            self.state.settings = s;
        }
    }

    fn check_always_on(&self) {
        let env = self.env.clone();
        let proxy = self.proxy.clone();
        std::thread::spawn(move || {
            let now = actions::always_on(&env);
            let _ = proxy.send_event(UserEvent::Done(
                Ok(actions::Performed::Done),
                Some(now),
                None,
            ));
        });
    }

    fn click(&mut self, id: &str, flow: &mut ControlFlow) {
        let Some(action) = model::action_for(id, &self.state) else {
            return;
        };
        self.state.notice = None;
        match action {
            Action::Quit => *flow = ControlFlow::Exit,
            Action::CopyName(name) => {
                let copied = match &mut self.clipboard {
                    Some(c) => c.set_text(name),
                    None => arboard::Clipboard::new().and_then(|mut c| {
                        let r = c.set_text(name);
                        // Kept: on X11 the text lives as long as its owner.
                        self.clipboard = Some(c);
                        r
                    }),
                };
                if let Err(e) = copied {
                    self.state.notice = Some(format!("cannot copy: {e}"));
                }
            }
            action => {
                let (env, state, proxy) =
                    (self.env.clone(), self.state.clone(), self.proxy.clone());
                let poke = self.poke.clone();
                std::thread::spawn(move || {
                    let result = actions::perform(&action, &env, &state);
                    let always_on =
                        matches!(action, Action::AlwaysOn(_)).then(|| actions::always_on(&env));
                    let command_line = matches!(action, Action::InstallCommandLine)
                        .then(|| actions::command_line_installed(&env));
                    if matches!(action, Action::StartService) {
                        let _ = poke.send(());
                    }
                    let _ = proxy.send_event(UserEvent::Done(result, always_on, command_line));
                });
            }
        }
    }
}

/// The ticker thread: sleeps until the instant it was last sent, then
/// wakes the loop; with `None`, sleeps until told otherwise.
fn tick(armed: mpsc::Receiver<Option<Instant>>, proxy: EventLoopProxy<UserEvent>) {
    let mut next: Option<Instant> = None;
    loop {
        let got = match next {
            None => armed
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(at) => armed.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match got {
            Ok(n) => next = n,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                next = None;
                if proxy.send_event(UserEvent::Tick).is_err() {
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Runs the app until Quit.
pub fn run(env: Env, state: State, reporting: crate::Reporting) -> ! {
    let mut builder = EventLoopBuilder::<UserEvent>::with_user_event();
    let event_loop = builder.build();
    #[cfg(target_os = "macos")]
    let mut event_loop = event_loop;
    #[cfg(target_os = "macos")]
    {
        use tao::platform::macos::{ActivationPolicy, EventLoopExtMacOS};
        // An accessory app: no Dock icon, no main window.
        event_loop.set_activation_policy(ActivationPolicy::Accessory);
    }
    let proxy = event_loop.create_proxy();
    {
        let proxy = proxy.clone();
        MenuEvent::set_event_handler(Some(move |e: MenuEvent| {
            let _ = proxy.send_event(UserEvent::Menu(e.id.0));
        }));
    }
    let (poke, poked) = mpsc::channel();
    {
        let proxy = proxy.clone();
        let socket = env.socket.clone();
        std::thread::spawn(move || {
            client::follow(socket, poked, move |u| {
                proxy.send_event(UserEvent::Update(u)).is_ok()
            })
        });
    }
    let ticker = {
        let proxy = proxy.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tick(rx, proxy));
        tx
    };
    let mut app = App {
        env,
        state,
        tray: None,
        shown: None,
        clipboard: None,
        poke,
        ticker,
        armed: None,
        last_tick: None,
        proxy,
        reporting,
    };
    event_loop.run(move |event, _, flow| {
        match event {
            // The icon is made once the loop runs (macOS wants it so).
            Event::NewEvents(StartCause::Init) => {
                let items = model::menu(&app.state, SystemTime::now(), Instant::now());
                let look = model::icon_state(&app.state);
                let mut b = TrayIconBuilder::new()
                    .with_menu(Box::new(build_menu(&items)))
                    .with_tooltip("SPFS")
                    .with_menu_on_left_click(true);
                if let Some(i) = tray_icon(look) {
                    b = with_icon(b, i);
                }
                match b.build() {
                    Ok(t) => {
                        app.tray = Some(t);
                        app.shown = Some(look);
                        app.refresh();
                    }
                    Err(e) => {
                        eprintln!("spfs-menubar: cannot make the menu-bar icon: {e}");
                        *flow = ControlFlow::Exit;
                        return;
                    }
                }
            }
            Event::UserEvent(UserEvent::Tick) => {
                app.armed = None;
                app.last_tick = Some(Instant::now());
                app.refresh();
            }
            Event::UserEvent(UserEvent::Update(u)) => {
                app.apply(u);
                app.refresh();
            }
            Event::UserEvent(UserEvent::Menu(id)) => {
                app.click(&id, flow);
                app.refresh();
            }
            Event::UserEvent(UserEvent::Done(result, always_on, command_line)) => {
                match result {
                    Err(e) => app.state.notice = Some(e),
                    Ok(actions::Performed::Cleanup(c)) => app.state.cleanup = Some(c),
                    Ok(actions::Performed::Done) => {}
                }
                if let Some(c) = command_line {
                    app.state.command_line = c;
                }
                if let Some(a) = always_on {
                    app.state.always_on = a;
                }
                app.refresh();
            }
            _ => {}
        }
        if *flow != ControlFlow::Exit {
            // Nothing runs at rest: the loop waits for an event, and the
            // ticker sleeps until the menu next changes by the clock.
            // (tao's WaitUntil does not wake a GTK loop by itself.)
            *flow = ControlFlow::Wait;
            app.arm_ticker();
        }
    })
}
