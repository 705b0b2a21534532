//! The helper binaries dcx carries, one per container architecture, and their names.
//!
//! `build.rs` builds the `dcx-helper` crate statically for each target installed here and
//! writes the list this module includes; a dcx built where none could be built carries none
//! (every session then uses the plain engine exec).

use sha2::Digest;

include!(concat!(env!("OUT_DIR"), "/helpers.rs"));

/// The helper for an architecture as the engine names it (`amd64`/`x86_64`,
/// `arm64`/`aarch64`).
pub fn for_arch(arch: &str) -> Option<&'static [u8]> {
    let arch = match arch {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" | "arm64/v8" => "aarch64",
        _ => return None,
    };
    HELPERS
        .iter()
        .find(|(built, _)| *built == arch)
        .map(|(_, bytes)| *bytes)
}

/// The architectures carried.
pub fn carried() -> Vec<&'static str> {
    HELPERS.iter().map(|(arch, _)| *arch).collect()
}

/// Where a helper lives in a container: at the root, named by its content's hash (a dcx of
/// another version never runs a helper that is not its own).
pub fn path_of(bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("/.dcx-helper-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_s_architecture_is_carried_under_a_hash_keyed_name() {
        let bytes = for_arch(std::env::consts::ARCH);
        assert!(
            bytes.is_some_and(|bytes| bytes.starts_with(b"\x7fELF")),
            "build.rs built no helper for {}",
            std::env::consts::ARCH
        );
        let path = path_of(bytes.unwrap_or_default());
        assert!(
            path.starts_with("/.dcx-helper-") && path.len() == 29,
            "{path}"
        );
        assert_eq!(for_arch("amd64"), for_arch("x86_64"));
        assert_eq!(for_arch("arm64"), for_arch("aarch64"));
        assert_eq!(for_arch("riscv64"), None);
    }
}
