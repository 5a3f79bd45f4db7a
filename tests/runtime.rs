//! The `crun` binary end to end: lifecycle commands, namespaces, mounts, process settings.
//! Needs root (skips with a message otherwise) and gcc with static libc (libc6-dev).

mod runtime_support;

use std::time::Duration;

use runtime_support::*;
use serde_json::{json, Value};

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn run_prints_and_returns_exit_code() {
    if !need_root("run_prints_and_returns_exit_code") {
        return;
    }
    let e = Env::new("run-echo", &["/init", "echo", "hello", "world"], |_| {});
    let out = e.ok(&["run", "c1"]);
    assert_eq!(out, "hello world\n");
    assert!(
        e.ids().is_empty(),
        "run removes the container: {:?}",
        e.ids()
    );
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "exit", "7"]));
    let o = e.run(&["run", "c2"]);
    assert_eq!(o.status.code(), Some(7));
    // --keep keeps the stopped container.
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "true"]));
    e.ok(&["run", "--keep", "c3"]);
    assert_eq!(e.state("c3")["status"], "stopped");
    e.ok(&["delete", "c3"]);
    assert!(e.ids().is_empty());
}

#[test]
fn create_start_state_kill_delete() {
    if !need_root("create_start_state_kill_delete") {
        return;
    }
    let e = Env::new("lifecycle", &["/init", "pause"], |_| {});
    let pidfile = e.dir.join("pid");
    e.ok(&[
        "create",
        "--bundle",
        e.bundle.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "ctr",
    ]);
    let st = e.state("ctr");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "ctr");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(st["pid"].as_i64().unwrap().to_string(), pid);
    // The status file has crun's keys and the config copy is there.
    let status: Value =
        serde_json::from_str(&std::fs::read_to_string(e.root.join("ctr/status")).unwrap()).unwrap();
    for k in [
        "pid",
        "process-start-time",
        "cgroup-path",
        "scope",
        "rootfs",
        "systemd-cgroup",
        "bundle",
        "created",
        "owner",
        "detached",
        "external_descriptors",
    ] {
        assert!(status.get(k).is_some(), "status lacks {k}: {status}");
    }
    assert!(e.root.join("ctr/config.json").exists());
    assert!(e.root.join("ctr/exec.fifo").exists());
    // list
    let q = e.ok(&["list", "-q"]);
    assert_eq!(q.trim(), "ctr");
    let l: Value = serde_json::from_str(&e.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(l[0]["id"], "ctr");
    assert_eq!(l[0]["status"], "created");
    e.ok(&["start", "ctr"]);
    assert_eq!(e.state("ctr")["status"], "running");
    assert!(!e.root.join("ctr/exec.fifo").exists());
    // ps lists the init.
    let ps = e.ok(&["ps", "--format", "json", "ctr"]);
    let pids: Vec<i64> = serde_json::from_str(&ps).unwrap();
    assert!(pids.contains(&pid.trim().parse::<i64>().unwrap()), "{ps}");
    // Signal by name without SIG.
    e.ok(&["kill", "ctr", "TERM"]);
    wait_until(Duration::from_secs(10), "container to stop", || {
        e.state("ctr")["status"] == "stopped"
    });
    e.ok(&["delete", "ctr"]);
    assert!(e.ids().is_empty());
    let err = e.fails(&["state", "ctr"]);
    assert!(err.contains("ctr"), "{err}");
}

#[test]
fn kill_accepts_sig_names_and_numbers() {
    if !need_root("kill_accepts_sig_names_and_numbers") {
        return;
    }
    let e = Env::new("kill", &["/init", "pause"], |_| {});
    for (i, sig) in ["SIGKILL", "9", "kill"].iter().enumerate() {
        let id = format!("k{i}");
        e.ok(&["run", "--detach", &id]);
        assert_eq!(e.state(&id)["status"], "running");
        e.ok(&["kill", &id, sig]);
        wait_until(Duration::from_secs(10), "kill", || {
            e.state(&id)["status"] == "stopped"
        });
        e.ok(&["delete", &id]);
    }
    e.ok(&["run", "--detach", "kall"]);
    e.ok(&["kill", "--all", "kall", "SIGKILL"]);
    wait_until(Duration::from_secs(10), "kill --all", || {
        e.state("kall")["status"] == "stopped"
    });
    let err = e.fails(&["kill", "kall", "NOTASIGNAL"]);
    assert!(err.contains("unknown signal"), "{err}");
}

#[test]
fn delete_force_kills_a_running_container() {
    if !need_root("delete_force_kills_a_running_container") {
        return;
    }
    let e = Env::new("delforce", &["/init", "pause"], |_| {});
    e.ok(&["run", "-d", "r1"]);
    let pid = e.state("r1")["pid"].as_i64().unwrap();
    let err = e.fails(&["delete", "r1"]);
    assert!(err.contains("not in created or stopped state"), "{err}");
    assert!(e.ids().contains(&"r1".to_string()));
    e.ok(&["delete", "--force", "r1"]);
    assert!(e.ids().is_empty());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
    // A created (not started) container can be deleted without --force.
    e.ok(&["create", "c1"]);
    e.ok(&["delete", "c1"]);
    assert!(e.ids().is_empty());
}

#[test]
fn namespaces_are_new_and_configured() {
    if !need_root("namespaces_are_new_and_configured") {
        return;
    }
    let e = Env::new("ns", &["/init", "pause"], |c| {
        c["hostname"] = json!("ctr-host");
        c["domainname"] = json!("ctr-domain");
    });
    e.ok(&["run", "-d", "n1"]);
    let pid = e.state("n1")["pid"].as_i64().unwrap().to_string();
    for ns in ["mnt", "pid", "uts", "ipc", "net", "cgroup"] {
        assert_ne!(ns_link(&pid, ns), ns_link("self", ns), "{ns} not new");
    }
    assert_eq!(e.ok(&["exec", "n1", "/init", "pid"]).trim(), "2");
    assert_eq!(
        e.ok(&["exec", "n1", "/init", "gethostname"]).trim(),
        "ctr-host"
    );
    assert_eq!(
        e.ok(&["exec", "n1", "/init", "getdomainname"]).trim(),
        "ctr-domain"
    );
    // The container's init is pid 1 in its namespace.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(nspid, "1");
    // Only the container's network: just `lo`.
    let ifaces = e.ok(&["exec", "n1", "/init", "ls", "/sys/class/net"]);
    assert_eq!(ifaces.trim(), "lo");
    e.ok(&["delete", "-f", "n1"]);
}

#[test]
fn joins_a_namespace_by_path() {
    if !need_root("joins_a_namespace_by_path") {
        return;
    }
    let e = Env::new("nsjoin", &["/init", "pause"], |_| {});
    e.ok(&["run", "-d", "a"]);
    let apid = e.state("a")["pid"].as_i64().unwrap().to_string();
    e.edit_config(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in nss.iter_mut() {
            if n["type"] == "network" || n["type"] == "pid" || n["type"] == "ipc" {
                n["path"] = json!(format!(
                    "/proc/{apid}/ns/{}",
                    if n["type"] == "network" {
                        "net"
                    } else {
                        n["type"].as_str().unwrap()
                    }
                ));
            }
        }
    });
    e.ok(&["run", "-d", "b"]);
    let bpid = e.state("b")["pid"].as_i64().unwrap().to_string();
    for ns in ["net", "pid", "ipc"] {
        assert_eq!(ns_link(&apid, ns), ns_link(&bpid, ns), "{ns} not joined");
    }
    assert_ne!(ns_link(&apid, "uts"), ns_link(&bpid, "uts"));
    e.ok(&["delete", "-f", "b"]);
    e.ok(&["delete", "-f", "a"]);
}

#[test]
fn user_namespace_with_id_maps() {
    if !need_root("user_namespace_with_id_maps") {
        return;
    }
    let e = Env::new("userns", &["/init", "pause"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs cannot be mounted read-only fresh in a user namespace without its own net ns
        // ownership issues; keep the default mounts.
    });
    // The rootfs must be reachable by the mapped root.
    let o = std::process::Command::new("chown")
        .args(["-R", "100000:100000"])
        .arg(e.bundle.join("rootfs"))
        .status()
        .unwrap();
    assert!(o.success());
    e.ok(&["run", "-d", "u1"]);
    let pid = e.state("u1")["pid"].as_i64().unwrap().to_string();
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let f: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(f, vec!["0", "100000", "65536"]);
    assert_ne!(ns_link(&pid, "user"), ns_link("self", "user"));
    assert_eq!(e.ok(&["exec", "u1", "/init", "id"]).trim(), "0 0");
    e.ok(&["delete", "-f", "u1"]);
}

#[test]
fn mounts_devices_and_paths() {
    if !need_root("mounts_devices_and_paths") {
        return;
    }
    let e = Env::new("mounts", &["/init", "pause"], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/data", "type": "bind", "source": "hostdata", "options": ["rbind", "ro"]}));
        m.push(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
        c["linux"]["devices"] =
            json!([{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
        c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/data/secret"]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    });
    std::fs::create_dir_all(e.bundle.join("hostdata")).unwrap();
    std::fs::write(e.bundle.join("hostdata/file"), "from-host").unwrap();
    std::fs::write(e.bundle.join("hostdata/secret"), "hidden").unwrap();
    e.ok(&["run", "-d", "m1"]);
    let x = |args: &[&str]| {
        let mut v = vec!["exec", "m1"];
        v.extend_from_slice(args);
        e.ok(&v)
    };
    assert_eq!(x(&["/init", "cat", "/data/file"]), "from-host");
    assert_eq!(x(&["/init", "cat", "/data/secret"]), "");
    // Read-only bind and root; tmpfs is writable.
    let w = e.run(&["exec", "m1", "/init", "write", "/data/new", "x"]);
    assert!(!w.status.success());
    let w = e.run(&["exec", "m1", "/init", "write", "/newfile", "x"]);
    assert!(!w.status.success(), "root should be read-only");
    x(&["/init", "write", "/scratch/f", "ok"]);
    assert_eq!(x(&["/init", "cat", "/scratch/f"]), "ok");
    // Devices and /dev symlinks.
    for d in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/random",
        "/dev/urandom",
        "/dev/mydev",
    ] {
        assert_eq!(x(&["/init", "exists", d]).trim(), "true", "{d}");
    }
    assert_eq!(x(&["/init", "readlink", "/dev/fd"]).trim(), "/proc/self/fd");
    assert_eq!(x(&["/init", "readlink", "/dev/ptmx"]).trim(), "pts/ptmx");
    let w = e.run(&[
        "exec",
        "m1",
        "/init",
        "write",
        "/proc/sys/kernel/hostname",
        "x",
    ]);
    assert!(!w.status.success(), "/proc/sys should be read-only");
    // The host's /tmp is not visible: the container root is the rootfs.
    assert_eq!(x(&["/init", "exists", "/bundle"]).trim(), "false");
    assert_eq!(x(&["/init", "exists", "/init"]).trim(), "true");
    e.ok(&["delete", "-f", "m1"]);
}

#[test]
fn symlink_mount_target_stays_in_rootfs() {
    if !need_root("symlink_mount_target_stays_in_rootfs") {
        return;
    }
    let outside = std::env::temp_dir().join(format!("crun-rs-escape-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    let e = Env::new("escape", &["/init", "cat", "/link/file"], |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/link", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
        );
    });
    std::os::unix::fs::symlink(&outside, e.bundle.join("rootfs/link")).unwrap();
    let o = e.run(&["run", "esc"]);
    // The tmpfs lands inside the rootfs (at the symlink's target resolved in the root), never
    // on the host path.
    assert!(!outside.exists(), "mount target escaped the rootfs");
    assert!(e
        .bundle
        .join("rootfs")
        .join(outside.strip_prefix("/").unwrap())
        .exists());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn process_settings_apply() {
    if !need_root("process_settings_apply") {
        return;
    }
    let e = Env::new("proc", &["/init", "pause"], |c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 7], "umask": 63});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"] = json!(["PATH=/bin:/sbin", "FOO=bar"]);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        });
    });
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "id"]));
    assert_eq!(e.ok(&["run", "p1"]).trim(), "1000 1000");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "groups"]));
    assert_eq!(e.ok(&["run", "p2"]).trim(), "5 7");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "cwd"]));
    assert_eq!(e.ok(&["run", "p3"]).trim(), "/tmp");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "printenv", "FOO"]));
    assert_eq!(e.ok(&["run", "p4"]).trim(), "bar");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "printenv", "HOME"]));
    assert_eq!(e.ok(&["run", "p5"]).trim(), "/home/test");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "rlimit-nofile"]));
    assert_eq!(e.ok(&["run", "p6"]).trim(), "100 200");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "umask"]));
    assert_eq!(e.ok(&["run", "p7"]).trim(), "0077");
    // CAP_KILL is bit 5; a non-root process keeps it across execve only as ambient.
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "caps"]));
    assert_eq!(e.ok(&["run", "p8"]).trim(), "0000000000000020");
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "status-field", "NoNewPrivs"]));
    assert_eq!(e.ok(&["run", "p9"]).trim(), "1");
}

#[test]
fn exec_options() {
    if !need_root("exec_options") {
        return;
    }
    let e = Env::new("exec", &["/init", "pause"], |_| {});
    e.ok(&["run", "-d", "x1"]);
    assert_eq!(
        e.ok(&["exec", "--env", "A=b", "x1", "/init", "printenv", "A"])
            .trim(),
        "b"
    );
    assert_eq!(
        e.ok(&["exec", "--cwd", "/etc", "x1", "/init", "cwd"])
            .trim(),
        "/etc"
    );
    assert_eq!(
        e.ok(&["exec", "--user", "1000:5", "x1", "/init", "id"])
            .trim(),
        "1000 5"
    );
    assert_eq!(
        e.ok(&["exec", "-u", "test", "x1", "/init", "id"]).trim(),
        "1000 1000"
    );
    let o = e.run(&["exec", "x1", "/init", "exit", "3"]);
    assert_eq!(o.status.code(), Some(3));
    // --process FILE with --detach and --pid-file.
    let pf = e.dir.join("exec.pid");
    let proc_json = json!({
        "args": ["/init", "write", "/dev/shm/marker", "detached"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}
    });
    let pj = e.dir.join("process.json");
    std::fs::write(&pj, proc_json.to_string()).unwrap();
    e.ok(&[
        "exec",
        "--process",
        pj.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        "x1",
    ]);
    assert!(
        std::fs::read_to_string(&pf)
            .unwrap()
            .trim()
            .parse::<i32>()
            .unwrap()
            > 0
    );
    wait_until(Duration::from_secs(5), "detached exec", || {
        e.run(&["exec", "x1", "/init", "cat", "/dev/shm/marker"])
            .stdout
            == b"detached"
    });
    e.ok(&["delete", "-f", "x1"]);
}

#[test]
fn preserve_fds_and_no_pivot() {
    if !need_root("preserve_fds_and_no_pivot") {
        return;
    }
    let e = Env::new("fds", &["/init", "readlink", "/proc/self/fd/3"], |_| {});
    let f = std::fs::File::open(e.bundle.join("config.json")).unwrap();
    use std::os::fd::AsRawFd;
    let mut c = e.cmd(&["run", "--preserve-fds", "1", "f1"]);
    let raw = f.as_raw_fd();
    // SAFETY: dup2 in the child before exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(move || {
            if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0);
            } else if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = output_with_timeout(c, Duration::from_secs(30));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("config.json"));
    e.edit_config(|c| c["process"]["args"] = json!(["/init", "echo", "nopivot"]));
    assert_eq!(e.ok(&["run", "--no-pivot", "f2"]), "nopivot\n");
}

/// The OCI `cgroup` mount on a cgroup v1/hybrid host: a tmpfs holding, for each hierarchy, a
/// read-only bind of the container's own cgroup (the limits are visible), the host's symlinks
/// for comounted controllers, and with a cgroup namespace `/proc/self/cgroup` shows `/`.
#[test]
fn cgroup_mount_shows_the_container_cgroups() {
    if !need_root("cgroup_mount_shows_the_container_cgroups") {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!(
            "skipped: cgroup_mount_shows_the_container_cgroups: no cgroup v1 memory hierarchy"
        );
        return;
    }
    let host: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let e = Env::new("cgv1binds", &["/init", "pause"], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.retain(|m| m["destination"] != "/sys/fs/cgroup");
        m.push(json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
        }));
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        assert!(
            c["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "cgroup"),
            "the test bundle has a cgroup namespace"
        );
    });
    let run = |id: &str, args: &[&str]| {
        e.edit_config(|c| c["process"]["args"] = json!(args));
        e.run(&["run", id])
    };
    let o = run(
        "cg1",
        &[
            "/init",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "67108864");
    let o = run("cg2", &["/init", "ls", "/sys/fs/cgroup"]);
    let mut seen: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    let mut want = host.clone();
    want.sort();
    assert_eq!(seen, want, "hierarchies and comount links as on the host");
    for name in &host {
        if let Ok(t) = std::fs::read_link(format!("/sys/fs/cgroup/{name}")) {
            let o = run(
                "cg3",
                &["/init", "readlink", &format!("/sys/fs/cgroup/{name}")],
            );
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim(),
                t.to_string_lossy()
            );
        }
    }
    // Read-only: neither the tmpfs nor the binds can be written.
    for p in [
        "/sys/fs/cgroup/x",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ] {
        let o = run("cg4", &["/init", "write", p, "1"]);
        assert!(!o.status.success(), "{p} is writable");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
            "{p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = run("cg5", &["/init", "cat", "/proc/self/cgroup"]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!text.is_empty());
    for line in text.lines() {
        assert!(
            line.ends_with(":/"),
            "not at the cgroup namespace root: {text}"
        );
    }
    assert!(e.ids().is_empty(), "left behind: {:?}", e.ids());
}

#[test]
fn hooks_run_at_their_points() {
    if !need_root("hooks_run_at_their_points") {
        return;
    }
    let e = Env::new("hooks", &["/init", "pause"], |_| {});
    let out = e.dir.join("hooks-out");
    std::fs::create_dir_all(&out).unwrap();
    let script = e.dir.join("hook.sh");
    std::fs::write(&script, "#!/bin/sh\ncat > \"$1\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = script.to_str().unwrap().to_string();
    let h = |name: &str| json!([{"path": s, "args": ["hook.sh", out.join(format!("{name}.json")).to_str().unwrap()]}]);
    e.edit_config(|c| {
        c["hooks"] = json!({
            "prestart": h("prestart"),
            "createRuntime": h("createRuntime"),
            "createContainer": h("createContainer"),
            "poststart": h("poststart"),
            "poststop": h("poststop"),
            "startContainer": [{"path": "/init", "args": ["init", "write", "/dev/shm/started", "yes"]}],
        });
    });
    e.ok(&["create", "h1"]);
    let pid = e.state("h1")["pid"].as_i64().unwrap();
    for k in ["prestart", "createRuntime", "createContainer"] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(format!("{k}.json"))).unwrap())
                .unwrap();
        assert_eq!(v["id"], "h1", "{k}");
        assert_eq!(v["pid"].as_i64().unwrap(), pid, "{k}");
    }
    assert!(!out.join("poststart.json").exists());
    e.ok(&["start", "h1"]);
    assert!(out.join("poststart.json").exists());
    wait_until(Duration::from_secs(5), "startContainer hook", || {
        e.run(&["exec", "h1", "/init", "cat", "/dev/shm/started"])
            .stdout
            == b"yes"
    });
    e.ok(&["delete", "-f", "h1"]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("poststop.json")).unwrap()).unwrap();
    assert_eq!(v["status"], "stopped");
    // A failing prestart hook fails the create and leaves nothing behind.
    e.edit_config(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/false"}]}));
    let err = e.fails(&["create", "h2"]);
    assert!(err.contains("prestart"), "{err}");
    assert!(e.ids().is_empty());
}

#[test]
fn time_namespace() {
    if !need_root("time_namespace") {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("skipped: time_namespace: the kernel has no time namespaces");
        return;
    }
    let e = Env::new("timens", &["/init", "pause"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
    });
    e.ok(&["run", "-d", "t1"]);
    let pid = e.state("t1")["pid"].as_i64().unwrap().to_string();
    assert_ne!(ns_link(&pid, "time"), ns_link("self", "time"));
    e.ok(&["delete", "-f", "t1"]);
}

#[test]
fn cgroup_mount_and_cgroup_namespace() {
    if !need_root("cgroup_mount_and_cgroup_namespace") {
        return;
    }
    let e = Env::new("cgmount", &["/init", "pause"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    });
    e.ok(&["run", "-d", "g1"]);
    // The cgroup namespace is created after the container joined its cgroups: every
    // hierarchy shows it at the namespace root.
    let cg = e.ok(&["exec", "g1", "/init", "cat", "/proc/self/cgroup"]);
    for line in cg.lines() {
        assert_eq!(line.splitn(3, ':').nth(2), Some("/"), "{cg}");
    }
    let v2 = std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok();
    let limit = if v2 {
        e.ok(&["exec", "g1", "/init", "cat", "/sys/fs/cgroup/memory.max"])
    } else {
        e.ok(&[
            "exec",
            "g1",
            "/init",
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ])
    };
    assert_eq!(limit.trim(), "67108864");
    // The mount is read-only, as configured.
    let w = e.run(&["exec", "g1", "/init", "write", "/sys/fs/cgroup/x", "1"]);
    assert!(!w.status.success());
    e.ok(&["delete", "-f", "g1"]);
}
