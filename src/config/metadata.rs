//! The container's `devcontainer.metadata` label and the merge of its entries with the local
//! config into the effective configuration (section 4 of the reference notes).
//!
//! The merge mirrors the reference's `mergeConfiguration` key by key, including its JavaScript
//! truthiness ("last truthy entry wins" skips `""`, `0`, `false` and `null`), so that the
//! merged JSON can be shown as the reference would show it. Exec itself needs only
//! `remoteUser`, `userEnvProbe` and `remoteEnv` (and `workspaceFolder` from the local file).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::substitute::substitute_container;
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

/// Keys of the local config that the merged result does not copy.
const REPLACED_KEYS: [&str; 8] = [
    "customizations",
    "entrypoint",
    "onCreateCommand",
    "updateContentCommand",
    "postCreateCommand",
    "postStartCommand",
    "postAttachCommand",
    "shutdownAction",
];

const LIFECYCLE_HOOKS: [(&str, &str); 5] = [
    ("onCreateCommand", "onCreateCommands"),
    ("updateContentCommand", "updateContentCommands"),
    ("postCreateCommand", "postCreateCommands"),
    ("postStartCommand", "postStartCommands"),
    ("postAttachCommand", "postAttachCommands"),
];

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

/// What exec uses of the merged configuration.
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
    /// The whole merged configuration, for display.
    pub merged: Value,
}

impl EffectiveConfig {
    fn from_merged(merged: Object) -> Self {
        let remote_user = merged.get("remoteUser").and_then(scalar_string);
        let workspace_folder = match merged.get("workspaceFolder") {
            Some(Value::String(folder)) => Some(folder.clone()),
            _ => None,
        };
        let mut config = Self {
            remote_user,
            user_env_probe: None,
            remote_env: Vec::new(),
            workspace_folder,
            merged: Value::Object(merged),
        };
        config.derive_env();
        config
    }

    fn derive_env(&mut self) {
        self.user_env_probe = self.merged.get("userEnvProbe").and_then(scalar_string);
        self.remote_env = match self.merged.get("remoteEnv") {
            Some(Value::Object(env)) => env
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::Null => None,
                        other => Some(js_string(other)),
                    };
                    (name.clone(), value)
                })
                .collect(),
            _ => Vec::new(),
        };
    }

    /// Applies the container pass (`${containerEnv:…}` from `Config.Env`) to the merged
    /// configuration and derives `userEnvProbe` and `remoteEnv` again; `remoteUser` keeps its
    /// earlier value.
    pub fn substitute_container(
        &mut self,
        container_env: &[String],
        config_file: Option<&Path>,
    ) -> Result<(), ConfigError> {
        substitute_container(&mut self.merged, container_env, config_file)?;
        self.derive_env();
        Ok(())
    }
}

/// Selects the entries ([`metadata_entries`]) and merges them with the local config.
/// `updates_only` comes from [`updates_only`]; it must be false for a container without a
/// (non-empty) metadata label. Label entries are expected to be locally substituted already.
pub fn merge(label_entries: &[Object], local: &Object, updates_only: bool) -> EffectiveConfig {
    let entries = metadata_entries(label_entries, local, updates_only);
    EffectiveConfig::from_merged(merge_configuration(local, &entries))
}

/// The reference's `mergeConfiguration`: the local config minus the replaced keys, then every
/// merged key in the reference's order. A key the local config had keeps its place; a merged
/// key without a value is dropped.
pub fn merge_configuration(local: &Object, entries: &[Object]) -> Object {
    let mut merged: Object = local
        .iter()
        .filter(|(key, _)| !REPLACED_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let values = |key: &'static str| entries.iter().filter_map(move |entry| entry.get(key));
    let any = |key: &'static str| Value::Bool(values(key).any(truthy));
    let last_truthy = |key: &'static str| values(key).rfind(|v| truthy(v)).cloned();
    let last_bool = |key: &'static str| values(key).rfind(|v| v.is_boolean()).cloned();
    let assign = |key: &'static str| {
        let mut object = Map::new();
        for source in values(key) {
            if let Value::Object(source) = source {
                for (name, value) in source {
                    object.insert(name.clone(), value.clone());
                }
            }
        }
        Value::Object(object)
    };
    let collect = |key: &'static str| {
        let found: Vec<Value> = values(key).filter(|v| truthy(v)).cloned().collect();
        found
    };
    let non_empty = |list: Vec<Value>| (!list.is_empty()).then_some(Value::Array(list));

    let mut computed: Vec<(&str, Option<Value>)> = vec![
        ("init", Some(any("init"))),
        ("privileged", Some(any("privileged"))),
        ("capAdd", non_empty(union(values("capAdd")))),
        ("securityOpt", non_empty(union(values("securityOpt")))),
        ("entrypoints", non_empty(collect("entrypoint"))),
        ("mounts", non_empty(merge_mounts(values("mounts")))),
        (
            "customizations",
            merge_customizations(values("customizations")),
        ),
    ];
    for (hook, merged_key) in LIFECYCLE_HOOKS {
        computed.push((merged_key, Some(Value::Array(collect(hook)))));
    }
    computed.extend([
        ("waitFor", last_truthy("waitFor")),
        ("remoteUser", last_truthy("remoteUser")),
        ("containerUser", last_truthy("containerUser")),
        ("userEnvProbe", last_truthy("userEnvProbe")),
        ("remoteEnv", Some(assign("remoteEnv"))),
        ("containerEnv", Some(assign("containerEnv"))),
        ("overrideCommand", last_bool("overrideCommand")),
        ("portsAttributes", Some(assign("portsAttributes"))),
        ("otherPortsAttributes", last_truthy("otherPortsAttributes")),
        (
            "forwardPorts",
            non_empty(merge_forward_ports(values("forwardPorts"))),
        ),
        ("shutdownAction", last_truthy("shutdownAction")),
        ("updateRemoteUserUID", last_bool("updateRemoteUserUID")),
        ("hostRequirements", merge_host_requirements(entries)),
    ]);
    for (key, value) in computed {
        match value {
            Some(value) => {
                merged.insert(key.to_owned(), value);
            }
            None => {
                merged.shift_remove(key);
            }
        }
    }
    merged
}

/// JavaScript truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JavaScript's `String(value)` for a JSON value.
fn js_string(value: &Value) -> String {
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
fn js_number(f: f64) -> String {
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

/// A JavaScript number as a JSON value: integers as integers, NaN and infinities as `null`
/// (what `JSON.stringify` writes).
fn js_number_value(f: f64) -> Value {
    if !f.is_finite() {
        Value::Null
    } else if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation)]
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// The user-facing text of a string or number setting.
fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(js_string(value)),
        _ => None,
    }
}

/// Appends a truthy value the way `[].concat(...values)` does: arrays are spread one level.
fn concat<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let mut out = Vec::new();
    for value in values {
        match value {
            Value::Array(items) => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out
}

/// `new Set(...)` equality: primitives by value, objects and arrays never equal.
fn same(a: &Value, b: &Value) -> bool {
    !matches!(a, Value::Array(_) | Value::Object(_)) && a == b
}

/// The union of the truthy lists, first occurrence order.
fn union<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for value in concat(values.filter(|v| truthy(v))) {
        if !out.iter().any(|seen| same(seen, &value)) {
            out.push(value);
        }
    }
    out
}

/// The target a mount is deduplicated by. `None` is JavaScript's `undefined`, which is a key
/// like any other; `Unique` is a target no other mount can equal.
#[derive(PartialEq)]
enum MountKey {
    Target(Option<String>),
    Unique,
}

fn mount_key(mount: &Value) -> MountKey {
    match mount {
        // `a=b,target=c`: split on `,` then `=`, the last of target/dst/destination wins, and
        // only the text between the first and second `=` is the value.
        Value::String(text) => MountKey::Target(
            text.split(',')
                .filter_map(|part| {
                    let mut kv = part.split('=');
                    let key = kv.next().unwrap_or_default();
                    matches!(key, "target" | "dst" | "destination").then(|| kv.next())
                })
                .next_back()
                .flatten()
                .map(str::to_owned),
        ),
        Value::Object(object) => match object.get("target") {
            None => MountKey::Target(None),
            Some(Value::String(target)) => MountKey::Target(Some(target.clone())),
            Some(_) => MountKey::Unique,
        },
        _ => MountKey::Target(None),
    }
}

/// All mounts in entry order, deduplicated by target with the last one winning.
fn merge_mounts<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let all = concat(values.filter(|v| truthy(v)));
    let mut seen: Vec<MountKey> = Vec::new();
    let mut kept: Vec<Value> = Vec::new();
    for mount in all.into_iter().rev() {
        let key = mount_key(&mount);
        if key == MountKey::Unique || !seen.contains(&key) {
            seen.push(key);
            kept.push(mount);
        }
    }
    kept.reverse();
    kept
}

/// Per tool key, the list of every entry's value.
fn merge_customizations<'a>(values: impl Iterator<Item = &'a Value>) -> Option<Value> {
    let mut out = Map::new();
    for value in values {
        if let Value::Object(tools) = value {
            for (tool, setting) in tools {
                match out.get_mut(tool) {
                    Some(Value::Array(list)) => list.push(setting.clone()),
                    _ => {
                        out.insert(tool.clone(), Value::Array(vec![setting.clone()]));
                    }
                }
            }
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Concatenated forward ports; numbers become `localhost:N` to be deduplicated against the
/// same port written as text, and come back as numbers.
fn merge_forward_ports<'a>(values: impl Iterator<Item = &'a Value>) -> Vec<Value> {
    let mut unique: Vec<Value> = Vec::new();
    for port in concat(values.filter(|v| truthy(v))) {
        let port = match &port {
            Value::Number(_) => Value::String(format!("localhost:{}", js_string(&port))),
            _ => port,
        };
        if !unique.iter().any(|seen| same(seen, &port)) {
            unique.push(port);
        }
    }
    unique
        .into_iter()
        .map(|port| match &port {
            Value::String(text) if has_localhost_port(text) => {
                let rest: String = text.chars().skip("localhost:".len()).collect();
                js_number_value(parse_int(&rest))
            }
            _ => port,
        })
        .collect()
}

/// `/localhost:\d+/` (unanchored).
fn has_localhost_port(text: &str) -> bool {
    text.match_indices("localhost:").any(|(i, m)| {
        text[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// JavaScript's `parseInt(text, 10)`: leading whitespace, a sign, then digits; NaN if none.
fn parse_int(text: &str) -> f64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    sign * digits.parse::<f64>().unwrap_or(f64::NAN)
}

/// JavaScript's `Number(value)` for the values a host requirement may hold.
fn to_number(value: Option<&Value>) -> f64 {
    match value {
        None | Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) if s.trim().is_empty() => 0.0,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(f64::NAN),
        Some(_) => f64::NAN,
    }
}

/// `Math.max`, where NaN wins and no values give -Infinity.
fn js_max(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(f64::NEG_INFINITY, |acc, v| {
        if acc.is_nan() || v.is_nan() {
            f64::NAN
        } else {
            acc.max(v)
        }
    })
}

/// `/^(\d+)([tgmk]b)?$/` as bytes; anything else is 0.
fn parse_bytes(value: Option<&Value>) -> f64 {
    let text = match value {
        Some(v) if truthy(v) => js_string(v),
        _ => return 0.0,
    };
    let (digits, unit) = match text.len().checked_sub(2).map(|i| text.split_at(i)) {
        Some((digits, unit @ ("tb" | "gb" | "mb" | "kb"))) => (digits, Some(unit)),
        _ => (text.as_str(), None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return 0.0;
    }
    let n: f64 = digits.parse().unwrap_or(0.0);
    let scale = match unit {
        Some("tb") => 2f64.powi(40),
        Some("gb") => 2f64.powi(30),
        Some("mb") => 2f64.powi(20),
        Some("kb") => 2f64.powi(10),
        _ => 1.0,
    };
    n * scale
}

/// The maximum of cpus, memory and storage over the entries, and the GPU requirements merged.
fn merge_host_requirements(entries: &[Object]) -> Option<Value> {
    let requirements: Vec<Option<&Map<String, Value>>> = entries
        .iter()
        .map(|entry| entry.get("hostRequirements").and_then(Value::as_object))
        .collect();
    let field = |r: &Option<&Map<String, Value>>, key: &str| -> Option<Value> {
        r.and_then(|r| r.get(key)).cloned()
    };
    let cpus = js_max(requirements.iter().map(|r| {
        let v = field(r, "cpus");
        if v.as_ref().is_some_and(truthy) {
            to_number(v.as_ref())
        } else {
            0.0
        }
    }));
    let memory = js_max(
        requirements
            .iter()
            .map(|r| parse_bytes(field(r, "memory").as_ref())),
    );
    let storage = js_max(
        requirements
            .iter()
            .map(|r| parse_bytes(field(r, "storage").as_ref())),
    );
    let gpu = requirements
        .iter()
        .map(|r| field(r, "gpu"))
        .fold(None, merge_gpu);
    let num_truthy = |f: f64| f != 0.0 && !f.is_nan();
    if !(num_truthy(cpus)
        || num_truthy(memory)
        || num_truthy(storage)
        || gpu.as_ref().is_some_and(truthy))
    {
        return None;
    }
    let mut out = Map::new();
    out.insert("cpus".into(), js_number_value(cpus));
    if num_truthy(memory) {
        out.insert("memory".into(), Value::String(js_number(memory)));
    }
    if num_truthy(storage) {
        out.insert("storage".into(), Value::String(js_number(storage)));
    }
    if let Some(gpu) = gpu {
        out.insert("gpu".into(), gpu);
    }
    Some(Value::Object(out))
}

/// `mergeGpuRequirements`: `undefined`/`false` yield to the other side, two `"optional"` stay
/// optional, anything else becomes the maximum of cores and memory.
fn merge_gpu(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    let absent = |v: &Option<Value>| matches!(v, None | Some(Value::Bool(false)));
    if absent(&a) {
        return b;
    }
    if absent(&b) {
        return a;
    }
    let optional = Some(Value::String("optional".into()));
    if a == optional && b == optional {
        return optional;
    }
    let object = |v: &Option<Value>| match v {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    let (a, b) = (object(&a), object(&b));
    let cores_of = |o: &Map<String, Value>| {
        let v = o.get("cores");
        if v.is_some_and(truthy) {
            to_number(v)
        } else {
            0.0
        }
    };
    let cores = js_max([cores_of(&a), cores_of(&b)].into_iter());
    let memory = js_max([parse_bytes(a.get("memory")), parse_bytes(b.get("memory"))].into_iter());
    let mut out = Map::new();
    if cores != 0.0 && !cores.is_nan() {
        out.insert("cores".into(), js_number_value(cores));
    }
    if memory != 0.0 && !memory.is_nan() {
        out.insert("memory".into(), Value::String(js_number(memory)));
    }
    Some(Value::Object(out))
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

    fn keys(value: &Value) -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
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
    fn remote_env_merge_order() {
        let local = obj(
            json!({"image": "image", "remoteEnv": {"ENV1": "devcontainer.json", "ENV3": "devcontainer.json"}}),
        );
        let entries = [
            obj(
                json!({"remoteEnv": {"ENV1": "feature1", "ENV2": "feature1", "ENV3": "feature1", "ENV4": "feature1"}}),
            ),
            obj(json!({"remoteEnv": {"ENV1": "feature2", "ENV2": "feature2"}})),
            obj(json!({"remoteEnv": {"ENV1": "devcontainer.json", "ENV3": "devcontainer.json"}})),
        ];
        let merged = merge_configuration(&local, &entries);
        assert_eq!(
            merged["remoteEnv"],
            json!({"ENV1": "devcontainer.json", "ENV2": "feature2", "ENV3": "devcontainer.json", "ENV4": "feature1"})
        );
        assert_eq!(keys(&merged["remoteEnv"]), ["ENV1", "ENV2", "ENV3", "ENV4"]);
    }

    #[test]
    fn mounts_are_deduplicated_by_target() {
        let entries = [
            obj(json!({"mounts": [
                "source=source1,dst=target1,type=volume",
                "source=source2,target=target2,type=volume",
                "source=source3,destination=target3,type=volume",
            ]})),
            obj(json!({"mounts": [{"source": "source4", "target": "target1", "type": "volume"}]})),
            obj(json!({"mounts": [{"source": "source5", "target": "target3", "type": "volume"}]})),
        ];
        let merged = merge_configuration(&obj(json!({"image": "image"})), &entries);
        assert_eq!(
            merged["mounts"],
            json!([
                "source=source2,target=target2,type=volume",
                {"source": "source4", "target": "target1", "type": "volume"},
                {"source": "source5", "target": "target3", "type": "volume"},
            ])
        );
    }

    #[test]
    fn gpu_requirements_are_merged() {
        let local = obj(json!({"image": "image", "hostRequirements": {"gpu": "optional"}}));
        let entries = [
            obj(json!({"hostRequirements": {"gpu": true}})),
            obj(json!({"hostRequirements": {"gpu": {"cores": 4}}})),
            obj(json!({"hostRequirements": {"gpu": {"memory": "8gb"}}})),
        ];
        let merged = merge_configuration(&local, &entries);
        assert_eq!(
            merged["hostRequirements"]["gpu"],
            json!({"cores": 4, "memory": "8589934592"})
        );
    }

    #[test]
    fn host_requirements_take_the_maximum() {
        let entries = [
            obj(json!({"hostRequirements": {"cpus": 2, "memory": "4gb", "storage": "32gb"}})),
            obj(json!({"hostRequirements": {"cpus": 8, "memory": "512mb"}})),
            obj(json!({"hostRequirements": {"gpu": "optional"}})),
            obj(json!({"hostRequirements": {"gpu": "optional"}})),
        ];
        let merged = merge_configuration(&Object::new(), &entries);
        assert_eq!(
            merged["hostRequirements"],
            json!({"cpus": 8, "memory": "4294967296", "storage": "34359738368", "gpu": "optional"})
        );
        // No entries at all: Math.max() of nothing is -Infinity, which is truthy; JSON writes
        // the number as null and the strings keep the text.
        let merged = merge_configuration(&Object::new(), &[]);
        assert_eq!(
            merged["hostRequirements"],
            json!({"cpus": null, "memory": "-Infinity", "storage": "-Infinity"})
        );
        let merged = merge_configuration(&Object::new(), &[obj(json!({"remoteUser": "u"}))]);
        assert_eq!(merged.get("hostRequirements"), None);
    }

    #[test]
    fn the_whole_table() {
        let local = obj(json!({
            "name": "n",
            "remoteUser": "local-user",
            "postCreateCommand": "local",
            "customizations": {"vscode": {}},
            "entrypoint": "e",
            "shutdownAction": "none",
            "workspaceFolder": "/w",
        }));
        let entries = [
            obj(json!({
                "init": 0, "privileged": true, "capAdd": ["SYS_PTRACE", "NET_ADMIN"],
                "securityOpt": ["seccomp=unconfined"], "entrypoint": "/e1",
                "customizations": {"vscode": {"extensions": ["a"]}, "jetbrains": 1},
                "onCreateCommand": "c1", "postCreateCommand": "",
                "waitFor": "onCreateCommand", "remoteUser": "u1", "containerUser": "c1",
                "userEnvProbe": "loginShell", "containerEnv": {"A": "1"},
                "overrideCommand": false, "portsAttributes": {"3000": {"label": "x"}},
                "otherPortsAttributes": {"onAutoForward": "silent"},
                "forwardPorts": [3000, "db:5432"], "shutdownAction": "stopContainer",
                "updateRemoteUserUID": true,
            })),
            obj(json!({
                "init": true, "capAdd": ["NET_ADMIN", "SYS_ADMIN"], "entrypoint": "",
                "customizations": {"vscode": {"extensions": ["b"]}},
                "postCreateCommand": ["c", "2"], "remoteUser": "", "userEnvProbe": "none",
                "containerEnv": {"B": "2", "A": "3"}, "overrideCommand": "yes",
                "forwardPorts": ["localhost:3000", 8080], "shutdownAction": "",
            })),
        ];
        let merged = Value::Object(merge_configuration(&local, &entries));
        assert_eq!(
            merged,
            json!({
                "name": "n",
                "remoteUser": "u1",
                "workspaceFolder": "/w",
                "init": true,
                "privileged": true,
                "capAdd": ["SYS_PTRACE", "NET_ADMIN", "SYS_ADMIN"],
                "securityOpt": ["seccomp=unconfined"],
                "entrypoints": ["/e1"],
                "customizations": {"vscode": [{"extensions": ["a"]}, {"extensions": ["b"]}], "jetbrains": [1]},
                "onCreateCommands": ["c1"],
                "updateContentCommands": [],
                "postCreateCommands": [["c", "2"]],
                "postStartCommands": [],
                "postAttachCommands": [],
                "waitFor": "onCreateCommand",
                "containerUser": "c1",
                "userEnvProbe": "none",
                "remoteEnv": {},
                "containerEnv": {"A": "3", "B": "2"},
                "overrideCommand": false,
                "portsAttributes": {"3000": {"label": "x"}},
                "otherPortsAttributes": {"onAutoForward": "silent"},
                "forwardPorts": [3000, "db:5432", 8080],
                "shutdownAction": "stopContainer",
                "updateRemoteUserUID": true,
            })
        );
        // Local keys keep their place; merged keys follow in the reference's order.
        assert_eq!(
            keys(&merged)[..5],
            [
                "name",
                "remoteUser",
                "workspaceFolder",
                "init",
                "privileged"
            ]
        );
    }

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
        assert_eq!(effective.merged["remoteUser"], "me");
    }

    #[test]
    fn forward_ports_and_helpers() {
        let merged = merge_forward_ports(
            [
                json!([3000, "localhost:3000", "x-localhost:4000", "db:1", 3000.0]),
                json!(22),
            ]
            .iter(),
        );
        assert_eq!(merged, [json!(3000), json!(null), json!("db:1"), json!(22)]);
        assert_eq!(parse_bytes(Some(&json!("10kb"))), 10240.0);
        assert_eq!(parse_bytes(Some(&json!("10KB"))), 0.0);
        assert_eq!(parse_bytes(Some(&json!(7))), 7.0);
        assert_eq!(js_string(&json!(1e21)), "1e+21");
        assert_eq!(js_string(&json!(1.5e-7)), "1.5e-7");
        assert_eq!(js_string(&json!(-0.0)), "0");
        assert_eq!(js_number(2.0), "2");
        assert_eq!(js_number(0.1), "0.1");
    }
}
