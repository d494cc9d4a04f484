//! macOS: the always-on agent as the bundle's login item, through
//! `SMAppService` (macOS 13+). The agent's property list is in
//! `SPFS.app/Contents/Library/LaunchAgents/` (written by `bundle/make-app`).
//!
//! Not verified here (no Mac): that registering asks the user to approve
//! the login item in System Settings, and that the service then starts.

use objc2_foundation::NSString;
use objc2_service_management::{SMAppService, SMAppServiceStatus};

/// The agent's property list name inside the bundle.
const PLIST: &str = "ai.spk.spfs-fuse-macos.plist";

fn service() -> objc2::rc::Retained<SMAppService> {
    let name = NSString::from_str(PLIST);
    // SAFETY: a valid NSString; the call only builds an object describing
    // the bundle's agent.
    unsafe { SMAppService::agentServiceWithPlistName(&name) }
}

/// Whether the login item is registered (approved or waiting for it).
pub fn registered() -> bool {
    // SAFETY: a status query on a valid SMAppService.
    let status = unsafe { service().status() };
    status == SMAppServiceStatus::Enabled || status == SMAppServiceStatus::RequiresApproval
}

/// Registers (`on`) or unregisters the login item.
pub fn set(on: bool) -> Result<(), String> {
    let s = service();
    // SAFETY: calls on a valid SMAppService; errors come back as NSError.
    let r = unsafe {
        if on {
            s.registerAndReturnError()
        } else {
            s.unregisterAndReturnError()
        }
    };
    r.map_err(|e| format!("SMAppService: {}", e.localizedDescription()))
}
