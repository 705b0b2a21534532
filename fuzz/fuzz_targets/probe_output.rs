//! The userEnvProbe's output parsing: any bytes, both separators; every name parsed is
//! non-empty and has no `=` (nor, with NUL separators, a newline).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for nul_separated in [true, false] {
        if let Some(env) = dcx::env::parse_probe_output(data, "MARK", nul_separated) {
            for (name, _) in env {
                assert!(!name.is_empty() && !name.contains('='), "{name:?}");
                assert!(!(nul_separated && name.contains('\n')), "{name:?}");
            }
        }
    }
});
