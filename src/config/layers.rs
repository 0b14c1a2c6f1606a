//! The layers a configuration is made of, in order: the defaults, the file, the environment
//! (`OIP_<SECTION>_<KEY>` and the old service's `PORT`, `GUN_PEERS`, `JWT_SECRET`), the command
//! line's `--set`; and where each key's value came from.

use serde::de::DeserializeOwned;
use yaml_serde::{Mapping, Value};

use super::check::{invalid, ConfigError};

/// The settings as a tree of sections while layers are applied, and the origin of each key set.
pub(super) struct Layered {
    tree: Value,
    /// `(section.key, origin)`: `file`, a variable's name, or `--set`.
    origins: Vec<(String, String)>,
    /// Every section and key with its default: what may be set, and how a value is read.
    defaults: Value,
}

/// Keys by an older name, still read (file, environment, `--set`) as the current one.
const RENAMED: &[(&str, &str)] = &[("media.legacy_root", "media.legacy_api_root")];

/// The current name of `key`.
fn current(key: &str) -> &str {
    RENAMED
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
}

/// The tree with keys by an older name moved to the current one, unless that is set too.
fn renamed(mut tree: Value) -> Value {
    for (old, new) in RENAMED {
        let ((section, old_key), (_, new_key)) = (
            old.split_once('.').expect("a section.key"),
            new.split_once('.').expect("a section.key"),
        );
        if let Some(Value::Mapping(keys)) = tree.get_mut(section) {
            if let Some(value) = keys.remove(old_key) {
                keys.entry(Value::String(new_key.into())).or_insert(value);
            }
        }
    }
    tree
}

impl Layered {
    /// The file's `text` over `defaults`.
    pub fn file(text: &str, defaults: Value) -> Result<Self, ConfigError> {
        let tree = renamed(parse(text)?);
        let mut origins = Vec::new();
        for (section, keys) in sections(&tree) {
            for key in keys {
                origins.push((format!("{section}.{key}"), "file".into()));
            }
        }
        Ok(Self {
            tree,
            origins,
            defaults,
        })
    }

    fn set(&mut self, key: &str, value: Value, from: &str) {
        let (section, name) = key.split_once('.').expect("a section.key");
        let Value::Mapping(sections) = &mut self.tree else {
            return;
        };
        let entry = sections
            .entry(Value::String(section.into()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Value::Mapping(keys) = entry {
            keys.insert(Value::String(name.into()), value);
        }
        self.origins.retain(|(k, _)| k != key);
        self.origins.push((key.to_string(), from.to_string()));
    }

    /// The environment, read through `env`: the old service's variables first, then the
    /// general ones, so the specific one wins.
    pub fn environment(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(port) = env("PORT").filter(|p| !p.is_empty()) {
            self.set(
                "server.bind",
                Value::String(format!("0.0.0.0:{port}")),
                "PORT",
            );
        }
        let peers = env("GUN_PEERS").unwrap_or_default();
        if let Some(first) = comma_list(&peers).next() {
            self.set("gun.relay_url", Value::String(first.into()), "GUN_PEERS");
            let all = comma_list(&peers)
                .map(|p| Value::String(p.into()))
                .collect();
            self.set("gun.relay_urls", Value::Sequence(all), "GUN_PEERS");
            self.set("gun.source", Value::String("relay".into()), "GUN_PEERS");
        }
        if let Some(secret) = env("JWT_SECRET").filter(|s| !s.is_empty()) {
            self.set("auth.jwt_secret", Value::String(secret), "JWT_SECRET");
        }
        let variables = env_variables(&self.defaults);
        for (old, new) in RENAMED {
            let name = format!("OIP_{}", old.replace('.', "_")).to_ascii_uppercase();
            let var = variables.iter().find(|v| v.key == *new);
            if let (Some(raw), Some(var)) = (env(&name), var) {
                self.set(new, var.value(&raw), &name);
            }
        }
        for var in variables {
            if let Some(raw) = env(&var.name) {
                self.set(&var.key, var.value(&raw), &var.name);
            }
        }
    }

    /// The command line's `section.key=value` items.
    pub fn command_line(&mut self, items: &[String]) -> Result<(), ConfigError> {
        let variables = env_variables(&self.defaults);
        for item in items {
            let (key, raw) = item
                .split_once('=')
                .ok_or_else(|| invalid(item, "--set wants section.key=value"))?;
            let key = current(key);
            let var = variables
                .iter()
                .find(|v| v.key == key)
                .ok_or_else(|| invalid(key, "no such setting (--set wants section.key=value)"))?;
            self.set(key, var.value(raw), "--set");
        }
        Ok(())
    }

    /// The typed settings, with where each key not at its default came from (what the shipped
    /// config.yaml restates at its default is not news in the summary).
    pub fn into_typed<T: DeserializeOwned>(
        mut self,
    ) -> Result<(T, Vec<(String, String)>), ConfigError> {
        let at = |tree: &Value, key: &str| {
            let (section, name) = key.split_once('.')?;
            tree.get(section)?.get(name).cloned()
        };
        let (tree, defaults) = (&self.tree, &self.defaults);
        self.origins
            .retain(|(key, _)| at(tree, key) != at(defaults, key));
        let typed = typed(self.tree, &self.origins)?;
        Ok((typed, self.origins))
    }
}

/// The names of the `OIP_` variables a setting of `defaults` could be set by.
pub(super) fn variable_names(defaults: &Value) -> Vec<(String, String)> {
    env_variables(defaults)
        .into_iter()
        .map(|v| (v.name, v.key))
        .collect()
}

/// The file as a tree of sections; a file of comments only is a valid "every default" file.
fn parse(text: &str) -> Result<Value, ConfigError> {
    let has_content = text
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('#') && l != "---");
    if !has_content {
        return Ok(Value::Mapping(Mapping::new()));
    }
    match yaml_serde::from_str::<Value>(text) {
        Ok(tree @ Value::Mapping(_)) => Ok(tree),
        Ok(_) => Err(invalid(
            "(top level)",
            "expected sections such as server: and gun:",
        )),
        Err(e) => Err(invalid("(top level)", e.to_string())),
    }
}

/// The tree as typed settings. An invalid value names its key, and the variable that set it
/// when one did.
fn typed<T: DeserializeOwned>(tree: Value, origins: &[(String, String)]) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // The YAML error names the path itself; the key is already in front of the line.
        if let Some((head, rest)) = message.split_once(": ") {
            if key.starts_with(head) {
                message = rest.to_string();
            }
        }
        let key = match origins.iter().find(|(k, from)| *k == key && from != "file") {
            Some((_, var)) => format!("{var} ({key})"),
            None if key == "." || key.is_empty() => "(top level)".to_string(),
            None => key,
        };
        invalid(&key, message)
    })
}

/// The sections of a tree and the keys each holds.
fn sections(tree: &Value) -> Vec<(String, Vec<String>)> {
    let name = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match tree {
        Value::Mapping(sections) => sections
            .iter()
            .map(|(section, keys)| {
                let keys = match keys {
                    Value::Mapping(keys) => keys.keys().map(name).collect(),
                    _ => Vec::new(),
                };
                (name(section), keys)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `OIP_<SECTION>_<KEY>`: a setting from the environment.
struct EnvVariable {
    name: String,
    key: String,
    default: Value,
}

impl EnvVariable {
    /// The variable's text as the key's type wants it: a list is comma-separated, a string
    /// (or a key whose default is null, such as a secret) is taken as written, anything else
    /// is read as YAML (numbers, true/false).
    fn value(&self, raw: &str) -> Value {
        match &self.default {
            Value::Sequence(_) => {
                Value::Sequence(comma_list(raw).map(|s| Value::String(s.into())).collect())
            }
            Value::Null if raw.is_empty() => Value::Null,
            Value::String(_) | Value::Null => Value::String(raw.into()),
            _ => yaml_serde::from_str(raw).unwrap_or_else(|_| Value::String(raw.into())),
        }
    }
}

/// The entries of a comma-separated list, trimmed, empty ones left out.
fn comma_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// One variable per key of the defaults: every key a file may set.
fn env_variables(defaults: &Value) -> Vec<EnvVariable> {
    let Value::Mapping(sections) = defaults else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (section, keys) in sections {
        let (Some(section), Value::Mapping(keys)) = (section.as_str(), keys) else {
            continue;
        };
        for (key, default) in keys {
            let Some(key) = key.as_str() else { continue };
            out.push(EnvVariable {
                name: format!("OIP_{}_{}", section, key).to_ascii_uppercase(),
                key: format!("{section}.{key}"),
                default: default.clone(),
            });
        }
    }
    out
}
