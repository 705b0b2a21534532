//! The option values users type: `--remote-env NAME=value`, `--id-label name=value`, and
//! durations (`--timeout`, `--since`): never a panic, and what is accepted is well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((name, value)) = dcx::env::parse_remote_env_arg(&text) {
        assert!(!name.is_empty());
        assert_eq!(format!("{name}={value}"), text);
    }
    let spec = dcx::engine::TargetSpec {
        id_labels: vec![text.to_string()],
        ..dcx::engine::TargetSpec::default()
    };
    if spec.check().is_ok() {
        let (name, value) = text.split_once('=').unwrap_or_default();
        assert!(!name.is_empty() && !value.is_empty());
    }
    if let Ok(duration) = dcx::cli::args::parse_duration(&text) {
        assert!(!duration.is_zero() && duration <= dcx::cli::args::MAX_DURATION);
    }
});
