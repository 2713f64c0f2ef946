//! Reading the spec from a bundle and writing the hardened one back: the
//! original is kept next to it, every file is written atomically (temp file
//! opened O_EXCL|O_NOFOLLOW, 0600, fsync, rename, fsync of the directory),
//! and a symlinked bundle or config.json is refused.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::Value;

use super::report::Report;
use super::HardenError;

/// The spec the runtime reads.
pub const SPEC_FILE: &str = "config.json";
/// The spec as containerd wrote it, before hardening.
pub const ORIGINAL_FILE: &str = "nucleus-config.original.json";
/// What hardening changed (JSON).
pub const REPORT_FILE: &str = "nucleus-hardening.json";
/// Largest config.json accepted.
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

/// A spec read from a bundle.
pub struct Source {
    /// The file it was read from (config.json or the kept original).
    pub path: std::path::PathBuf,
    /// The spec to harden.
    pub spec: Value,
    /// Its bytes, when they still have to be saved as the original.
    pub unsaved_original: Option<Vec<u8>>,
}

fn check_bundle(bundle: &Path) -> Result<(), HardenError> {
    let meta = std::fs::symlink_metadata(bundle)
        .map_err(|e| HardenError(format!("bundle {}: {e}", bundle.display())))?;
    if meta.file_type().is_symlink() {
        return Err(HardenError(format!(
            "bundle {} is a symlink: refused",
            bundle.display()
        )));
    }
    if !meta.is_dir() {
        return Err(HardenError(format!(
            "bundle {} is not a directory",
            bundle.display()
        )));
    }
    Ok(())
}

/// Reads a bundle file without following a symlink, up to the size limit.
fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, HardenError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(HardenError(format!(
                "{} is a symlink: refused",
                path.display()
            )))
        }
        Err(e) => return Err(HardenError(format!("{}: {e}", path.display()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| HardenError(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(HardenError(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut data = Vec::new();
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| HardenError(format!("{}: {e}", path.display())))?;
    if data.len() as u64 > MAX_SPEC_BYTES {
        return Err(HardenError(format!(
            "{}: larger than the {MAX_SPEC_BYTES} byte limit",
            path.display()
        )));
    }
    Ok(Some(data))
}

/// Parses spec bytes; `path` names the file in errors.
pub fn parse(data: &[u8], path: &Path) -> Result<Value, HardenError> {
    let spec: Value = serde_json::from_slice(data)
        .map_err(|e| HardenError(format!("{}: malformed JSON: {e}", path.display())))?;
    if !spec.is_object() {
        return Err(HardenError(format!(
            "{}: the OCI spec must be a JSON object",
            path.display()
        )));
    }
    Ok(spec)
}

/// Reads the spec to harden: the kept original when there is one (so
/// hardening again starts from what containerd wrote), else config.json.
pub fn read(bundle: &Path) -> Result<Source, HardenError> {
    check_bundle(bundle)?;
    let original = bundle.join(ORIGINAL_FILE);
    if let Some(data) = read_nofollow(&original)? {
        return Ok(Source {
            spec: parse(&data, &original)?,
            path: original,
            unsaved_original: None,
        });
    }
    let path = bundle.join(SPEC_FILE);
    let data = read_nofollow(&path)?
        .ok_or_else(|| HardenError(format!("{}: no such file", path.display())))?;
    Ok(Source {
        spec: parse(&data, &path)?,
        path,
        unsaved_original: Some(data),
    })
}

/// Writes `data` to `dir/name` atomically, mode 0600.
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), HardenError> {
    let tmp = dir.join(format!(".{name}.nucleus-tmp"));
    let target = dir.join(name);
    let fail = |what: &str, e: std::io::Error| {
        HardenError(format!("writing {}: {what}: {e}", target.display()))
    };
    // A leftover from a crash; unlink never follows a symlink.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| fail("temp file", e))?;
    let written = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("write", e));
    drop(f);
    if let Err(e) =
        written.and_then(|()| std::fs::rename(&tmp, &target).map_err(|e| fail("rename", e)))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("sync of the directory", e))
}

/// Saves the original (first time only), the hardened spec and the report.
pub fn write(
    bundle: &Path,
    source: &Source,
    hardened: &Value,
    report: &Report,
) -> Result<(), HardenError> {
    check_bundle(bundle)?;
    if let Some(original) = &source.unsaved_original {
        write_atomic(bundle, ORIGINAL_FILE, original)?;
    }
    let spec = serde_json::to_vec(hardened)
        .map_err(|e| HardenError(format!("serialising the spec: {e}")))?;
    write_atomic(bundle, SPEC_FILE, &spec)?;
    let report = serde_json::to_vec_pretty(&report.to_json())
        .map_err(|e| HardenError(format!("serialising the report: {e}")))?;
    write_atomic(bundle, REPORT_FILE, &report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;
    use crate::runtime::Backend;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn bundle_with(spec: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPEC_FILE), spec).unwrap();
        dir
    }

    /// Found by fuzz/fuzz_targets/harden_spec.rs: an integer too large for
    /// u64 (here 1.1e118 written out in 119 digits) was read as
    /// 1.1000000000000002e118, 1 ULP off, so the hardened spec held a number
    /// containerd never wrote, and reading that back gave yet another.
    #[test]
    fn numbers_reach_the_runtime_as_written() {
        let text = format!("10{}", "9".repeat(117));
        let written: f64 = text.parse().unwrap();
        let spec = parse(
            format!(r#"{{"linux":{{"devices":[{{"major":{text}}}]}}}}"#).as_bytes(),
            Path::new("config.json"),
        )
        .unwrap();
        assert_eq!(spec["linux"]["devices"][0]["major"].as_f64(), Some(written));
        let again = parse(
            &serde_json::to_vec(&spec).unwrap(),
            Path::new("config.json"),
        )
        .unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn write_keeps_the_original_and_is_0600() {
        let dir = bundle_with(r#"{"ociVersion":"1.0.2","process":{"args":["/bin/true"]}}"#);
        let src = read(dir.path()).unwrap();
        assert!(src.unsaved_original.is_some());
        let hardened = json!({"ociVersion": "1.0.2", "hardened": true});
        let report = Report::new(Level::Default, Backend::Runc);
        write(dir.path(), &src, &hardened, &report).unwrap();
        let on_disk: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(SPEC_FILE)).unwrap()).unwrap();
        assert_eq!(on_disk, hardened);
        for f in [SPEC_FILE, ORIGINAL_FILE, REPORT_FILE] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // Reading again starts from the original, which is not rewritten.
        let again = read(dir.path()).unwrap();
        assert_eq!(again.spec["process"]["args"][0], "/bin/true");
        assert!(again.unsaved_original.is_none());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("nucleus-tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn symlinked_config_or_bundle_is_refused() {
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("real.json"), "{}").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target.path().join("real.json"), dir.path().join(SPEC_FILE))
            .unwrap();
        let e = read(dir.path()).err().unwrap();
        assert!(e.0.contains("config.json is a symlink"), "{e}");

        let link = dir.path().join("bundle-link");
        std::os::unix::fs::symlink(target.path(), &link).unwrap();
        let e = read(&link).err().unwrap();
        assert!(e.0.contains("bundle") && e.0.contains("symlink"), "{e}");
    }

    #[test]
    fn a_symlink_planted_at_the_temp_name_is_not_followed() {
        let dir = bundle_with("{}");
        let victim = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(victim.path(), "keep").unwrap();
        let tmp = dir.path().join(format!(".{SPEC_FILE}.nucleus-tmp"));
        std::os::unix::fs::symlink(victim.path(), &tmp).unwrap();
        write_atomic(dir.path(), SPEC_FILE, b"{\"new\":1}").unwrap();
        assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(dir.path().join(SPEC_FILE)).unwrap(),
            "{\"new\":1}"
        );
    }

    #[test]
    fn malformed_huge_and_missing_specs_are_named() {
        let dir = bundle_with("{not json");
        let e = read(dir.path()).err().unwrap();
        assert!(
            e.0.contains("config.json") && e.0.contains("malformed JSON"),
            "{e}"
        );
        let dir = bundle_with("[1,2]");
        assert!(read(dir.path()).err().unwrap().0.contains("JSON object"));
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join(SPEC_FILE)).unwrap();
        f.set_len(MAX_SPEC_BYTES + 1).unwrap();
        assert!(read(dir.path()).err().unwrap().0.contains("byte limit"));
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).err().unwrap().0.contains("no such file"));
    }
}
