//! `start`'s stdin as containerd (or anything that runs the shim) sends it:
//! empty, an Any of runc Options, of runtimeoptions, of runc CreateOptions,
//! or BootstrapParams (src/options.rs); the options Any `start` keeps is
//! decoded as Create decodes it, and a ConfigBody is parsed as nucleus.toml.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nucleus_shim::config::FileConfig;
use nucleus_shim::options::{self, RuntimeOptions};

fn options(any: &[u8]) {
    if let Ok(RuntimeOptions::Config { body, .. }) = options::decode_any_bytes(any) {
        if !body.is_empty() {
            let _ = FileConfig::parse(&body, "ConfigBody");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    nucleus_fuzz::limit_allocations(data.len());
    if let Ok(input) = options::decode_start_stdin(data) {
        if let Some(any) = &input.options_any {
            options(any);
        }
    }
    // The Any kept in the bundle, and CreateTaskRequest.options, come
    // straight to decode_any_bytes too.
    options(data);
});
