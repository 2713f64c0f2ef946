//! containerd-shim-nucleus-v1: parses flags and dispatches into the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use nucleus_shim::{bootstrap, cli, logging, server};

fn bundle_dir(flags: &cli::Flags) -> PathBuf {
    if flags.bundle.is_empty() {
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
    } else {
        PathBuf::from(&flags.bundle)
    }
}

fn print(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn fail(msg: &str) -> ExitCode {
    log::error!("{msg}");
    eprintln!("containerd-shim-nucleus-v1: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    // Before any thread or child: nothing the shim inherited ignored is
    // passed on to what it starts.
    nucleus_shim::spawn::default_inherited_signals();
    let flags = match cli::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-nucleus-v1: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match flags.action {
        cli::Action::Version => print(bootstrap::version().as_bytes()),
        cli::Action::Info => print(&bootstrap::info()),
        cli::Action::Harden(args) => match bootstrap::harden::run(&args) {
            Ok(text) => print(text.as_bytes()),
            Err(e) => {
                eprintln!("containerd-shim-nucleus-v1: {e}");
                ExitCode::FAILURE
            }
        },
        cli::Action::OciHook(args) => match bootstrap::oci_hook::run(&args) {
            Ok(status) => ExitCode::from(status),
            Err(e) => {
                eprintln!("containerd-shim-nucleus-v1: {e}");
                ExitCode::FAILURE
            }
        },
        cli::Action::Start => {
            logging::init(&bundle_dir(&flags), &flags.id, flags.debug);
            match bootstrap::start::run(&flags) {
                Ok(reply) => print(&reply),
                Err(e) => fail(&e.to_string()),
            }
        }
        cli::Action::Delete => {
            logging::init(&bundle_dir(&flags), &flags.id, flags.debug);
            match bootstrap::delete::run(&flags) {
                Ok(reply) => print(&reply),
                Err(e) => fail(&e.to_string()),
            }
        }
        cli::Action::Serve => {
            logging::init(&bundle_dir(&flags), &flags.id, flags.debug);
            match server::run(&flags) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}
