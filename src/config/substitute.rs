//! `${…}` variable substitution (section 5 of the reference notes) and the `devcontainerId`.
//!
//! A variable is `${`, the shortest run of characters without a line break, and `}`. There is
//! no escaping and no nesting. The text inside is split on every `:`: the first part names the
//! variable, the second (if any) is the default of the `…Env` variables, the rest is dropped.
//! Unknown variables stay as they are. Substitution walks the string values of objects and
//! arrays; keys and non-string values are never touched. Three passes exist: local (host env,
//! workspace folders), container (`${containerEnv:…}` from the container's `Config.Env`) and
//! `${devcontainerId}`, which the reference's exec never applies and dcx's does (a divergence
//! listed in DIVERGENCES.md).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ConfigError;

/// What the local pass substitutes from.
#[derive(Debug, Clone, Default)]
pub struct LocalContext {
    /// The host environment (`${localEnv:…}`, `${env:…}`).
    pub env: HashMap<String, String>,
    /// `${localWorkspaceFolder}`: the workspace root, when there is a workspace.
    pub workspace_folder: Option<PathBuf>,
    /// `${containerWorkspaceFolder}`, itself substituted before use.
    pub container_workspace_folder: Option<String>,
    /// The config path; its base name appears in error messages.
    pub config_file: Option<PathBuf>,
}

impl LocalContext {
    /// A context that knows only the host environment, as when no config was read.
    pub fn new(env: HashMap<String, String>) -> Self {
        Self {
            env,
            ..Self::default()
        }
    }

    /// The process environment, with non-UTF-8 text replaced as Node would.
    pub fn process_env() -> HashMap<String, String> {
        std::env::vars_os()
            .map(|(name, value)| {
                (
                    name.to_string_lossy().into_owned(),
                    value.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }
}

/// The container's environment for `${containerEnv:…}`, from `Config.Env` (`NAME=value`
/// entries; split at the first `=`, entries without one ignored, a later duplicate wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEnv(HashMap<String, String>);

impl ContainerEnv {
    pub fn from_list<S: AsRef<str>>(entries: &[S]) -> Self {
        Self(
            entries
                .iter()
                .filter_map(|entry| entry.as_ref().split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        )
    }
}

/// The local pass over a whole value.
pub fn substitute_local(value: &mut Value, ctx: &LocalContext) -> Result<(), ConfigError> {
    let local = Local::new(ctx)?;
    walk(value, &mut |text| local.apply(text))
}

/// The local pass over one string.
pub fn substitute_local_str(text: &str, ctx: &LocalContext) -> Result<String, ConfigError> {
    Local::new(ctx)?.apply(text)
}

/// The container pass over a whole value. `container_env` holds `NAME=value` entries.
pub fn substitute_container(
    value: &mut Value,
    container_env: &[String],
    config_file: Option<&Path>,
) -> Result<(), ConfigError> {
    let env = ContainerEnv::from_list(container_env);
    walk(value, &mut |text| {
        substitute_container_str(text, &env, config_file)
    })
}

/// The container pass over one string.
pub fn substitute_container_str(
    text: &str,
    env: &ContainerEnv,
    config_file: Option<&Path>,
) -> Result<String, ConfigError> {
    replace_variables(text, |matched, name, args| match name {
        "containerEnv" => lookup(&env.0, args, matched, config_file).map(Some),
        _ => Ok(None),
    })
}

/// The `${devcontainerId}` pass over a whole value.
pub fn substitute_devcontainer_id(value: &mut Value, id: &str) {
    let result: Result<(), ConfigError> = walk(value, &mut |text| {
        Ok(substitute_devcontainer_id_str(text, id))
    });
    debug_assert!(result.is_ok());
}

/// The `${devcontainerId}` pass over one string (arguments after the name are ignored).
pub fn substitute_devcontainer_id_str(text: &str, id: &str) -> String {
    let result: Result<String, ConfigError> = replace_variables(text, |_, name, _| {
        Ok((name == "devcontainerId").then(|| id.to_owned()))
    });
    result.unwrap_or_else(|_| text.to_owned())
}

/// Turns `NAME=value` id labels into the map [`devcontainer_id`] hashes: split at the first
/// `=`, entries without one ignored, a later duplicate wins.
pub fn id_labels_to_map<S: AsRef<str>>(labels: &[S]) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter_map(|label| label.as_ref().split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The dev container id of a set of id labels: SHA-256 of their JSON (keys sorted in UTF-16
/// order, no whitespace), written in base 32 (`0-9a-v`) and padded to 52 digits.
pub fn devcontainer_id(labels: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&String> = labels.keys().collect();
    names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    let mut json = String::from("{");
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&Value::from(name.as_str()).to_string());
        json.push(':');
        json.push_str(&Value::from(labels[name].as_str()).to_string());
    }
    json.push('}');
    base32(&Sha256::digest(json.as_bytes()))
}

/// A 256-bit big-endian number in base 32, 52 digits. As 32 is 2^5 this reads the number
/// (widened to 260 bits) five bits at a time from the top; no division is needed.
fn base32(digest: &[u8]) -> String {
    const DIGITS: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let bits = digest.len() * 8;
    let width = bits.div_ceil(5) * 5;
    let pad = width - bits;
    let bit = |i: usize| -> usize {
        if i < pad {
            return 0;
        }
        let i = i - pad;
        usize::from(digest[i / 8] >> (7 - i % 8) & 1)
    };
    (0..width / 5)
        .map(|digit| {
            let value = (0..5).fold(0, |acc, k| acc << 1 | bit(digit * 5 + k));
            char::from(DIGITS[value])
        })
        .collect()
}

/// The local variables with `${containerWorkspaceFolder}` already resolved.
struct Local<'a> {
    ctx: &'a LocalContext,
    container_workspace_folder: Option<String>,
}

impl<'a> Local<'a> {
    fn new(ctx: &'a LocalContext) -> Result<Self, ConfigError> {
        let mut local = Local {
            ctx,
            container_workspace_folder: ctx.container_workspace_folder.clone(),
        };
        // The folder is resolved with the context that still holds its raw text, and only when
        // it is non-empty.
        if let Some(folder) = ctx
            .container_workspace_folder
            .as_deref()
            .filter(|f| !f.is_empty())
        {
            local.container_workspace_folder = Some(local.apply(folder)?);
        }
        Ok(local)
    }

    fn apply(&self, text: &str) -> Result<String, ConfigError> {
        let ctx = self.ctx;
        let workspace = ctx
            .workspace_folder
            .as_deref()
            .map(|path| path.to_string_lossy());
        let container = self.container_workspace_folder.as_deref();
        replace_variables(text, |matched, name, args| {
            Ok(match name {
                "env" | "localEnv" => {
                    Some(lookup(&ctx.env, args, matched, ctx.config_file.as_deref())?)
                }
                "localWorkspaceFolder" => workspace.as_deref().map(str::to_owned),
                "localWorkspaceFolderBasename" => {
                    workspace.as_deref().map(|w| posix_basename(w).to_owned())
                }
                "containerWorkspaceFolder" => container.map(str::to_owned),
                "containerWorkspaceFolderBasename" => {
                    container.map(|c| posix_basename(c).to_owned())
                }
                _ => None,
            })
        })
    }
}

/// An `…Env` variable: the value if set (even empty), else the first argument after the name,
/// else `""`. No name at all is an error.
fn lookup(
    env: &HashMap<String, String>,
    args: &[&str],
    matched: &str,
    config_file: Option<&Path>,
) -> Result<String, ConfigError> {
    let Some(name) = args.first() else {
        return Err(ConfigError::MissingVariableName {
            matched: matched.to_owned(),
            config_file: config_file.map(|path| {
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
        });
    };
    Ok(env
        .get(*name)
        .cloned()
        .or_else(|| args.get(1).map(|default| (*default).to_owned()))
        .unwrap_or_default())
}

/// Node's `path.posix.basename`: the last segment, trailing slashes ignored.
fn posix_basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or("")
}

/// Applies `f` to every string in `value`, in place.
fn walk(
    value: &mut Value,
    f: &mut dyn FnMut(&str) -> Result<String, ConfigError>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(text) => {
            if text.contains("${") {
                *text = f(text)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, f)?;
            }
        }
        Value::Object(object) => {
            for (_, item) in object.iter_mut() {
                walk(item, f)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// The characters JavaScript's `.` does not match.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Replaces each `${…}` in `text` by `replace(matched, name, args)`, or keeps it when that
/// gives `None`. A `${` whose `}` is not on the same line is not a variable, but a later `${`
/// inside it may be.
fn replace_variables<F>(text: &str, mut replace: F) -> Result<String, ConfigError>
where
    F: FnMut(&str, &str, &[&str]) -> Result<Option<String>, ConfigError>,
{
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let body = &candidate[2..];
        let stop = body
            .char_indices()
            .find(|&(_, c)| c == '}' || is_line_terminator(c));
        match stop {
            Some((end, '}')) => {
                let matched = &candidate[..end + 3];
                let mut parts = body[..end].split(':');
                let name = parts.next().unwrap_or_default();
                let args: Vec<&str> = parts.collect();
                match replace(matched, name, &args)? {
                    Some(value) => out.push_str(&value),
                    None => out.push_str(matched),
                }
                rest = &candidate[end + 3..];
            }
            // No `}` before the line ends: no `${` up to there can close either, so the whole
            // stretch is kept as it is (one pass over the text, however many `${` it holds).
            Some((at, _)) => {
                out.push_str(&candidate[..at + 2]);
                rest = &candidate[at + 2..];
            }
            None => {
                out.push_str(candidate);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The context of the reference's unit tests.
    fn ctx(env: &[(&str, &str)]) -> LocalContext {
        LocalContext {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            workspace_folder: Some("/foo/bar".into()),
            container_workspace_folder: Some("/baz/blue".into()),
            config_file: Some("/foo/bar/baz.json".into()),
        }
    }

    fn local(text: &str, ctx: &LocalContext) -> String {
        substitute_local_str(text, ctx).unwrap()
    }

    // variableSubstitution.test.ts, case by case.

    #[test]
    fn unclosed_variables_take_one_pass() {
        let ctx = ctx(&[("A", "a")]);
        // Half a million `${` with no `}`: linear, so this is instant.
        let text = "${".repeat(500_000);
        assert_eq!(local(&text, &ctx), text);
        // An unclosed one does not hide a later line's variable.
        assert_eq!(local("${x\n${localEnv:A}", &ctx), "${x\na");
        // As the reference's lazy match: `${` up to the first `}` is one (unknown) variable.
        assert_eq!(local("${${localEnv:A}", &ctx), "${${localEnv:A}");
    }

    #[test]
    fn environment_variables() {
        let ctx = ctx(&[("baz", "somevalue")]);
        assert_eq!(local("bar${env:baz}bar", &ctx), "barsomevaluebar");
    }

    #[test]
    fn local_workspace_folder() {
        let ctx = ctx(&[("baz", "somevalue")]);
        assert_eq!(
            local("bar${localWorkspaceFolder}bar", &ctx),
            "bar/foo/barbar"
        );
    }

    #[test]
    fn container_workspace_folder() {
        let ctx = ctx(&[("baz", "somevalue")]);
        assert_eq!(
            local("bar${containerWorkspaceFolder}bar", &ctx),
            "bar/baz/bluebar"
        );
    }

    #[test]
    fn local_workspace_folder_basename_inside_container_workspace_folder() {
        let mut ctx = ctx(&[("baz", "somevalue")]);
        ctx.workspace_folder = Some("/foo/red".into());
        ctx.container_workspace_folder = Some("/baz/${localWorkspaceFolderBasename}".into());
        assert_eq!(
            local("bar${containerWorkspaceFolder}bar", &ctx),
            "bar/baz/redbar"
        );
    }

    #[test]
    fn default_value_when_unset() {
        assert_eq!(
            local("bar${localEnv:baz:default}bar", &ctx(&[])),
            "bardefaultbar"
        );
    }

    #[test]
    fn empty_when_unset_without_default() {
        assert_eq!(local("bar${localEnv:baz}bar", &ctx(&[])), "barbar");
    }

    #[test]
    fn value_wins_over_default_when_set() {
        let ctx = ctx(&[("baz", "somevalue")]);
        assert_eq!(
            local("bar${localEnv:baz:default}bar", &ctx),
            "barsomevaluebar"
        );
    }

    #[test]
    fn parts_after_the_default_are_dropped() {
        assert_eq!(
            local("bar${localEnv:baz:default:a:b:c}bar", &ctx(&[])),
            "bardefaultbar"
        );
    }

    #[test]
    fn container_env_with_default() {
        let env = ContainerEnv::from_list(&["PATH=/bin", "A=1=2", "NOEQ", "A=x=y"]);
        let sub = |t: &str| substitute_container_str(t, &env, None).unwrap();
        assert_eq!(sub("${containerEnv:baz:default}"), "default");
        assert_eq!(sub("${containerEnv:PATH}:/x"), "/bin:/x");
        assert_eq!(sub("${containerEnv:A}"), "x=y");
        assert_eq!(sub("${containerEnv:NOEQ}"), "");
        // Only containerEnv belongs to this pass.
        assert_eq!(sub("${localEnv:PATH}"), "${localEnv:PATH}");
    }

    #[test]
    fn set_but_empty_is_not_unset() {
        assert_eq!(local("[${localEnv:E:dflt}]", &ctx(&[("E", "")])), "[]");
    }

    #[test]
    fn pattern_rules() {
        let ctx = ctx(&[("a", "A"), ("b", "B")]);
        // Shortest match, no nesting.
        assert_eq!(local("${localEnv:a:${b}}", &ctx), "A}");
        // Unknown variables, empty braces and devcontainerId stay verbatim.
        assert_eq!(
            local("${unknown} ${} ${devcontainerId}", &ctx),
            "${unknown} ${} ${devcontainerId}"
        );
        // A line break ends a candidate; a later one on the next line still counts.
        assert_eq!(
            local("${localEnv:a\n${localEnv:b}", &ctx),
            "${localEnv:a\nB"
        );
        assert_eq!(local("$${localEnv:a}$", &ctx), "$A$");
        assert_eq!(local("${localEnv:}", &ctx), "");
        assert_eq!(local("é${env:a}ü", &ctx), "éAü");
        assert_eq!(local("${localEnv:a", &ctx), "${localEnv:a");
    }

    #[test]
    fn basenames() {
        let mut ctx = ctx(&[]);
        ctx.workspace_folder = Some("/w/proj".into());
        ctx.container_workspace_folder = Some("/workspaces/proj/sub/".into());
        assert_eq!(
            local(
                "${localWorkspaceFolderBasename} ${containerWorkspaceFolderBasename}",
                &ctx
            ),
            "proj sub"
        );
    }

    #[test]
    fn without_workspace_the_folders_stay_verbatim() {
        let ctx = LocalContext::new(HashMap::from([("X".into(), "x".into())]));
        assert_eq!(
            local(
                "${localWorkspaceFolder}${localWorkspaceFolderBasename}${containerWorkspaceFolder}${containerWorkspaceFolderBasename}${env:X}",
                &ctx
            ),
            "${localWorkspaceFolder}${localWorkspaceFolderBasename}${containerWorkspaceFolder}${containerWorkspaceFolderBasename}x"
        );
    }

    #[test]
    fn empty_container_workspace_folder_substitutes_as_empty() {
        let mut ctx = ctx(&[]);
        ctx.container_workspace_folder = Some(String::new());
        assert_eq!(local("[${containerWorkspaceFolder}]", &ctx), "[]");
    }

    #[test]
    fn walks_values_not_keys() {
        let mut value = json!({
            "${env:a}": "${env:a}",
            "list": ["${env:a}", 1, null, true, {"k": "${env:a}"}],
            "n": 2.5,
        });
        substitute_local(&mut value, &ctx(&[("a", "A")])).unwrap();
        assert_eq!(
            value,
            json!({"${env:a}": "A", "list": ["A", 1, null, true, {"k": "A"}], "n": 2.5})
        );
    }

    #[test]
    fn missing_variable_name_errors() {
        let err = substitute_local_str("x${localEnv}", &ctx(&[])).unwrap_err();
        insta::assert_snapshot!(err, @"'${localEnv}' in baz.json can not be resolved because no environment variable name is given.");
        let err = substitute_local_str("${env}", &LocalContext::default()).unwrap_err();
        insta::assert_snapshot!(err, @"'${env}' can not be resolved because no environment variable name is given.");
        let mut value = json!({"remoteEnv": {"P": "${containerEnv}"}});
        let err = substitute_container(
            &mut value,
            &[],
            Some(Path::new("/w/.devcontainer/devcontainer.json")),
        )
        .unwrap_err();
        insta::assert_snapshot!(err, @"'${containerEnv}' in devcontainer.json can not be resolved because no environment variable name is given.");
        // In the container workspace folder itself.
        let mut ctx = ctx(&[]);
        ctx.container_workspace_folder = Some("/w/${localEnv}".into());
        assert!(substitute_local_str("plain", &ctx).is_err());
    }

    #[test]
    fn devcontainer_id_pass() {
        let mut value = json!({"a": "${devcontainerId}-${devcontainerId:x}", "b": "${localEnv:X}"});
        substitute_devcontainer_id(&mut value, "ID");
        assert_eq!(value, json!({"a": "ID-ID", "b": "${localEnv:X}"}));
    }

    fn id(pairs: &[(&str, &str)]) -> String {
        devcontainer_id(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn devcontainer_id_vectors() {
        assert_eq!(
            id(&[("a", "b")]),
            "1mqafr5h2iu6dhh3k1m4vtnuhml2uiec4s7bntt1v0f25ao63i1n"
        );
        assert_eq!(
            id(&[("c", "d"), ("a", "b")]),
            "1e2sfmkjt1sga649hgk0s5f3u6nlqhlv9al481r91s7gkeo32p3o"
        );
        assert_eq!(
            id(&[
                ("devcontainer.local_folder", "/tmp/dcx/ws1"),
                (
                    "devcontainer.config_file",
                    "/tmp/dcx/ws1/.devcontainer/devcontainer.json"
                ),
            ]),
            "0umsq6mh80lad5njftc6bba8uhbkbqqppp6lat9kt6cunb20i0di"
        );
        assert_eq!(
            id(&[
                ("devcontainer.local_folder", "/home/user/project"),
                (
                    "devcontainer.config_file",
                    "/home/user/project/.devcontainer/devcontainer.json"
                ),
            ]),
            "0ns9efvs2cg80a2avksvk7nqv06jrab7n2918j79h49700ucligl"
        );
    }

    #[test]
    fn devcontainer_id_depends_on_the_label_set_not_its_order() {
        let a = devcontainer_id(&id_labels_to_map(&["x=1", "y=2"]));
        let b = devcontainer_id(&id_labels_to_map(&["y=2", "x=1", "junk"]));
        let c = devcontainer_id(&id_labels_to_map(&["x=1", "y=3"]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 52);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
        );
        assert_eq!(id_labels_to_map(&["k=a=b", "k=c"])["k"], "c");
    }

    #[test]
    fn base32_edges() {
        assert_eq!(base32(&[0; 32]), "0".repeat(52));
        assert_eq!(base32(&[0xff; 32]), format!("1{}", "v".repeat(51)));
        let mut one = [0u8; 32];
        one[31] = 33;
        assert_eq!(base32(&one), format!("{}11", "0".repeat(50)));
    }
}
