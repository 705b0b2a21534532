//! The final environment of the command: probe, then config `remoteEnv`, then `--remote-env`.
//!
//! Each layer overrides the ones before. Two deliberate divergences from the reference (see
//! DIVERGENCES.md): the CLI wins over the config (the spec's FR-004; the reference applies config
//! last), and a config value of JSON `null` removes the variable (the reference passes the string
//! `null`), from the container's own environment too. A variable keeps the position where it was
//! first set and takes its last value, so the `-e` order is stable; one removed and set again moves
//! to the end.

use std::collections::HashMap;

/// Which layer gave a variable its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The `userEnvProbe` result.
    Probe,
    /// The merged, substituted `remoteEnv` of devcontainer.json and the image metadata label. (A
    /// finer origin, file or label, would be a new variant here.)
    Config,
    /// `--remote-env`.
    Cli,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("Unmatched argument format: remote-env must match <name>=<value>")]
    RemoteEnvFormat,
}

/// Parses one `--remote-env` value: split at the first `=`, the name must not be empty, the
/// value may be (`FOO=` sets FOO to the empty string).
pub fn parse_remote_env_arg(s: &str) -> Result<(String, String), EnvError> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(EnvError::RemoteEnvFormat),
    }
}

/// The composed environment, in `-e` order, with the layer each value came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalEnv {
    pub entries: Vec<(String, String, Layer)>,
    /// Names a config `null` removed and no later layer set again: the engine must not pass
    /// them on from the container's own environment either.
    pub removed: Vec<String>,
}

impl FinalEnv {
    /// `NAME=value` strings, in order.
    pub fn to_env_list(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(name, value, _)| format!("{name}={value}"))
            .collect()
    }

    /// The value and layer of `name`, if set.
    pub fn get(&self, name: &str) -> Option<(&str, Layer)> {
        self.entries
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, value, layer)| (value.as_str(), *layer))
    }
}

/// Builds the final env: `probe`, then `config_remote_env` (`None` removes), then
/// `cli_remote_env`.
pub fn compose(
    probe: &[(String, String)],
    config_remote_env: &[(String, Option<String>)],
    cli_remote_env: &[(String, String)],
) -> FinalEnv {
    let mut builder = Builder::default();
    for (name, value) in probe {
        builder.set(name, value, Layer::Probe);
    }
    for (name, value) in config_remote_env {
        match value {
            Some(value) => builder.set(name, value, Layer::Config),
            None => builder.remove(name),
        }
    }
    for (name, value) in cli_remote_env {
        builder.set(name, value, Layer::Cli);
    }
    let removed = builder
        .removed
        .into_iter()
        .filter(|name| !builder.index.contains_key(name))
        .collect();
    FinalEnv {
        entries: builder.slots.into_iter().flatten().collect(),
        removed,
    }
}

/// An insertion-ordered map whose removals leave holes, so positions stay valid.
#[derive(Default)]
struct Builder {
    slots: Vec<Option<(String, String, Layer)>>,
    index: HashMap<String, usize>,
    removed: Vec<String>,
}

impl Builder {
    fn set(&mut self, name: &str, value: &str, layer: Layer) {
        match self.index.get(name) {
            Some(&slot) => self.slots[slot] = Some((name.to_owned(), value.to_owned(), layer)),
            None => {
                self.index.insert(name.to_owned(), self.slots.len());
                self.slots
                    .push(Some((name.to_owned(), value.to_owned(), layer)));
            }
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(slot) = self.index.remove(name) {
            self.slots[slot] = None;
        }
        if !self.removed.iter().any(|removed| removed == name) {
            self.removed.push(name.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn config(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn remote_env_args() {
        assert_eq!(
            parse_remote_env_arg("FOO=bar"),
            Ok(("FOO".into(), "bar".into()))
        );
        assert_eq!(
            parse_remote_env_arg("FOO="),
            Ok(("FOO".into(), String::new()))
        );
        assert_eq!(
            parse_remote_env_arg("A=B=C"),
            Ok(("A".into(), "B=C".into()))
        );
        assert_eq!(
            parse_remote_env_arg("A=line1\nline2"),
            Ok(("A".into(), "line1\nline2".into()))
        );
        for bad in ["", "FOO", "=bar", "=", "==x"] {
            assert_eq!(
                parse_remote_env_arg(bad),
                Err(EnvError::RemoteEnvFormat),
                "{bad:?}"
            );
        }
        insta::assert_snapshot!(
            parse_remote_env_arg("FOO").unwrap_err(),
            @"Unmatched argument format: remote-env must match <name>=<value>"
        );
    }

    #[test]
    fn cli_wins_over_config_over_probe() {
        let env = compose(
            &pairs(&[("PATH", "/probe"), ("FOO", "probe"), ("HOME", "/root")]),
            &config(&[("FOO", Some("config")), ("BAR", Some("config"))]),
            &pairs(&[("FOO", "cli"), ("NEW", "cli")]),
        );
        assert_eq!(
            env.to_env_list(),
            [
                "PATH=/probe",
                "FOO=cli",
                "HOME=/root",
                "BAR=config",
                "NEW=cli"
            ]
        );
        assert_eq!(env.get("PATH"), Some(("/probe", Layer::Probe)));
        assert_eq!(env.get("FOO"), Some(("cli", Layer::Cli)));
        assert_eq!(env.get("BAR"), Some(("config", Layer::Config)));
        assert_eq!(env.get("MISSING"), None);
    }

    #[test]
    fn config_null_removes() {
        let env = compose(
            &pairs(&[("A", "1"), ("SECRET", "x"), ("B", "2")]),
            &config(&[("SECRET", None), ("NEVER_SET", None)]),
            &[],
        );
        assert_eq!(env.to_env_list(), ["A=1", "B=2"]);
    }

    #[test]
    fn removed_then_set_moves_to_end() {
        let env = compose(
            &pairs(&[("A", "1"), ("B", "2")]),
            &config(&[("A", None)]),
            &pairs(&[("A", "cli")]),
        );
        assert_eq!(env.to_env_list(), ["B=2", "A=cli"]);
    }

    #[test]
    fn empty_values_stay() {
        let env = compose(
            &pairs(&[("FOO", "probe")]),
            &config(&[("BAR", Some(""))]),
            &pairs(&[("FOO", "")]),
        );
        assert_eq!(env.to_env_list(), ["FOO=", "BAR="]);
        assert_eq!(env.get("FOO"), Some(("", Layer::Cli)));
    }

    #[test]
    fn first_position_last_value() {
        let env = compose(
            &pairs(&[("A", "1"), ("B", "1")]),
            &config(&[("B", Some("2")), ("C", Some("2")), ("B", Some("3"))]),
            &pairs(&[("C", "x"), ("C", "y")]),
        );
        assert_eq!(env.to_env_list(), ["A=1", "B=3", "C=y"]);
        assert_eq!(env.get("B").unwrap().1, Layer::Config);
    }

    #[test]
    fn nothing_gives_nothing() {
        assert_eq!(compose(&[], &[], &[]), FinalEnv::default());
    }
}
