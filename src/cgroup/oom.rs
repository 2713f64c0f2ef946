//! OOM notifications from a container's memory cgroup: cgroup v1 through
//! an eventfd registered on memory.oom_control, v2 through inotify on
//! memory.events (its `oom_kill` counter). The fd is polled by the server
//! loop, and checked again before an exit is reported, so TaskOOM always
//! precedes the TaskExit of the process the kernel killed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{read_keyed, Cgroup, CgroupError};

enum Kind {
    V1 {
        efd: EventFd,
        /// Kept open for the registration's lifetime.
        _control: std::fs::File,
        dir: PathBuf,
    },
    V2 {
        inotify: Inotify,
        events: PathBuf,
        seen: u64,
    },
}

/// A watch on one container's OOM kills.
pub struct OomWatch {
    kind: Kind,
}

impl std::fmt::Debug for OomWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OomWatch")
            .field("fd", &self.fd().as_raw_fd())
            .finish()
    }
}

fn oom_kills(events: &std::path::Path) -> u64 {
    read_keyed(events).get("oom_kill").copied().unwrap_or(0)
}

impl OomWatch {
    /// Starts watching `cg` (which must exist: call after the runtime's create).
    pub fn new(cg: &Cgroup) -> Result<OomWatch, CgroupError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            CgroupError(format!("OOM watch on {}: {what}: {e}", cg.path))
        };
        if cg.unified {
            let events = cg.file("memory", "", "memory.events");
            let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
                .map_err(|e| err("inotify", &e))?;
            inotify
                .add_watch(&events, AddWatchFlags::IN_MODIFY)
                .map_err(|e| err(&events.display().to_string(), &e))?;
            let seen = oom_kills(&events);
            return Ok(OomWatch {
                kind: Kind::V2 {
                    inotify,
                    events,
                    seen,
                },
            });
        }
        let control_path = cg.file("memory", "memory.oom_control", "");
        let dir = control_path.parent().map(PathBuf::from).unwrap_or_default();
        let control = std::fs::File::open(&control_path)
            .map_err(|e| err(&control_path.display().to_string(), &e))?;
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|e| err("eventfd", &e))?;
        let line = format!("{} {}", efd.as_fd().as_raw_fd(), control.as_raw_fd());
        let event_control = dir.join("cgroup.event_control");
        std::fs::write(&event_control, line)
            .map_err(|e| err(&event_control.display().to_string(), &e))?;
        Ok(OomWatch {
            kind: Kind::V1 {
                efd,
                _control: control,
                dir,
            },
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Consumes pending notifications (never blocks); true when the kernel
    /// OOM-killed in the cgroup since the last call.
    pub fn fired(&mut self) -> bool {
        match &mut self.kind {
            Kind::V1 { efd, dir, .. } => {
                let mut buf = [0u8; 8];
                let got = nix::unistd::read(efd.as_fd(), &mut buf).is_ok_and(|n| n == 8);
                // The eventfd also fires when the cgroup is removed.
                got && u64::from_ne_bytes(buf) > 0 && dir.exists()
            }
            Kind::V2 {
                inotify,
                events,
                seen,
            } => {
                while let Ok(evs) = inotify.read_events() {
                    if evs.is_empty() {
                        break;
                    }
                }
                let now = oom_kills(events);
                let fired = now > *seen;
                *seen = now;
                fired
            }
        }
    }
}
