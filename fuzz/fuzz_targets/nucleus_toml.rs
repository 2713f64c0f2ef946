//! nucleus.toml (src/config.rs): the file an operator writes, or the
//! ConfigBody a CRI client sends inline. Parsing and validating it must not
//! panic; a config that passes is resolved the way Create resolves it
//! (with an empty PATH, so nothing outside is looked up), with and without
//! a container asking for a runtime by annotation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nucleus_shim::config::{self, FileConfig};
use nucleus_shim::options::RuntimeOptions;

fuzz_target!(|data: &[u8]| {
    nucleus_fuzz::limit_allocations(data.len());
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if FileConfig::parse(body, "fuzz").is_ok() && !body.is_empty() {
        let opts = RuntimeOptions::Config {
            path: String::new(),
            body: body.to_string(),
        };
        for chosen in [None, Some("runsc"), Some("crun"), Some("runc"), Some("kata")] {
            let _ = config::resolve(
                &opts,
                "default",
                std::path::Path::new("/nonexistent/nucleus.toml"),
                Some(""),
                chosen,
            );
        }
    }
});
