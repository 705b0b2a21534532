//! JSONC config loading and the metadata label merge: any text, as a devcontainer.json and as
//! an image's `devcontainer.metadata` label, merged both ways (all entries, updates only).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = std::path::Path::new("/w/.devcontainer/devcontainer.json");
    let local = dcx::config::parse::parse(path, &text).unwrap_or_default();
    let (entries, _problem) = dcx::config::parse_metadata_label(Some(&text));
    for updates_only in [false, true] {
        let _ = dcx::config::merge(&entries, &local, updates_only);
    }
    let _ = dcx::config::merge_configuration(&local, &entries);
});
