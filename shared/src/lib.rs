//! Types and paths shared by the SPFS for macOS service and menu-bar app.
//!
//! - [`paths`]: where the control socket, settings, logs and scratch live
//! - [`settings`]: the user settings the menu bar edits and the service reads

pub mod paths;
pub mod settings;
