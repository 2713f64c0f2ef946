//! Log URIs (`file://`, `binary://` with a query of arguments) as a client
//! passes them in CreateTaskRequest.stdout (src/io/logging_uri.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nucleus_shim::io::logging_uri::LogUri;

fuzz_target!(|data: &[u8]| {
    nucleus_fuzz::limit_allocations(data.len());
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    match LogUri::parse(uri) {
        Ok(LogUri::File(path)) => assert!(path.starts_with('/')),
        Ok(LogUri::Binary { path, .. }) => assert!(path.starts_with('/')),
        Err(_) => {}
    }
});
