//! `crun update`: the resources come from `--resources FILE` (`-r`, `-` for stdin) and/or
//! crun's per-value flags, which are merged on top of the file's document.

use serde_json::{Map, Value};

use super::args::{parse, val, Opt};
use crate::bail;
use crate::container::{Runtime, RuntimeContext};
use crate::error::{Context, Error, Result};

/// How a flag's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    /// A signed integer, `-1` meaning "unlimited" (memory limits, pids, quota, rt runtime).
    Limit,
    /// A non-negative integer.
    Unsigned,
    /// A blkio weight (0..=65535; the kernel checks the range it accepts).
    Weight,
    /// A cpuset list, passed through as a string.
    Text,
}

/// (flag, section, field, kind): `--FLAG V` sets `resources.SECTION.FIELD = V`.
const FLAGS: &[(&str, &str, &str, Kind)] = &[
    ("memory", "memory", "limit", Kind::Limit),
    ("memory-reservation", "memory", "reservation", Kind::Limit),
    ("memory-swap", "memory", "swap", Kind::Limit),
    ("kernel-memory", "memory", "kernel", Kind::Limit),
    ("kernel-memory-tcp", "memory", "kernelTCP", Kind::Limit),
    ("pids-limit", "pids", "limit", Kind::Limit),
    ("cpu-share", "cpu", "shares", Kind::Unsigned),
    ("cpu-period", "cpu", "period", Kind::Unsigned),
    ("cpu-quota", "cpu", "quota", Kind::Limit),
    ("cpu-rt-period", "cpu", "realtimePeriod", Kind::Unsigned),
    ("cpu-rt-runtime", "cpu", "realtimeRuntime", Kind::Limit),
    ("cpuset-cpus", "cpu", "cpus", Kind::Text),
    ("cpuset-mems", "cpu", "mems", Kind::Text),
    ("blkio-weight", "blockIO", "weight", Kind::Weight),
];

/// The JSON value of `--flag v`, or EINVAL naming the flag.
fn flag_value(flag: &str, kind: Kind, v: &str) -> Result<Value> {
    let bad = |why: &str| {
        Error::new(
            libc::EINVAL,
            format!("invalid value for `--{flag}`: `{v}` ({why})"),
        )
    };
    Ok(match kind {
        Kind::Limit => {
            let n: i64 = v.trim().parse().map_err(|_| bad("not an integer"))?;
            if n < -1 {
                return Err(bad("must be -1 or more"));
            }
            Value::from(n)
        }
        Kind::Unsigned => {
            let t = v.trim();
            if t.starts_with('-') {
                return Err(bad("must not be negative"));
            }
            Value::from(
                t.parse::<u64>()
                    .map_err(|_| bad("not a non-negative integer"))?,
            )
        }
        Kind::Weight => {
            let t = v.trim();
            if t.starts_with('-') {
                return Err(bad("must not be negative"));
            }
            Value::from(
                t.parse::<u16>()
                    .map_err(|_| bad("not an integer in 0..65535"))?,
            )
        }
        Kind::Text => {
            if v.is_empty() {
                return Err(bad("empty"));
            }
            Value::from(v)
        }
    })
}

/// Merge the flags of `get` (flag name -> its last value) on top of `base` (a `LinuxResources`
/// document).
pub fn merge_flags<'a>(
    base: Option<&str>,
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<String>> {
    let mut doc = match base {
        None => Value::Object(Map::new()),
        Some(text) => serde_json::from_str::<Value>(text)
            .map_err(|e| Error::new(libc::EINVAL, format!("parse resources: {e}")))?,
    };
    let Some(root) = doc.as_object_mut() else {
        bail!(libc::EINVAL, "parse resources: not a JSON object");
    };
    let mut any = base.is_some();
    for (flag, section, field, kind) in FLAGS {
        let Some(v) = get(flag) else {
            continue;
        };
        let value = flag_value(flag, *kind, v)?;
        let sec = root
            .entry(section.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !sec.is_object() {
            *sec = Value::Object(Map::new());
        }
        if let Some(o) = sec.as_object_mut() {
            o.insert(field.to_string(), value);
        }
        any = true;
    }
    if !any {
        return Ok(None);
    }
    serde_json::to_string(&doc)
        .map(Some)
        .map_err(|e| Error::new(libc::EINVAL, format!("serialize resources: {e}")))
}

/// `crun update [-r FILE] [--memory N ...] ID`.
pub fn cmd_update(ctx: &RuntimeContext, rest: &[String]) -> Result<i32> {
    let mut opts: Vec<Opt> = vec![val("resources", Some('r'))];
    opts.extend(FLAGS.iter().map(|f| val(f.0, None)));
    let p = parse("update", rest, &opts, 0)?;
    let id = super::one_id("update", &p.positional)?;
    let base = match p.get("resources") {
        None => None,
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .context("read resources from stdin")?;
            Some(s)
        }
        Some(f) => Some(std::fs::read_to_string(f).with_context(|| format!("open `{f}`"))?),
    };
    let Some(doc) = merge_flags(base.as_deref(), |f| p.get(f))? else {
        bail!(
            libc::EINVAL,
            "update: nothing to update (use --resources FILE or a resource flag)"
        );
    };
    Runtime::update(ctx, &id, &doc).map(|_| 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let base = r#"{"memory":{"limit":100,"reservation":50},"pids":{"limit":3}}"#;
        let flags = [
            ("memory", "2000"),
            ("cpu-quota", "-1"),
            ("cpuset-cpus", "0"),
        ];
        let get = |f: &str| flags.iter().find(|x| x.0 == f).map(|x| x.1);
        let v: Value =
            serde_json::from_str(&merge_flags(Some(base), get).unwrap().unwrap()).unwrap();
        assert_eq!(v["memory"]["limit"], 2000);
        assert_eq!(v["memory"]["reservation"], 50);
        assert_eq!(v["pids"]["limit"], 3);
        assert_eq!(v["cpu"]["quota"], -1);
        assert_eq!(v["cpu"]["cpus"], "0");
        assert!(merge_flags(None, |_| None).unwrap().is_none());
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (f, v) in [
            ("memory", "abc"),
            ("memory", "-2"),
            ("cpu-share", "-5"),
            ("cpu-period", "1.5"),
            ("blkio-weight", "70000"),
            ("pids-limit", ""),
        ] {
            let e = merge_flags(None, |x| (x == f).then_some(v)).unwrap_err();
            assert_eq!(e.errno(), libc::EINVAL);
            assert!(e.to_string().contains(&format!("`--{f}`")), "{e}");
        }
    }
}
