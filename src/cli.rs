//! Command line of the shim binary: Go-style single-dash flags as containerd
//! passes them, and the action to run.

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `start`: spawn the long-lived server and print its address.
    Start,
    /// `delete`: clean up a task from the files in its bundle.
    Delete,
    /// No action: run as the long-lived ttrpc server (spawned by `start`).
    Serve,
    /// `-v` / `--version`.
    Version,
    /// `-info`: print a protobuf `RuntimeInfo`.
    Info,
    /// `harden --bundle DIR [--config FILE] [--dry-run]`.
    Harden(HardenArgs),
    /// `oci-hook --id ID -- PATH [ARG0 ARGS...]`: runs an OCI hook with
    /// the state on stdin carrying containerd's id `ID` (runsc's hooks).
    OciHook(OciHookArgs),
}

/// Arguments of the `oci-hook` action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OciHookArgs {
    /// The containerd container id the hook must see.
    pub id: String,
    /// The hook's executable.
    pub path: String,
    /// Its argv (the OCI hook's `args`; argv\[0\] first), empty for `path`.
    pub args: Vec<String>,
}

/// Arguments of the `harden` action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HardenArgs {
    pub bundle: String,
    /// A nucleus.toml; default: the shim's default config path.
    pub config: Option<String>,
    /// Print the changes without writing the bundle.
    pub dry_run: bool,
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: String,
    pub socket: String,
    pub debug: bool,
    pub action: Action,
}

message_error!(
    /// A command line containerd (or a person) gave that the shim cannot use.
    CliError
);

/// Usage text printed with a command line error.
pub const USAGE: &str =
    "usage: containerd-shim-nucleus-v1 [-namespace NS] [-id ID] [-address ADDR] \
[-publish-binary BIN] [-bundle DIR] [-socket ADDR] [-debug] [-v] [-info] [start|delete]
       containerd-shim-nucleus-v1 harden --bundle DIR [--config FILE] [--dry-run]
       containerd-shim-nucleus-v1 oci-hook --id ID -- PATH [ARG0 ARGS...]";

/// Parses the arguments after `oci-hook`.
fn parse_oci_hook(args: &[String]) -> Result<OciHookArgs, CliError> {
    let mut h = OciHookArgs::default();
    let mut it = args.iter();
    loop {
        match it.next().map(String::as_str) {
            Some("--id") => {
                h.id = it
                    .next()
                    .cloned()
                    .ok_or_else(|| CliError("oci-hook: --id needs a value".into()))?
            }
            Some("--") => break,
            Some(other) => {
                return Err(CliError(format!("oci-hook: unexpected argument {other:?}")))
            }
            None => return Err(CliError("oci-hook: -- PATH is required".into())),
        }
    }
    h.path = it
        .next()
        .cloned()
        .ok_or_else(|| CliError("oci-hook: the hook's PATH is missing after --".into()))?;
    h.args = it.cloned().collect();
    if h.id.is_empty() {
        return Err(CliError("oci-hook: --id ID is required".into()));
    }
    Ok(h)
}

/// Parses the arguments after `harden`.
fn parse_harden(args: &[String]) -> Result<HardenArgs, CliError> {
    let mut h = HardenArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .ok_or_else(|| CliError(format!("harden: unexpected argument {arg:?}")))?;
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        match name {
            "dry-run" if inline.is_none() => h.dry_run = true,
            "bundle" | "config" => {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| CliError(format!("harden: --{name} needs a value")))?,
                };
                if name == "bundle" {
                    h.bundle = v;
                } else {
                    h.config = Some(v);
                }
            }
            _ => return Err(CliError(format!("harden: unknown flag {arg:?}"))),
        }
    }
    if h.bundle.is_empty() {
        return Err(CliError("harden: --bundle DIR is required".into()));
    }
    Ok(h)
}

/// Parses arguments (without the program name) the way Go's `flag` package
/// does: `-f v`, `-f=v`, `--f v`; flags stop at the first positional argument.
pub fn parse<I, S>(args: I) -> Result<Flags, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut f = Flags {
        namespace: String::new(),
        id: String::new(),
        address: String::new(),
        publish_binary: String::new(),
        bundle: String::new(),
        socket: String::new(),
        debug: false,
        action: Action::Serve,
    };
    let mut version = false;
    let mut info = false;
    let mut args = args.into_iter().map(Into::into).peekable();
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "--" {
            positional.extend(args.by_ref());
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            positional.push(arg);
            positional.extend(args.by_ref());
            break;
        };
        if body.is_empty() {
            return Err(CliError(format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        match name {
            "debug" | "v" | "version" | "info" => {
                let value = match inline.as_deref() {
                    None | Some("true") | Some("1") => true,
                    Some("false") | Some("0") => false,
                    Some(other) => {
                        return Err(CliError(format!(
                            "invalid boolean value {other:?} for -{name}"
                        )))
                    }
                };
                match name {
                    "debug" => f.debug = value,
                    "info" => info = value,
                    _ => version = value,
                }
            }
            "namespace" | "id" | "address" | "publish-binary" | "bundle" | "socket" => {
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| CliError(format!("flag needs an argument: -{name}")))?,
                };
                let slot = match name {
                    "namespace" => &mut f.namespace,
                    "id" => &mut f.id,
                    "address" => &mut f.address,
                    "publish-binary" => &mut f.publish_binary,
                    "bundle" => &mut f.bundle,
                    _ => &mut f.socket,
                };
                *slot = value;
            }
            _ => return Err(CliError(format!("flag provided but not defined: -{name}"))),
        }
    }
    f.action = if version {
        Action::Version
    } else if info {
        Action::Info
    } else {
        match positional.first().map(String::as_str) {
            None => Action::Serve,
            Some("start") => Action::Start,
            Some("delete") => Action::Delete,
            Some("harden") => Action::Harden(parse_harden(&positional[1..])?),
            Some("oci-hook") => Action::OciHook(parse_oci_hook(&positional[1..])?),
            Some(other) => return Err(CliError(format!("unknown action {other:?}"))),
        }
    };
    if matches!(f.action, Action::Start | Action::Delete | Action::Serve) {
        if f.namespace.is_empty() {
            return Err(CliError(
                "shim namespace cannot be empty (-namespace)".into(),
            ));
        }
        if f.id.is_empty() {
            return Err(CliError("shim id cannot be empty (-id)".into()));
        }
        // The namespace names directories (runtime roots): as containerd's
        // own identifier rule, no separators or dot-only names.
        if f.namespace.contains('/') || f.namespace.trim_matches('.').is_empty() {
            return Err(CliError(format!(
                "shim namespace {:?} is not a valid name (-namespace)",
                f.namespace
            )));
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn harden_action_and_its_flags() {
        let f = parse(["harden", "--bundle", "/b", "--config=/c.toml", "--dry-run"]).unwrap();
        assert_eq!(
            f.action,
            Action::Harden(HardenArgs {
                bundle: "/b".into(),
                config: Some("/c.toml".into()),
                dry_run: true
            })
        );
        for bad in [
            vec!["harden"],
            vec!["harden", "--bundle"],
            vec!["harden", "--bundle", "/b", "--force"],
            vec!["harden", "--bundle", "/b", "extra"],
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.0.starts_with("harden:"), "{bad:?}: {e}");
        }
    }

    use super::*;

    #[test]
    fn oci_hook_action_and_its_arguments() {
        let f = parse([
            "oci-hook",
            "--id",
            "c1",
            "--",
            "/usr/bin/h",
            "h",
            "-x",
            "--",
        ])
        .unwrap();
        assert_eq!(
            f.action,
            Action::OciHook(OciHookArgs {
                id: "c1".into(),
                path: "/usr/bin/h".into(),
                args: vec!["h".into(), "-x".into(), "--".into()],
            })
        );
        let f = parse(["oci-hook", "--id", "c1", "--", "/usr/bin/h"]).unwrap();
        assert!(matches!(f.action, Action::OciHook(h) if h.args.is_empty()));
        for bad in [
            vec!["oci-hook"],
            vec!["oci-hook", "--id"],
            vec!["oci-hook", "--id", "c1"],
            vec!["oci-hook", "--id", "c1", "--"],
            vec!["oci-hook", "--", "/usr/bin/h"],
            vec!["oci-hook", "--force", "--", "/usr/bin/h"],
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.0.starts_with("oci-hook:"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn parses_containerd_start_line() {
        let f = parse([
            "-namespace",
            "default",
            "-address",
            "/run/containerd/containerd.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "-debug",
            "start",
        ])
        .unwrap();
        assert_eq!(f.namespace, "default");
        assert_eq!(f.id, "c1");
        assert_eq!(f.address, "/run/containerd/containerd.sock");
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
        assert!(f.debug);
        assert_eq!(f.action, Action::Start);
    }

    #[test]
    fn accepts_equals_and_double_dash_forms() {
        let f = parse(["--namespace=k8s.io", "-id=x", "-bundle", "/b", "delete"]).unwrap();
        assert_eq!(f.namespace, "k8s.io");
        assert_eq!(f.bundle, "/b");
        assert_eq!(f.action, Action::Delete);
    }

    #[test]
    fn version_and_info_need_no_id() {
        assert_eq!(parse(["-v"]).unwrap().action, Action::Version);
        assert_eq!(parse(["--version"]).unwrap().action, Action::Version);
        assert_eq!(parse(["-info"]).unwrap().action, Action::Info);
    }

    #[test]
    fn no_action_means_serve() {
        assert_eq!(
            parse(["-namespace", "n", "-id", "i"]).unwrap().action,
            Action::Serve
        );
    }

    #[test]
    fn rejects_unknown_flag_and_action() {
        let e = parse(["-namespace", "n", "-id", "i", "-bogus", "start"]).unwrap_err();
        assert!(e.0.contains("-bogus"), "{e}");
        let e = parse(["-namespace", "n", "-id", "i", "launch"]).unwrap_err();
        assert!(e.0.contains("launch"), "{e}");
    }

    #[test]
    fn rejects_missing_value_and_bad_bool() {
        assert!(parse(["-namespace"])
            .unwrap_err()
            .0
            .contains("needs an argument"));
        assert!(parse(["-debug=maybe"])
            .unwrap_err()
            .0
            .contains("invalid boolean"));
    }

    #[test]
    fn namespace_cannot_name_a_path() {
        for ns in ["..", ".", "a/b", "/x"] {
            let e = parse(["-namespace", ns, "-id", "i", "start"]).unwrap_err();
            assert!(e.0.contains("not a valid name"), "{ns}: {}", e.0);
        }
        assert!(parse(["-namespace", "k8s.io", "-id", "i", "start"]).is_ok());
    }

    #[test]
    fn start_requires_namespace_and_id() {
        assert!(parse(["-id", "x", "start"])
            .unwrap_err()
            .0
            .contains("namespace"));
        assert!(parse(["-namespace", "x", "start"])
            .unwrap_err()
            .0
            .contains("id"));
    }
}
