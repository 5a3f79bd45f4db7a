//! The `crun` command line (and `krun` / `crun-<handler>` through argv[0]).
//!
//! Global options come before the command: `--root`, `--log`, `--log-format`, `--log-level`,
//! `--debug`, `--systemd-cgroup`, `--cgroup-manager`, `--version`, `--help`.  Errors are
//! printed through [`crate::log`] as `msg: strerror(errno)` and the exit status is 1, as crun.

use std::path::{Path, PathBuf};

use crate::bail;
use crate::container::{self, Container, ExecOptions, Runtime, RuntimeContext};
use crate::error::{Context, Error, Result};
use crate::log;

pub mod args;
mod update;

use args::{flag, parse, val, Opt};

/// Global options.
#[derive(Debug, Default, Clone)]
pub struct Globals {
    pub root: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub handler: Option<String>,
}

const USAGE: &str = "Usage: crun [OPTION...] COMMAND [OPTION...]

COMMANDS:
\tcreate      - create a container
\tdelete      - remove definition for a container
\texec        - exec a command in a running container
\tlist        - list known containers
\tkill        - send a signal to the container init process
\tps          - show the processes in the container
\trun         - run a container
\tspec        - generate a configuration file
\tstart       - start a container
\tstate       - output the state of a container
\tpause       - pause all the processes in the container
\tresume      - unpause the processes in the container
\tupdate      - update container resource constraints
\tfeatures    - print the features supported by the runtime

OPTIONS:
      --cgroup-manager=MANAGER   cgroup manager (cgroupfs, systemd, disabled)
      --debug                    produce verbose output
      --log=FILE                 log file (FILE, file:FILE, syslog:ID)
      --log-format=FORMAT        log format (text or json)
      --log-level=LEVEL          log level (error, warning, debug)
      --root=DIR                 state directory
      --systemd-cgroup           use systemd cgroups
  -?, --help                     give this help list
  -v, --version                  print program version
";

/// The handler named by argv[0]: `krun` → `krun`, `crun-<name>` → `<name>`.
pub fn handler_from_argv0(argv0: &str) -> Option<String> {
    let base = Path::new(argv0)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base == "krun" {
        return Some("krun".into());
    }
    base.strip_prefix("crun-")
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

fn version_text() -> String {
    let tags = crate::handlers::HandlerManager::new_builtin()
        .map(|m| m.feature_tags())
        .unwrap_or_default();
    format!(
        "crun version {} (crun-rs)\ncommit: crun-rs\nrundir: {}\nspec: 1.0.0\n+CAP +SECCOMP {}+JSON\n",
        env!("CARGO_PKG_VERSION"),
        container::status::state_root(None).display(),
        tags
    )
}

/// Run the command line; returns the process exit status.
pub fn main(argv: Vec<String>) -> i32 {
    let argv0 = argv.first().cloned().unwrap_or_else(|| "crun".into());
    let mut g = Globals {
        handler: handler_from_argv0(&argv0),
        ..Default::default()
    };
    match run(&mut g, &argv[1.min(argv.len())..]) {
        Ok(code) => code,
        Err(e) => {
            log::log_error(&e);
            1
        }
    }
}

const GLOBAL_OPTS: &[Opt] = &[
    val("root", None),
    val("log", None),
    val("log-format", None),
    val("log-level", None),
    flag("debug", None),
    flag("systemd-cgroup", None),
    val("cgroup-manager", None),
    val("rootless", None),
    flag("version", Some('v')),
    flag("help", Some('?')),
    flag("help", Some('h')),
];

fn split_globals(args: &[String]) -> (Vec<String>, Option<String>, Vec<String>) {
    // Global options are the leading `-...` arguments (with their values).
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let name = a.trim_start_matches('-');
        let name = name.split('=').next().unwrap_or("");
        let takes = GLOBAL_OPTS
            .iter()
            .any(|o| o.long == name && o.value && !a.contains('='));
        i += if takes { 2 } else { 1 };
    }
    let i = i.min(args.len());
    let cmd = args.get(i).cloned();
    let rest = if i < args.len() {
        args[i + 1..].to_vec()
    } else {
        Vec::new()
    };
    (args[..i].to_vec(), cmd, rest)
}

fn setup_logging(g: &Globals, id: Option<&str>) -> Result<()> {
    if let Some(f) = &g.log_format {
        log::set_format(log::parse_format(f)?);
    }
    if g.debug {
        log::set_verbosity(log::VERBOSITY_DEBUG);
    }
    if let Some(l) = &g.log_level {
        log::set_verbosity(match l.as_str() {
            "error" => log::VERBOSITY_ERROR,
            "warning" | "warn" => log::VERBOSITY_WARNING,
            "debug" => log::VERBOSITY_DEBUG,
            "info" => log::VERBOSITY_WARNING,
            _ => bail!(libc::EINVAL, "invalid log level `{l}`"),
        });
    }
    if let Some(target) = &g.log {
        match log::parse_target(Some(target))? {
            // journald is not available in this build: errors still go to stderr, which is
            // what monitors (conmon-rs passes `--log=journald:ID`) read.
            log::Target::Journald => {}
            _ => {
                log::init_logging(id, Some(target))?;
            }
        }
    }
    Ok(())
}

fn run(g: &mut Globals, args: &[String]) -> Result<i32> {
    let (gargs, cmd, rest) = split_globals(args);
    let gp = parse("crun", &gargs, GLOBAL_OPTS, 0)?;
    if gp.flag("version") {
        print!("{}", version_text());
        return Ok(0);
    }
    if gp.flag("help") {
        print!("{USAGE}");
        return Ok(0);
    }
    g.root = gp.get("root").map(str::to_string);
    g.log = gp.get("log").map(str::to_string);
    g.log_format = gp.get("log-format").map(str::to_string);
    g.log_level = gp.get("log-level").map(str::to_string);
    g.debug = gp.flag("debug");
    g.systemd_cgroup = gp.flag("systemd-cgroup") || gp.get("cgroup-manager") == Some("systemd");
    let Some(cmd) = cmd else {
        setup_logging(g, None)?;
        bail!(libc::EINVAL, "no command specified");
    };
    // The id (the last positional of most commands) names syslog output.
    let id_guess = rest.iter().rev().find(|a| !a.starts_with('-')).cloned();
    setup_logging(g, id_guess.as_deref())?;
    let ctx = RuntimeContext {
        state_root: g.root.clone(),
        systemd_cgroup: g.systemd_cgroup,
        force_no_cgroup: gp.get("cgroup-manager") == Some("disabled"),
        handler: g.handler.clone(),
        ..Default::default()
    };
    match cmd.as_str() {
        "create" => cmd_create(ctx, &rest, false),
        "run" => cmd_create(ctx, &rest, true),
        "start" => {
            let p = parse("start", &rest, &[], 0)?;
            let id = one_id("start", &p.positional)?;
            Runtime::start(&ctx, &id).map(|_| 0)
        }
        "state" => {
            let p = parse("state", &rest, &[], 0)?;
            let id = one_id("state", &p.positional)?;
            println!("{}", Runtime::state(&ctx, &id)?);
            Ok(0)
        }
        "kill" => {
            let p = parse(
                "kill",
                &rest,
                &[flag("all", Some('a')), val("regex", Some('r'))],
                0,
            )?;
            let (id, sig) = match p.positional.as_slice() {
                [id] => (id.clone(), "SIGTERM".to_string()),
                [id, sig] => (id.clone(), sig.clone()),
                _ => bail!(libc::EINVAL, "kill: expected CONTAINER [SIGNAL]"),
            };
            Runtime::kill(&ctx, &id, &sig, p.flag("all")).map(|_| 0)
        }
        "delete" => {
            let p = parse(
                "delete",
                &rest,
                &[flag("force", Some('f')), val("regex", Some('r'))],
                0,
            )?;
            if p.positional.is_empty() {
                bail!(libc::EINVAL, "delete: missing CONTAINER");
            }
            for id in &p.positional {
                Runtime::delete(&ctx, id, p.flag("force"))?;
            }
            Ok(0)
        }
        "list" => cmd_list(&ctx, &rest),
        "ps" => {
            let p = parse("ps", &rest, &[val("format", Some('f'))], 0)?;
            let id = one_id("ps", &p.positional)?;
            let pids = Runtime::pids(&ctx, &id, true)?;
            if p.get("format") == Some("json") {
                println!(
                    "{}",
                    serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into())
                );
            } else {
                println!("PID");
                for pid in pids {
                    println!("{pid}");
                }
            }
            Ok(0)
        }
        "pause" | "resume" => {
            let p = parse(&cmd, &rest, &[], 0)?;
            let id = one_id(&cmd, &p.positional)?;
            Runtime::pause(&ctx, &id, cmd == "pause").map(|_| 0)
        }
        "update" => update::cmd_update(&ctx, &rest),
        "spec" => {
            let p = parse(
                "spec",
                &rest,
                &[flag("rootless", None), val("bundle", Some('b'))],
                0,
            )?;
            let dir = PathBuf::from(p.get("bundle").unwrap_or("."));
            container::write_default_spec(&dir, p.flag("rootless")).map(|_| 0)
        }
        "exec" => cmd_exec(&ctx, &rest),
        "features" => {
            println!("{}", features_json());
            Ok(0)
        }
        other => bail!(libc::EINVAL, "unknown command `{other}`"),
    }
}

fn one_id(cmd: &str, pos: &[String]) -> Result<String> {
    match pos {
        [id] => Ok(id.clone()),
        [] => bail!(libc::EINVAL, "{cmd}: missing CONTAINER"),
        _ => bail!(libc::EINVAL, "{cmd}: too many arguments"),
    }
}

const CREATE_OPTS: &[Opt] = &[
    val("bundle", Some('b')),
    val("config", Some('f')),
    val("console-socket", None),
    val("pid-file", None),
    val("preserve-fds", None),
    flag("no-pivot", None),
    flag("no-new-keyring", None),
    flag("no-subreaper", None),
    flag("detach", Some('d')),
    flag("keep", None),
];

fn parse_int(name: &str, v: Option<&str>) -> Result<i32> {
    match v {
        None => Ok(0),
        Some(s) => {
            s.parse::<i32>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::new(libc::EINVAL, format!("invalid value `{s}` for `--{name}`"))
            })
        }
    }
}

fn listen_fds_from_env() -> i32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !pid_ok {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0)
}

/// The bundle directory as crun names it: the working directory without `--bundle`, a
/// relative `--bundle` resolved with realpath(3), an absolute one as given minus `.`
/// components and trailing slashes (no symlink is resolved there).
fn bundle_path(arg: Option<&str>) -> Result<PathBuf> {
    match arg {
        None => std::env::current_dir().context("getcwd"),
        Some(b) if Path::new(b).is_absolute() => Ok(Path::new(b).components().collect()),
        Some(b) => std::fs::canonicalize(b).with_context(|| format!("realpath `{b}`")),
    }
}

fn cmd_create(mut ctx: RuntimeContext, rest: &[String], run: bool) -> Result<i32> {
    let cmd = if run { "run" } else { "create" };
    let p = parse(cmd, rest, CREATE_OPTS, 0)?;
    ctx.id = one_id(cmd, &p.positional)?;
    let bundle = bundle_path(p.get("bundle"))?;
    let config = PathBuf::from(p.get("config").unwrap_or("config.json"));
    let config = if config.is_absolute() {
        config
    } else {
        bundle.join(config)
    };
    ctx.bundle = Some(bundle);
    ctx.console_socket = p.get("console-socket").map(str::to_string);
    ctx.pid_file = p.get("pid-file").map(PathBuf::from);
    ctx.preserve_fds = parse_int("preserve-fds", p.get("preserve-fds"))?;
    ctx.listen_fds = listen_fds_from_env();
    ctx.no_pivot = p.flag("no-pivot");
    ctx.no_new_keyring = p.flag("no-new-keyring");
    ctx.detach = p.flag("detach");
    ctx.notify_socket = std::env::var("NOTIFY_SOCKET").ok();
    let c = Container::load_from_file(&config)?;
    if run {
        Runtime::run(&ctx, &c, p.flag("keep"))
    } else {
        Runtime::create(&ctx, &c).map(|_| 0)
    }
}

fn cmd_list(ctx: &RuntimeContext, rest: &[String]) -> Result<i32> {
    let p = parse(
        "list",
        rest,
        &[flag("quiet", Some('q')), val("format", Some('f'))],
        0,
    )?;
    let items = Runtime::list(ctx)?;
    if p.flag("quiet") {
        for (id, _, _) in items {
            println!("{id}");
        }
        return Ok(0);
    }
    match p.get("format").unwrap_or("table") {
        "json" => println!("{}", Runtime::list_json(&items)?),
        "table" => {
            println!(
                "{:<30} {:<10} {:<10} {:<40} {:<32} OWNER",
                "NAME", "PID", "STATUS", "BUNDLE PATH", "CREATED"
            );
            for (id, st, s) in items {
                println!(
                    "{:<30} {:<10} {:<10} {:<40} {:<32} {}",
                    id,
                    if s == "stopped" { 0 } else { st.pid },
                    s,
                    st.bundle,
                    st.created,
                    st.owner
                );
            }
        }
        f => bail!(libc::EINVAL, "invalid format `{f}`"),
    }
    Ok(0)
}

const EXEC_OPTS: &[Opt] = &[
    flag("tty", Some('t')),
    val("console-socket", None),
    flag("detach", Some('d')),
    val("pid-file", None),
    val("process", Some('p')),
    val("env", Some('e')),
    val("cwd", None),
    val("user", Some('u')),
    val("cap", Some('c')),
    val("preserve-fds", None),
    flag("no-new-privs", None),
    val("process-label", None),
    val("apparmor", None),
    val("cgroup", None),
];

fn cmd_exec(ctx: &RuntimeContext, rest: &[String]) -> Result<i32> {
    let p = parse("exec", rest, EXEC_OPTS, 1)?;
    let Some(id) = p.positional.first().cloned() else {
        bail!(libc::EINVAL, "exec: missing CONTAINER");
    };
    let cmdline: Vec<String> = p.positional[1..].to_vec();
    let dir = container::status::state_dir(ctx.state_root.as_deref(), &id)?;
    let st = container::status::read_status_in(&dir, &id)?;
    let mut process: oci_spec::runtime::Process = if let Some(f) = p.get("process") {
        let data = std::fs::read_to_string(f).with_context(|| format!("open `{f}`"))?;
        serde_json::from_str(&data).map_err(|e| {
            Error::new(
                libc::EINVAL,
                format!(
                    "load process file `{f}`: line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?
    } else {
        if cmdline.is_empty() {
            bail!(libc::EINVAL, "exec: missing COMMAND");
        }
        let c = Container::load_from_file(&dir.join("config.json"))?;
        let mut base = c.process()?.clone();
        base.set_terminal(Some(false));
        base.set_console_size(None);
        base
    };
    if !cmdline.is_empty() {
        process.set_args(Some(cmdline));
    }
    if p.has("tty") {
        process.set_terminal(Some(p.flag("tty")));
    }
    let mut env = process.env().clone().unwrap_or_default();
    env.extend(p.all("env"));
    process.set_env(Some(env));
    if let Some(cwd) = p.get("cwd") {
        process.set_cwd(PathBuf::from(cwd));
    }
    if let Some(u) = p.get("user") {
        let root = PathBuf::from(format!("/proc/{}/root", st.pid));
        let (uid, gid) = container::process::resolve_user(u, &root)?;
        let mut user = process.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        user.set_additional_gids(None);
        process.set_user(user);
    }
    let extra_caps = p.all("cap");
    if !extra_caps.is_empty() {
        let mut caps = process
            .capabilities()
            .clone()
            .unwrap_or_else(|| serde_json::from_str("{}").unwrap_or_default());
        for name in extra_caps {
            let cap: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| {
                        Error::new(libc::EINVAL, format!("unknown capability `{name}`"))
                    })?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let b = add(caps.bounding());
            let e = add(caps.effective());
            let pm = add(caps.permitted());
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        process.set_capabilities(Some(caps));
    }
    if p.flag("no-new-privs") {
        process.set_no_new_privileges(Some(true));
    }
    let opts = ExecOptions {
        process,
        detach: p.flag("detach"),
        console_socket: p.get("console-socket").map(str::to_string),
        pid_file: p.get("pid-file").map(PathBuf::from),
        preserve_fds: parse_int("preserve-fds", p.get("preserve-fds"))?,
        cgroup: p.get("cgroup").map(str::to_string),
    };
    Runtime::exec(ctx, &id, &opts)
}

fn features_json() -> String {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
            "relatime", "norelatime", "strictatime", "nostrictatime", "noatime", "atime", "sync", "async",
            "dirsync", "mand", "nomand", "remount", "tmpcopyup"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        },
        "annotations": { "io.github.seccomp.libseccomp.version": "" }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_selects_handler() {
        assert_eq!(handler_from_argv0("/usr/bin/krun"), Some("krun".into()));
        assert_eq!(handler_from_argv0("crun-wasm"), Some("wasm".into()));
        assert_eq!(handler_from_argv0("crun-krun"), Some("krun".into()));
        assert_eq!(handler_from_argv0("/usr/bin/crun"), None);
        assert_eq!(handler_from_argv0("crun-"), None);
    }

    #[test]
    fn globals_split_before_the_command() {
        let a: Vec<String> = [
            "--log",
            "/l",
            "--log-format=json",
            "--systemd-cgroup",
            "create",
            "--bundle",
            "b",
            "id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (g, cmd, rest) = split_globals(&a);
        assert_eq!(g.len(), 4);
        assert_eq!(cmd.as_deref(), Some("create"));
        assert_eq!(rest, vec!["--bundle", "b", "id"]);
    }
}
