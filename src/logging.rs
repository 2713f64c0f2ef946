//! Shim logging through the bundle's `log` FIFO, which containerd reads and
//! copies into its own log. Lines are logfmt like containerd's. A full or
//! absent FIFO drops lines: logging never blocks the shim.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

struct Logger {
    out: Mutex<Option<std::fs::File>>,
    level: log::LevelFilter,
    id: String,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            log::Level::Debug => "debug",
            log::Level::Trace => "trace",
        };
        let msg = r
            .args()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        let line = format!(
            "time=\"{}\" level={level} msg=\"{msg}\" id={} runtime={}\n",
            rfc3339(SystemTime::now()),
            self.id,
            crate::RUNTIME_NAME
        );
        if let Ok(mut out) = self.out.lock() {
            if let Some(f) = out.as_mut() {
                let _ = f.write(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Formats a time as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Opens the bundle's `log` FIFO for writing without blocking.
fn open_log_fifo(bundle: &Path) -> Option<std::fs::File> {
    let fd: OwnedFd = open(
        &bundle.join("log"),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    Some(std::fs::File::from(fd))
}

/// Installs the logger; `debug` raises the level from info to debug.
pub fn init(bundle: &Path, id: &str, debug: bool) {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let logger = Logger {
        out: Mutex::new(open_log_fifo(bundle)),
        level,
        id: id.to_string(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(0, 5);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00.000000005Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_392_000); // 2026-11-23
        assert_eq!(rfc3339(t), "2026-11-23T00:00:00.000000000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000000000Z");
    }
}
