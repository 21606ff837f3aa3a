//! Pages checked in a real browser: Debian's headless Chromium, a fresh profile per call.

use std::path::Path;
use std::process::Command;

use crate::require;
use crate::tmp::TempDir;

/// Loads `url` in headless Chromium: writes a screenshot to `shot` (checked to be a real
/// image) and returns the DOM after the page's scripts ran (virtual time lets a fetch of the
/// page's own complete).
pub fn dom_and_screenshot(url: &str, shot: &Path) -> String {
    let bin = require::command("chromium", "chromium");
    let profile = TempDir::new("chromium");
    let run = |extra: &str| {
        let out = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=3000",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(url)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
        assert!(
            out.status.success(),
            "chromium {extra} {url}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let _ = std::fs::remove_file(shot);
    run(&format!("--screenshot={}", shot.display()));
    let size = std::fs::metadata(shot)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()))
        .len();
    assert!(size > 10_000, "screenshot {} is {size} bytes", shot.display());
    run("--dump-dom")
}
