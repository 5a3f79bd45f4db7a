//! `libcrun_container_update_from_values`: build a `LinuxResources` JSON object from
//! `(section, name, numeric, value)` entries, as crun does, for `Runtime::update`.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One update entry: `section` (e.g. `memory`), `name` (e.g. `limit`), whether `value` is a
/// JSON number (or boolean) rather than a string, and the value text.
pub struct UpdateValue<'a> {
    pub section: &'a str,
    pub name: &'a str,
    pub numeric: bool,
    pub value: &'a str,
}

/// The keys each `LinuxResources` object section accepts (`unified` takes any key).
fn known_names(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "memory" => &[
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ],
        "cpu" => &[
            "shares",
            "quota",
            "burst",
            "period",
            "realtimeRuntime",
            "realtimePeriod",
            "cpus",
            "mems",
            "idle",
        ],
        "pids" => &["limit"],
        "blockIO" => &["weight", "leafWeight"],
        "network" => &["classID"],
        "unified" => &[],
        _ => return None,
    })
}

/// The resources JSON for `values`.  An unknown section or name, or a numeric value that is
/// not a JSON number/boolean, is EINVAL naming it.
pub fn resources_json(values: &[UpdateValue<'_>]) -> Result<String> {
    let mut root = Map::new();
    for v in values {
        let names = known_names(v.section).ok_or_else(|| {
            Error::new(
                libc::EINVAL,
                format!("unknown resource section `{}`", v.section),
            )
        })?;
        if v.section != "unified" && !names.contains(&v.name) {
            return Err(Error::new(
                libc::EINVAL,
                format!("unknown resource `{}.{}`", v.section, v.name),
            ));
        }
        let value = if v.numeric {
            match serde_json::from_str::<Value>(v.value) {
                Ok(n @ (Value::Number(_) | Value::Bool(_))) => n,
                _ => {
                    return Err(Error::new(
                        libc::EINVAL,
                        format!(
                            "invalid numeric value `{}` for `{}.{}`",
                            v.value, v.section, v.name
                        ),
                    ))
                }
            }
        } else {
            Value::String(v.value.to_string())
        };
        let sec = root
            .entry(v.section.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = sec {
            m.insert(v.name.to_string(), value);
        }
    }
    Ok(Value::Object(root).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uv<'a>(section: &'a str, name: &'a str, numeric: bool, value: &'a str) -> UpdateValue<'a> {
        UpdateValue {
            section,
            name,
            numeric,
            value,
        }
    }

    #[test]
    fn values_become_resources_json() {
        let j = resources_json(&[
            uv("memory", "limit", true, "1048576"),
            uv("cpu", "cpus", false, "0"),
            uv("memory", "swap", true, "-1"),
        ])
        .unwrap();
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["memory"]["limit"], 1048576);
        assert_eq!(v["memory"]["swap"], -1);
        assert_eq!(v["cpu"]["cpus"], "0");
        let r: oci_spec::runtime::LinuxResources = serde_json::from_str(&j).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(1048576));
    }

    #[test]
    fn unknown_or_bad_values_are_einval_naming_them() {
        let e = resources_json(&[uv("bogus", "x", true, "1")]).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.message().contains("`bogus`"), "{e}");
        let e = resources_json(&[uv("memory", "nope", true, "1")]).unwrap_err();
        assert!(e.message().contains("`memory.nope`"), "{e}");
        let e = resources_json(&[uv("pids", "limit", true, "abc")]).unwrap_err();
        assert!(e.message().contains("`abc`"), "{e}");
    }
}
