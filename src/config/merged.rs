//! The reference's whole merged configuration (`mergeConfiguration`), key by key, as `--dry-run`
//! shows it.
//!
//! An emulation of its JavaScript (truthiness, `String()`, `Number()`, `Math.max`, `parseInt`,
//! `new Set`) for every key, mounts, ports, host requirements and GPUs included. Exec itself reads
//! none of it (its rules are in `metadata.rs`), but for one check: a `${containerEnv}` without a
//! name anywhere in it fails the reference's exec, and dcx's too ([`check_container_pass`]).

use serde_json::{Map, Value};

use std::path::Path;

use super::metadata::{js_number, js_string, metadata_entries, truthy};
use super::{ConfigError, Object, substitute_container};

/// The reference applies the container pass to its whole merged configuration, so a
/// `${containerEnv}` without a name in any key fails its exec, used by exec or not. Exec reads
/// only a few keys: this finds such an error elsewhere, at the cost of the whole merge only
/// when some value mentions `${containerEnv` at all.
pub fn check_container_pass(
    label_entries: &[Object],
    local: &Object,
    updates_only: bool,
    container_env: &[String],
    config_file: Option<&Path>,
) -> Result<(), ConfigError> {
    fn mentions(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains("${containerEnv"),
            Value::Array(items) => items.iter().any(mentions),
            Value::Object(map) => map.values().any(mentions),
            _ => false,
        }
    }
    let any = |object: &Object| object.values().any(mentions);
    if !label_entries.iter().any(any) && !any(local) {
        return Ok(());
    }
    let entries = metadata_entries(label_entries, local, updates_only);
    let mut merged = Value::Object(merge_configuration(local, &entries));
    substitute_container(&mut merged, container_env, config_file)
}

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

    #[test]
    fn a_nameless_container_env_anywhere_is_an_error() {
        let local =
            obj(json!({"postCreateCommand": "echo ${containerEnv}", "remoteEnv": {"P": "x"}}));
        let err = check_container_pass(
            &[],
            &local,
            false,
            &[],
            Some(Path::new("/w/devcontainer.json")),
        )
        .unwrap_err();
        insta::assert_snapshot!(err, @"'${containerEnv}' in devcontainer.json can not be resolved because no environment variable name is given.");
        let fine = obj(json!({"postCreateCommand": "echo ${containerEnv:HOME}"}));
        assert!(check_container_pass(&[], &fine, false, &[], None).is_ok());
        assert!(
            check_container_pass(
                &[obj(json!({"remoteUser": "u"}))],
                &Object::new(),
                true,
                &[],
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn the_container_pass_reaches_the_shown_remote_user() {
        let local =
            obj(json!({"remoteUser": "${containerEnv:U}", "userEnvProbe": "${containerEnv:P}"}));
        let mut merged = Value::Object(merge_configuration(
            &local,
            &metadata_entries(&[], &local, false),
        ));
        substitute_container(&mut merged, &["U=me".to_owned(), "P=none".to_owned()], None).unwrap();
        assert_eq!(merged["remoteUser"], "me");
    }
}
