//! A small argv parser with the conventions conmon, podman and CRI-O rely on: `--opt VALUE`,
//! `--opt=VALUE`, `-o VALUE`, `-oVALUE`, bundled short flags, repeated options (the last one
//! wins, or all are kept for list options), and `--` to end options.

use std::collections::HashMap;

use crate::bail;
use crate::error::Result;

/// One option a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// Takes a value.
    pub value: bool,
    /// A boolean flag that may also be written `--flag=false` / `--flag=true`.
    pub optional_bool: bool,
}

/// A flag.
pub const fn flag(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        value: false,
        optional_bool: true,
    }
}

/// An option with a value.
pub const fn val(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        value: true,
        optional_bool: false,
    }
}

/// The parsed command line of one command.
#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, Vec<String>>,
    pub positional: Vec<String>,
}

impl Parsed {
    /// The last value of `long`.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of `long`.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.values.get(long).cloned().unwrap_or_default()
    }

    /// Whether the flag `long` is set (its last value is not `false`).
    pub fn flag(&self, long: &str) -> bool {
        match self.get(long) {
            None => false,
            Some(v) => !matches!(v, "false" | "no" | "0"),
        }
    }

    /// Whether `long` was given at all.
    pub fn has(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
}

/// Parse `args` against `opts`.  With `stop_at_positional`, the first positional argument ends
/// option parsing (for `exec ID CMD...` where CMD has its own options).
pub fn parse(
    cmd: &str,
    args: &[String],
    opts: &[Opt],
    stop_at_positional: usize,
) -> Result<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if stop_at_positional > 0 && p.positional.len() >= stop_at_positional {
            p.positional.extend(args[i..].iter().cloned());
            break;
        }
        if a == "--" {
            p.positional.extend(args[i + 1..].iter().cloned());
            break;
        }
        if let Some(rest) = a.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            let Some(o) = opts.iter().find(|o| o.long == name) else {
                bail!(libc::EINVAL, "{cmd}: unrecognized option '--{name}'");
            };
            let v = if o.value {
                match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => bail!(
                                libc::EINVAL,
                                "{cmd}: option '--{name}' requires an argument"
                            ),
                        }
                    }
                }
            } else {
                match inline {
                    Some(v) if o.optional_bool => v,
                    Some(_) => bail!(
                        libc::EINVAL,
                        "{cmd}: option '--{name}' doesn't allow an argument"
                    ),
                    None => "true".to_string(),
                }
            };
            p.values.entry(o.long).or_default().push(v);
        } else if a.len() > 1 && a.starts_with('-') && a != "-" {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let Some(o) = opts.iter().find(|o| o.short == Some(c)) else {
                    bail!(libc::EINVAL, "{cmd}: invalid option -- '{c}'");
                };
                if o.value {
                    let rest: String = chars[j + 1..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest.trim_start_matches('=').to_string()
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => {
                                bail!(libc::EINVAL, "{cmd}: option requires an argument -- '{c}'")
                            }
                        }
                    };
                    p.values.entry(o.long).or_default().push(v);
                    break;
                }
                p.values.entry(o.long).or_default().push("true".into());
                j += 1;
            }
        } else {
            p.positional.push(a.clone());
        }
        i += 1;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const OPTS: &[Opt] = &[
        val("bundle", Some('b')),
        val("console-socket", None),
        flag("detach", Some('d')),
        flag("tty", Some('t')),
        val("env", Some('e')),
    ];

    #[test]
    fn both_value_forms_and_short_options() {
        let p = parse(
            "create",
            &s(&["--bundle", "/b", "--console-socket=/s", "-d", "id"]),
            OPTS,
            0,
        )
        .unwrap();
        assert_eq!(p.get("bundle"), Some("/b"));
        assert_eq!(p.get("console-socket"), Some("/s"));
        assert!(p.flag("detach"));
        assert_eq!(p.positional, vec!["id".to_string()]);
        let p = parse("x", &s(&["-b/b2", "-dt", "-e", "A=1", "-eB=2"]), OPTS, 0).unwrap();
        assert_eq!(p.get("bundle"), Some("/b2"));
        assert!(p.flag("detach") && p.flag("tty"));
        assert_eq!(p.all("env"), s(&["A=1", "B=2"]));
    }

    #[test]
    fn options_after_positionals_and_stop() {
        let p = parse("exec", &s(&["-t", "id", "sh", "-c", "x"]), OPTS, 1).unwrap();
        assert!(p.flag("tty"));
        assert_eq!(p.positional, s(&["id", "sh", "-c", "x"]));
        let p = parse("exec", &s(&["--tty=false", "id"]), OPTS, 1).unwrap();
        assert!(!p.flag("tty"));
    }

    #[test]
    fn errors() {
        assert!(parse("x", &s(&["--nope"]), OPTS, 0).is_err());
        assert!(parse("x", &s(&["--bundle"]), OPTS, 0).is_err());
        assert!(parse("x", &s(&["-z"]), OPTS, 0).is_err());
    }
}
