//! The container's `devcontainer.metadata` label, merged with the local config for exec.
//!
//! Section 4 of the reference notes: the label's entries and the local config merge into the
//! effective configuration ([`EffectiveConfig`]). These are the exec rules: which entries take
//! part, and how the keys exec reads (`remoteUser`, `userEnvProbe`, `remoteEnv`; `workspaceFolder`
//! from the local file) merge, with the reference's JavaScript truthiness ("last truthy entry wins"
//! skips `""`, `0`, `false` and `null`). The merge of every key, shown by `--dry-run`, is
//! `merged.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::substitute::{
    ContainerEnv, substitute_container, substitute_container_str, substitute_devcontainer_id,
    substitute_devcontainer_id_str,
};
use super::{ConfigError, Object};

/// The label that carries the image/container metadata.
pub const METADATA_LABEL: &str = "devcontainer.metadata";

/// Keys of the local config that enter the entries when the container's id labels do not
/// vouch for it (`pickConfigProperties`).
const CONFIG_KEYS: [&str; 24] = [
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
    "waitFor",
    "customizations",
    "mounts",
    "containerEnv",
    "containerUser",
    "init",
    "privileged",
    "capAdd",
    "securityOpt",
    "remoteUser",
    "userEnvProbe",
    "remoteEnv",
    "overrideCommand",
    "portsAttributes",
    "otherPortsAttributes",
    "forwardPorts",
    "shutdownAction",
    "updateRemoteUserUID",
    "hostRequirements",
];

/// Keys of the local config applied on top of a container created from it
/// (`pickUpdateableConfigProperties`).
const UPDATEABLE_KEYS: [&str; 3] = ["remoteUser", "userEnvProbe", "remoteEnv"];

/// Parses the label's value into entries. An array gives its object elements, a single object
/// one entry; anything else gives none and a debug message. A missing or empty label gives
/// none and no message.
pub fn parse_metadata_label(raw: Option<&str>) -> (Vec<Object>, Option<String>) {
    let Some(raw) = raw.filter(|raw| !raw.is_empty()) else {
        return (Vec::new(), None);
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Array(items)) => (
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::Object(object) => Some(object),
                    _ => None,
                })
                .collect(),
            None,
        ),
        Ok(Value::Object(object)) => (vec![object], None),
        Ok(_) => (Vec::new(), Some(format!("Invalid image metadata: {raw}"))),
        Err(err) => (
            Vec::new(),
            Some(format!("Error parsing image metadata: {err}")),
        ),
    }
}

/// Whether only `remoteUser`, `userEnvProbe` and `remoteEnv` of the local config apply on top
/// of the label entries: the container has a non-empty metadata label and a non-empty label for
/// every id-label *name* (the values are not compared). `id_labels` are `NAME=value` strings;
/// those without `=` are ignored.
pub fn updates_only<S: AsRef<str>>(
    container_labels: &BTreeMap<String, String>,
    id_labels: &[S],
) -> bool {
    let present = |name: &str| container_labels.get(name).is_some_and(|v| !v.is_empty());
    present(METADATA_LABEL)
        && id_labels
            .iter()
            .filter_map(|label| label.as_ref().split_once('='))
            .all(|(name, _)| present(name))
}

/// The entries that take part in the merge: the label entries, then the picked keys of the
/// local config; empty objects dropped.
pub fn metadata_entries(
    label_entries: &[Object],
    local: &Object,
    updates_only: bool,
) -> Vec<Object> {
    let keys: &[&str] = if updates_only {
        &UPDATEABLE_KEYS
    } else {
        &CONFIG_KEYS
    };
    let picked: Object = keys
        .iter()
        .filter_map(|&key| local.get(key).map(|value| (key.to_owned(), value.clone())))
        .collect();
    label_entries
        .iter()
        .cloned()
        .chain(std::iter::once(picked))
        .filter(|entry| !entry.is_empty())
        .collect()
}

/// What exec uses of the merged configuration: the exec rules of the reference's merge for
/// the three keys exec reads (`remoteUser`, `userEnvProbe`, `remoteEnv`), computed straight
/// from the entries. The merge of every other key, for display, is [`super::merged`].
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    /// The last truthy `remoteUser`. Chosen before the container pass, as the reference does,
    /// so `${containerEnv:…}` in it stays as written.
    pub remote_user: Option<String>,
    /// The last truthy `userEnvProbe`.
    pub user_env_probe: Option<String>,
    /// `remoteEnv` merged per key: first-insertion order, later entries win, `null` kept as
    /// `None`, other non-strings written as JavaScript would.
    pub remote_env: Vec<(String, Option<String>)>,
    /// The local config's `workspaceFolder`, when it is a string.
    pub workspace_folder: Option<String>,
    /// `remoteEnv` as merged, before it is written as text: substitution walks these values,
    /// as the reference's walks its merged configuration.
    remote_env_values: Vec<(String, Value)>,
}

impl EffectiveConfig {
    fn from_entries(entries: &[Object], local: &Object) -> Self {
        let values = |key: &'static str| entries.iter().filter_map(move |entry| entry.get(key));
        let last_truthy = |key: &'static str| values(key).rfind(|v| truthy(v));
        let mut remote_env = Map::new();
        for source in values("remoteEnv") {
            if let Value::Object(source) = source {
                for (name, value) in source {
                    remote_env.insert(name.clone(), value.clone());
                }
            }
        }
        let mut config = Self {
            remote_user: last_truthy("remoteUser").and_then(scalar_string),
            user_env_probe: last_truthy("userEnvProbe").and_then(scalar_string),
            remote_env: Vec::new(),
            workspace_folder: match local.get("workspaceFolder") {
                Some(Value::String(folder)) => Some(folder.clone()),
                _ => None,
            },
            remote_env_values: remote_env.into_iter().collect(),
        };
        config.derive_env();
        config
    }

    /// `remoteEnv` as text from its values (`null` kept as `None`).
    fn derive_env(&mut self) {
        self.remote_env = self
            .remote_env_values
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Null => None,
                    other => Some(js_string(other)),
                };
                (name.clone(), value)
            })
            .collect();
    }

    /// Applies the `${devcontainerId}` pass to the same values as the container pass.
    pub fn substitute_devcontainer_id(&mut self, id: &str) {
        for text in self.substituted_strings() {
            *text = substitute_devcontainer_id_str(text, id);
        }
        for (_, value) in &mut self.remote_env_values {
            substitute_devcontainer_id(value, id);
        }
        self.derive_env();
    }

    fn substituted_strings(&mut self) -> impl Iterator<Item = &mut String> {
        self.user_env_probe
            .iter_mut()
            .chain(self.workspace_folder.iter_mut())
    }

    /// Applies the container pass (`${containerEnv:…}` from `Config.Env`) to `userEnvProbe`,
    /// `remoteEnv` and `workspaceFolder`; `remoteUser` keeps its earlier value.
    pub fn substitute_container(
        &mut self,
        container_env: &[String],
        config_file: Option<&Path>,
    ) -> Result<(), ConfigError> {
        let env = ContainerEnv::from_list(container_env);
        for text in self.substituted_strings() {
            *text = substitute_container_str(text, &env, config_file)?;
        }
        for (_, value) in &mut self.remote_env_values {
            substitute_container(value, container_env, config_file)?;
        }
        self.derive_env();
        Ok(())
    }
}

/// Selects the entries ([`metadata_entries`]) and merges what exec uses of them.
/// `updates_only` comes from [`updates_only`]; it must be false for a container without a
/// (non-empty) metadata label. Label entries are expected to be locally substituted already.
pub fn merge(label_entries: &[Object], local: &Object, updates_only: bool) -> EffectiveConfig {
    let entries = metadata_entries(label_entries, local, updates_only);
    EffectiveConfig::from_entries(&entries, local)
}

/// JavaScript truthiness of a JSON value.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(value)` for a JSON value.
pub(super) fn js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => js_number(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        // Array.prototype.join: null (and undefined) elements become "".
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => String::new(),
                other => js_string(other),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// JavaScript's `String(number)`: the shortest text that reads back the same, integers
/// without a fraction, exponent notation from 1e21 up and below 1e-6.
pub(super) fn js_number(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else if f == 0.0 {
        "0".to_owned()
    } else if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-6) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else if f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// The user-facing text of a string or number setting.
pub(super) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(js_string(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    // imageMetadata.test.ts: reading entries from a container.

    #[test]
    fn label_with_id_labels_adds_the_updateable_keys() {
        let (label, msg) = parse_metadata_label(Some(
            &json!({"id": "testId", "remoteUser": "testMetadataUser"}).to_string(),
        ));
        assert_eq!(msg, None);
        let labels = BTreeMap::from([
            ("testIdLabel".to_owned(), "testIdLabelValue".to_owned()),
            (METADATA_LABEL.to_owned(), "x".to_owned()),
        ]);
        assert!(updates_only(&labels, &["testIdLabel=testIdLabelValue"]));
        let local = obj(json!({"image": "image", "remoteUser": "testConfigUser"}));
        let entries = metadata_entries(&label, &local, true);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["id"], "testId");
        assert_eq!(entries[0]["remoteUser"], "testMetadataUser");
        assert_eq!(
            Value::Object(entries[1].clone()),
            json!({"remoteUser": "testConfigUser"})
        );
    }

    #[test]
    fn label_without_id_labels_adds_the_config_keys() {
        let labels = BTreeMap::from([(METADATA_LABEL.to_owned(), "x".to_owned())]);
        assert!(!updates_only(&labels, &["testIdLabel=testIdLabelValue"]));
        let (label, _) =
            parse_metadata_label(Some(r#"{"id":"testId","remoteUser":"testMetadataUser"}"#));
        let local = obj(json!({"image": "image", "remoteUser": "testConfigUser", "init": false}));
        let entries = metadata_entries(&label, &local, false);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["remoteUser"], "testMetadataUser");
        assert_eq!(
            Value::Object(entries[1].clone()),
            json!({"init": false, "remoteUser": "testConfigUser"})
        );
    }

    #[test]
    fn label_remote_env_is_updated_by_the_config() {
        let (label, _) = parse_metadata_label(Some(r#"{"remoteEnv":{"FOO":"bar"}}"#));
        let local = obj(json!({"image": "image", "remoteEnv": {"FOO": "baz", "BAR": "foo"}}));
        let entries = metadata_entries(&label, &local, true);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["remoteEnv"], json!({"FOO": "bar"}));
        assert_eq!(entries[1]["remoteEnv"], json!({"FOO": "baz", "BAR": "foo"}));
        let merged = merge(&label, &local, true);
        assert_eq!(
            merged.remote_env,
            [
                ("FOO".to_owned(), Some("baz".to_owned())),
                ("BAR".to_owned(), Some("foo".to_owned()))
            ]
        );
    }

    #[test]
    fn no_label_falls_back_to_the_config() {
        let (label, msg) = parse_metadata_label(None);
        assert!(label.is_empty() && msg.is_none());
        assert!(!updates_only(&BTreeMap::new(), &[] as &[&str]));
        let local = obj(json!({"image": "image", "remoteUser": "testConfigUser"}));
        let entries = metadata_entries(&label, &local, false);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].get("id"), None);
        assert_eq!(entries[0]["remoteUser"], "testConfigUser");
    }

    #[test]
    fn id_label_presence_checks_names_not_values() {
        let labels = BTreeMap::from([
            (METADATA_LABEL.to_owned(), "[]".to_owned()),
            ("a".to_owned(), "other".to_owned()),
            ("b".to_owned(), String::new()),
        ]);
        assert!(updates_only(&labels, &["a=mine", "no-equals-sign"]));
        assert!(!updates_only(&labels, &["a=mine", "b=x"]));
        let mut empty_label = labels.clone();
        empty_label.insert(METADATA_LABEL.to_owned(), String::new());
        assert!(!updates_only(&empty_label, &["a=mine"]));
    }

    #[test]
    fn label_parsing() {
        let (entries, msg) = parse_metadata_label(Some(r#"[{"a":1},{"b":2}]"#));
        assert_eq!(entries.len(), 2);
        assert_eq!(msg, None);
        let (entries, msg) = parse_metadata_label(Some(""));
        assert!(entries.is_empty() && msg.is_none());
        let (entries, msg) = parse_metadata_label(Some("null"));
        assert!(entries.is_empty());
        insta::assert_snapshot!(msg.unwrap(), @"Invalid image metadata: null");
        let (_, msg) = parse_metadata_label(Some("\"text\""));
        insta::assert_snapshot!(msg.unwrap(), @r#"Invalid image metadata: "text""#);
        let (entries, msg) = parse_metadata_label(Some("{oops"));
        assert!(entries.is_empty());
        insta::assert_snapshot!(msg.unwrap(), @"Error parsing image metadata: key must be a string at line 1 column 2");
    }

    // imageMetadata.test.ts: mergeConfiguration.

    #[test]
    fn effective_values() {
        let label = [obj(
            json!({"remoteUser": "vscode", "remoteEnv": {"N": null, "I": 1, "F": 1.5, "B": true, "L": [1, null, "x"], "O": {}}}),
        )];
        let local = obj(
            json!({"remoteEnv": {"N": "set", "P": "${containerEnv:PATH}"}, "workspaceFolder": "/ws"}),
        );
        let mut effective = merge(&label, &local, true);
        assert_eq!(effective.remote_user.as_deref(), Some("vscode"));
        assert_eq!(effective.workspace_folder.as_deref(), Some("/ws"));
        assert_eq!(effective.user_env_probe, None);
        let env = |e: &EffectiveConfig| -> Vec<String> {
            e.remote_env
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("<none>")))
                .collect()
        };
        assert_eq!(
            env(&effective),
            [
                "N=set",
                "I=1",
                "F=1.5",
                "B=true",
                "L=1,,x",
                "O=[object Object]",
                "P=${containerEnv:PATH}"
            ]
        );
        effective
            .substitute_container(&["PATH=/usr/bin".to_owned()], None)
            .unwrap();
        assert_eq!(env(&effective).last().unwrap(), "P=/usr/bin");

        let effective = merge(
            &[obj(json!({"remoteEnv": {"X": "1", "Y": "2"}}))],
            &obj(json!({"remoteEnv": {"X": null}})),
            true,
        );
        assert_eq!(env(&effective), ["X=<none>", "Y=2"]);
    }

    #[test]
    fn remote_user_is_chosen_before_the_container_pass() {
        let local =
            obj(json!({"remoteUser": "${containerEnv:U}", "userEnvProbe": "${containerEnv:P}"}));
        let mut effective = merge(&[], &local, false);
        effective
            .substitute_container(&["U=me".to_owned(), "P=none".to_owned()], None)
            .unwrap();
        assert_eq!(effective.remote_user.as_deref(), Some("${containerEnv:U}"));
        assert_eq!(effective.user_env_probe.as_deref(), Some("none"));
    }
}
