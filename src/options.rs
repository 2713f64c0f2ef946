//! Decoding of what containerd hands the shim as options: `start`'s stdin
//! (empty, an Any of runc `Options`, an Any of CRI `runtimeoptions.v1.Options`,
//! or a `BootstrapParams` from containerd 2.3+) and `CreateTaskRequest.options`.

use containerd_shim_protos::bootstrap_api::BootstrapParams;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;

use crate::wire::{bounded_input, decode_message};

/// Type name of containerd's runc shim options (sent by nerdctl and `ctr --runc-binary`).
pub const RUNC_OPTIONS: &str = "containerd.runc.v1.Options";
/// Type name of CRI's generic runtime options (ConfigPath / ConfigBody).
pub const RUNTIME_OPTIONS: &str = "runtimeoptions.v1.Options";
/// Type name of the task options containerd's Go client sends to a runtime
/// whose name is not io.containerd.runc.* (`runctypes.CreateOptions`).
pub const RUNC_CREATE_OPTIONS: &str = "containerd.linux.runc.CreateOptions";

/// Runtime options in the shapes the shim understands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RuntimeOptions {
    /// Nothing was sent.
    #[default]
    None,
    /// runc-style options: binary name, runtime root, cgroup driver, and
    /// the cgroup the shim itself goes in.
    Runc {
        binary_name: String,
        root: String,
        systemd_cgroup: bool,
        shim_cgroup: String,
    },
    /// A nucleus.toml given by path or inline body.
    Config { path: String, body: String },
    /// Task options for a runtime that is not runc.v2: the shim's cgroup
    /// and the owner of the IO (user namespaces); the config comes from
    /// the default nucleus.toml.
    RuncCreate {
        shim_cgroup: String,
        io_uid: u32,
        io_gid: u32,
    },
}

/// What containerd 2.3+ sends on `start`'s stdin, reduced to what the shim uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bootstrap {
    pub namespace: String,
    pub ttrpc_address: String,
    pub socket_dir: Option<String>,
}

/// Decoded `start` input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartInput {
    /// Present when containerd spoke the 2.3+ bootstrap protocol.
    pub bootstrap: Option<Bootstrap>,
    /// The options Any, still encoded, to be persisted for Create.
    pub options_any: Option<Vec<u8>>,
}

message_error!(
    /// Options bytes that cannot be understood.
    OptionsError
);

fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

fn looks_like_options_any(any: &Any) -> bool {
    let name = type_name(&any.type_url);
    !name.is_empty() && name.contains('.') && !name.contains(char::is_whitespace)
}

/// Decodes `start`'s stdin. Never fails on an options type it does not know:
/// Create reports that, where the user sees it.
pub fn decode_start_stdin(data: &[u8]) -> Result<StartInput, OptionsError> {
    if data.is_empty() {
        return Ok(StartInput::default());
    }
    if let Ok(any) = decode_message::<Any>(data) {
        if looks_like_options_any(&any) && decode_message::<BootstrapParams>(data).is_err_or_plain()
        {
            return Ok(StartInput {
                bootstrap: None,
                options_any: Some(data.to_vec()),
            });
        }
    }
    let params = decode_message::<BootstrapParams>(data).map_err(|e| {
        OptionsError(format!(
            "start: stdin ({} bytes) is neither a runtime options Any nor BootstrapParams: {e}",
            data.len()
        ))
    })?;
    let options_any = params
        .extensions
        .iter()
        .filter_map(|ext| ext.value.as_ref())
        .find(|any| looks_like_options_any(any))
        .map(|any| any.write_to_bytes())
        .transpose()
        .map_err(|e| OptionsError(format!("start: re-encoding options extension: {e}")))?;
    Ok(StartInput {
        bootstrap: Some(Bootstrap {
            namespace: params.namespace.clone(),
            ttrpc_address: params.containerd_ttrpc_address.clone(),
            socket_dir: params.socket_dir.clone(),
        }),
        options_any,
    })
}

trait PlainCheck {
    fn is_err_or_plain(&self) -> bool;
}

impl PlainCheck for Result<BootstrapParams, containerd_shim_protos::protobuf::Error> {
    /// True unless the bytes parse as BootstrapParams carrying fields an Any
    /// never has (anything beyond field 1 and 2).
    fn is_err_or_plain(&self) -> bool {
        match self {
            Err(_) => true,
            Ok(p) => {
                p.log_level.value() == 0
                    && p.containerd_version.is_empty()
                    && p.containerd_ttrpc_address.is_empty()
                    && p.containerd_grpc_address.is_empty()
                    && p.containerd_binary.is_empty()
                    && p.extensions.is_empty()
                    && p.socket_dir.is_none()
            }
        }
    }
}

/// Decodes an encoded Any (as persisted from `start`).
pub fn decode_any_bytes(data: &[u8]) -> Result<RuntimeOptions, OptionsError> {
    let any = decode_message::<Any>(data)
        .map_err(|e| OptionsError(format!("runtime options are not a protobuf Any: {e}")))?;
    decode_any(&any)
}

/// Decodes a runtime options Any into the shapes the shim understands.
pub fn decode_any(any: &Any) -> Result<RuntimeOptions, OptionsError> {
    if any.type_url.is_empty() && any.value.is_empty() {
        return Ok(RuntimeOptions::None);
    }
    match type_name(&any.type_url) {
        RUNC_OPTIONS => {
            let o = decode_message::<RuncOptions>(&any.value)
                .map_err(|e| OptionsError(format!("malformed {RUNC_OPTIONS}: {e}")))?;
            Ok(RuntimeOptions::Runc {
                binary_name: o.binary_name,
                root: o.root,
                systemd_cgroup: o.systemd_cgroup,
                shim_cgroup: o.shim_cgroup,
            })
        }
        RUNTIME_OPTIONS => {
            let (path, body) = decode_runtimeoptions(&any.value)
                .map_err(|e| OptionsError(format!("malformed {RUNTIME_OPTIONS}: {e}")))?;
            Ok(RuntimeOptions::Config { path, body })
        }
        RUNC_CREATE_OPTIONS => decode_create_options(&any.value)
            .map_err(|e| OptionsError(format!("malformed {RUNC_CREATE_OPTIONS}: {e}"))),
        other => Err(OptionsError(format!(
            "unsupported runtime options type {other:?} (expected {RUNC_OPTIONS}, {RUNTIME_OPTIONS} or {RUNC_CREATE_OPTIONS})"
        ))),
    }
}

/// `runtimeoptions.v1.Options { string type_url = 1; string config_path = 2; string config_body = 3; }`
fn decode_runtimeoptions(data: &[u8]) -> Result<(String, String), String> {
    let mut input = bounded_input(data).map_err(|e| e.to_string())?;
    let (mut path, mut body) = (String::new(), String::new());
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(|e| e.to_string())? {
        match tag {
            10 => {
                input.read_string().map_err(|e| e.to_string())?;
            }
            18 => path = input.read_string().map_err(|e| e.to_string())?,
            26 => body = input.read_string().map_err(|e| e.to_string())?,
            t => {
                let wire = containerd_shim_protos::protobuf::rt::WireType::new(t & 7)
                    .ok_or_else(|| format!("bad wire type in tag {t}"))?;
                input.skip_field(wire).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok((path, body))
}

/// `runtimectypes.CreateOptions`: of its fields the shim uses
/// `string shim_cgroup = 9; uint32 io_uid = 10; uint32 io_gid = 11;`.
fn decode_create_options(data: &[u8]) -> Result<RuntimeOptions, String> {
    let mut input = bounded_input(data).map_err(|e| e.to_string())?;
    let (mut shim_cgroup, mut io_uid, mut io_gid) = (String::new(), 0, 0);
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(|e| e.to_string())? {
        match tag {
            74 => shim_cgroup = input.read_string().map_err(|e| e.to_string())?,
            80 => io_uid = input.read_uint32().map_err(|e| e.to_string())?,
            88 => io_gid = input.read_uint32().map_err(|e| e.to_string())?,
            t => {
                let wire = containerd_shim_protos::protobuf::rt::WireType::new(t & 7)
                    .ok_or_else(|| format!("bad wire type in tag {t}"))?;
                input.skip_field(wire).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(RuntimeOptions::RuncCreate {
        shim_cgroup,
        io_uid,
        io_gid,
    })
}

/// Encodes runtimeoptions (for tests and tools).
pub fn encode_runtimeoptions(path: &str, body: &str) -> Any {
    let mut out = Vec::new();
    {
        let mut os = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut out);
        if !path.is_empty() {
            os.write_string(2, path)
                .expect("writing to a Vec cannot fail");
        }
        if !body.is_empty() {
            os.write_string(3, body)
                .expect("writing to a Vec cannot fail");
        }
        os.flush().expect("writing to a Vec cannot fail");
    }
    Any {
        type_url: RUNTIME_OPTIONS.to_string(),
        value: out,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim_protos::bootstrap_api::Extension;

    fn runc_any(binary: &str) -> Any {
        let o = RuncOptions {
            binary_name: binary.into(),
            root: "/r".into(),
            ..Default::default()
        };
        Any {
            type_url: format!("type.googleapis.com/{RUNC_OPTIONS}"),
            value: o.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn empty_stdin_is_no_options() {
        assert_eq!(decode_start_stdin(b"").unwrap(), StartInput::default());
    }

    #[test]
    fn runc_create_options_from_go_clients_of_other_runtimes() {
        let mut value = Vec::new();
        {
            let mut os = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut value);
            os.write_bool(1, true).unwrap(); // no_pivot_root: skipped
            os.write_string(7, "x").unwrap(); // cgroups_mode: skipped
            os.write_string(9, "/containerd/shim").unwrap();
            os.write_uint32(10, 1000).unwrap();
            os.write_uint32(11, 2000).unwrap();
            os.flush().unwrap();
        }
        let any = Any {
            type_url: format!("type.googleapis.com/{RUNC_CREATE_OPTIONS}"),
            value,
            ..Default::default()
        };
        assert_eq!(
            decode_any(&any).unwrap(),
            RuntimeOptions::RuncCreate {
                shim_cgroup: "/containerd/shim".into(),
                io_uid: 1000,
                io_gid: 2000
            }
        );
        let bad = Any {
            type_url: RUNC_CREATE_OPTIONS.into(),
            value: vec![74, 200],
            ..Default::default()
        };
        assert!(decode_any(&bad).unwrap_err().0.contains("malformed"));
    }

    #[test]
    fn runc_options_any_on_stdin() {
        let bytes = runc_any("/usr/bin/crun").write_to_bytes().unwrap();
        let input = decode_start_stdin(&bytes).unwrap();
        assert!(input.bootstrap.is_none());
        let opts = decode_any_bytes(input.options_any.as_ref().unwrap()).unwrap();
        assert_eq!(
            opts,
            RuntimeOptions::Runc {
                binary_name: "/usr/bin/crun".into(),
                root: "/r".into(),
                systemd_cgroup: false,
                shim_cgroup: String::new(),
            }
        );
    }

    #[test]
    fn runtimeoptions_any_on_stdin() {
        let bytes = encode_runtimeoptions("/etc/nucleus/runsc.toml", "")
            .write_to_bytes()
            .unwrap();
        let input = decode_start_stdin(&bytes).unwrap();
        let opts = decode_any_bytes(input.options_any.as_ref().unwrap()).unwrap();
        assert_eq!(
            opts,
            RuntimeOptions::Config {
                path: "/etc/nucleus/runsc.toml".into(),
                body: String::new()
            }
        );
    }

    #[test]
    fn bootstrap_params_on_stdin() {
        let mut p = BootstrapParams::new();
        p.instance_id = "c1".into();
        p.namespace = "default".into();
        p.containerd_ttrpc_address = "/run/containerd/containerd.sock.ttrpc".into();
        p.socket_dir = Some("/run/containerd/s".into());
        let mut ext = Extension::new();
        ext.value = Some(encode_runtimeoptions("", "[runtime]\nname = \"runc\"\n")).into();
        p.extensions.push(ext);
        let input = decode_start_stdin(&p.write_to_bytes().unwrap()).unwrap();
        let b = input.bootstrap.unwrap();
        assert_eq!(b.namespace, "default");
        assert_eq!(b.ttrpc_address, "/run/containerd/containerd.sock.ttrpc");
        assert_eq!(b.socket_dir.as_deref(), Some("/run/containerd/s"));
        let opts = decode_any_bytes(&input.options_any.unwrap()).unwrap();
        assert!(matches!(opts, RuntimeOptions::Config { body, .. } if body.contains("runc")));
    }

    #[test]
    fn garbage_stdin_is_a_clear_error() {
        let e = decode_start_stdin(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.0.contains("neither"), "{e}");
    }

    #[test]
    fn unknown_options_type_is_named() {
        let any = Any {
            type_url: "example.com/acme.Options".into(),
            value: vec![],
            ..Default::default()
        };
        let e = decode_any(&any).unwrap_err();
        assert!(e.0.contains("acme.Options"), "{e}");
    }
}
