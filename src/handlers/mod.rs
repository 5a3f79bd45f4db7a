//! Custom handlers: crun's `custom_handler_s` framework, the built-in krun handler and
//! out-of-tree handler `.so` files.
//!
//! A handler replaces the final `execv` of the container process (krun boots a libkrun microVM
//! instead) and gets callbacks at fixed points of the container's life:
//!
//! | method | where it runs |
//! |---|---|
//! | [`configure_handler`] (`load`) | parent, before clone |
//! | [`LoadedHandler::modify_oci_configuration`] | parent, before clone |
//! | [`LoadedHandler::configure_container`] with [`Phase::BeforeUserns`] | parent, before clone |
//! | `configure_container` with the other phases | container process |
//! | [`LoadedHandler::close_fds`], then [`LoadedHandler::run`] | container process, instead of `execv` |
//!
//! Selection follows crun's `libcrun_configure_handler` (see `docs/krun.md`), except that an
//! unknown handler name is an error instead of being silently ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Context, Error, Result};
use crate::ffi::types::{custom_handler_s, handler_configure_phase};

pub mod dynamic;
pub mod krun;

/// The annotation that selects a handler per container.
pub const HANDLER_ANNOTATION: &str = "run.oci.handler";
/// The CRI annotation whose value `sandbox` disables every handler (crun issue #798).
pub const CRI_CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Where `configure_container` is being called from (crun's `enum handler_configure_phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Parent process, before the container process is cloned.
    BeforeUserns,
    /// Container process, before the rootfs mounts.
    BeforeMounts,
    /// Container process, while the mounts are made.
    Mounts,
    /// Container process, after the mounts and before `pivot_root`.
    AfterMounts,
}

impl Phase {
    /// The C enum value.
    pub fn to_c(self) -> handler_configure_phase {
        match self {
            Phase::BeforeUserns => handler_configure_phase::HANDLER_CONFIGURE_BEFORE_USERNS,
            Phase::BeforeMounts => handler_configure_phase::HANDLER_CONFIGURE_BEFORE_MOUNTS,
            Phase::Mounts => handler_configure_phase::HANDLER_CONFIGURE_MOUNTS,
            Phase::AfterMounts => handler_configure_phase::HANDLER_CONFIGURE_AFTER_MOUNTS,
        }
    }

    /// From the raw C value; anything else is EINVAL.
    pub fn from_c(v: i32) -> Result<Self> {
        Ok(match v {
            1 => Phase::BeforeMounts,
            2 => Phase::AfterMounts,
            3 => Phase::Mounts,
            4 => Phase::BeforeUserns,
            _ => crate::bail!(libc::EINVAL, "invalid handler configure phase {v}"),
        })
    }
}

/// What a handler may know about the container it runs.
#[derive(Debug, Clone, Copy)]
pub struct ContainerInfo<'a> {
    /// The container id.
    pub id: &'a str,
    /// The (possibly handler-modified) OCI configuration.
    pub spec: &'a oci_spec::runtime::Spec,
    /// The bundle directory; a relative `root.path` is relative to it.
    pub bundle: &'a Path,
    /// The container's state directory (`<state_root>/<id>`), holding `config.json`.
    pub state_dir: &'a Path,
}

impl ContainerInfo<'_> {
    /// The container's annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
}

/// A handler instance chosen for one container (crun's `custom_handler_instance_s`).
/// Dropping it unloads the handler.
pub trait LoadedHandler {
    /// The handler's name (`krun`).
    fn name(&self) -> &str;
    /// Parent, before clone: adjust the configuration (krun adds device cgroup rules).
    fn modify_oci_configuration(&mut self, spec: &mut oci_spec::runtime::Spec) -> Result<()>;
    /// [`Phase::BeforeUserns`] runs in the parent before clone; the others in the container
    /// process.  `rootfs` is the root path; a relative one is taken relative to the bundle.
    fn configure_container(
        &mut self,
        phase: Phase,
        info: &ContainerInfo,
        rootfs: &Path,
    ) -> Result<()>;
    /// Container process, just before [`LoadedHandler::run`]: close inherited descriptors at
    /// or above `3 + preserve_fds` that the handler does not need.  Errors after this point
    /// can only be reported on stderr.
    fn close_fds(&mut self, preserve_fds: i32) -> Result<()>;
    /// Container process, in place of `execv(pathname, argv)`.  On success it normally never
    /// returns (krun exits with the guest's status).
    fn run(&mut self, info: &ContainerInfo, pathname: &str, argv: &[String]) -> Result<i32>;
    /// Whether `exec` into a running container is supported (krun: no).
    fn supports_exec(&self) -> bool;
    /// `exec` a process in a running container through the handler.
    fn exec(&mut self, info: &ContainerInfo, pathname: &str, argv: &[String]) -> Result<i32> {
        let _ = (info, pathname, argv);
        crate::bail!(libc::ENOTSUP, "the handler does not support exec")
    }
}

/// The handlers compiled into crun-rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// libkrun microVMs.
    Krun,
}

impl Builtin {
    /// The handler's name.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Krun => krun::NAME,
        }
    }

    /// The `crun --version` feature tag (without `+`).
    pub fn feature_string(self) -> &'static str {
        match self {
            Builtin::Krun => krun::FEATURE,
        }
    }
}

/// One handler known to a [`HandlerManager`].
pub(crate) enum Entry {
    Builtin(Builtin),
    Dynamic(dynamic::DynamicEntry),
}

impl Entry {
    pub(crate) fn name(&self) -> &str {
        match self {
            Entry::Builtin(b) => b.name(),
            Entry::Dynamic(d) => &d.name,
        }
    }

    fn alias(&self) -> Option<&str> {
        match self {
            Entry::Builtin(_) => None,
            Entry::Dynamic(d) => d.alias.as_deref(),
        }
    }

    fn feature_string(&self) -> Option<&str> {
        match self {
            Entry::Builtin(b) => Some(b.feature_string()),
            Entry::Dynamic(d) => d.feature.as_deref(),
        }
    }
}

/// The set of handlers a runtime can choose from (crun's `custom_handler_manager_s`):
/// the built-in ones first, then those loaded from directories, in load order.
pub struct HandlerManager {
    pub(crate) entries: Vec<Entry>,
    /// Directory to load `libkrun*.so.1` from instead of the dynamic linker's search path.
    krun_library_dir: Option<PathBuf>,
}

impl std::fmt::Debug for HandlerManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerManager")
            .field("handlers", &self.names())
            .finish()
    }
}

impl HandlerManager {
    /// A manager holding the built-in handlers (krun).
    pub fn new_builtin() -> Result<Self> {
        Ok(HandlerManager {
            entries: vec![Entry::Builtin(Builtin::Krun)],
            krun_library_dir: None,
        })
    }

    /// Load every non-hidden file of `path` as a handler `.so` exporting
    /// `run_oci_handler_get_handler` (crun's `libcrun_handler_manager_load_directory`).
    /// Files are loaded in name order; the first failure stops the load and is returned.
    pub fn load_directory(&mut self, path: &Path) -> Result<()> {
        let rd = std::fs::read_dir(path)
            .with_context(|| format!("cannot opendir `{}`", path.display()))?;
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.with_context(|| format!("readdir `{}`", path.display()))?;
            let name = ent.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            names.push(path.join(name));
        }
        names.sort();
        for file in names {
            let e = dynamic::DynamicEntry::open(&file)?;
            self.entries.push(Entry::Dynamic(e));
        }
        Ok(())
    }

    /// `+NAME ` for each handler with a feature string, as `crun --version` prints them.
    pub fn feature_tags(&self) -> String {
        self.entries
            .iter()
            .filter_map(Entry::feature_string)
            .map(|f| format!("+{f} "))
            .collect()
    }

    /// The names of the known handlers, in lookup order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name().to_string()).collect()
    }

    /// Load `libkrun.so.1` and its flavours from `dir` instead of the library search path
    /// (for tests and non-standard installs).
    pub fn set_krun_library_dir(&mut self, dir: Option<PathBuf>) {
        self.krun_library_dir = dir;
    }

    /// The index of the handler called `name` (or aliased so); the first match wins.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.name() == name || e.alias() == Some(name))
    }

    /// Make a Rust instance of entry `idx`.
    fn instantiate(&self, idx: usize) -> Result<Box<dyn LoadedHandler>> {
        match &self.entries[idx] {
            Entry::Builtin(Builtin::Krun) => Ok(Box::new(krun::KrunHandler::load_from(
                self.krun_library_dir.as_deref(),
            )?)),
            Entry::Dynamic(d) => Ok(Box::new(d.load()?)),
        }
    }
}

/// What [`select_handler`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// Run the container normally.
    None,
    /// Use the manager's entry at this index.
    Entry(usize),
}

/// crun's selection rules (`libcrun_configure_handler`), shared by the Rust and C APIs.
/// `can_handle(idx)` asks entry `idx` whether it wants an unannotated container.
pub(crate) fn select_handler(
    manager: Option<&HandlerManager>,
    context_handler: Option<&str>,
    annotation: impl Fn(&str) -> Option<String>,
    mut can_handle: impl FnMut(usize) -> Result<bool>,
) -> Result<Selection> {
    if annotation(CRI_CONTAINER_TYPE_ANNOTATION).as_deref() == Some("sandbox") {
        return Ok(Selection::None);
    }
    let ann = annotation(HANDLER_ANNOTATION);
    if let (Some(global), Some(_)) = (context_handler, ann.as_deref()) {
        crate::bail!(
            libc::EACCES,
            "invalid attempt to override already configured global handler: `{global}`"
        );
    }
    if let Some(name) = context_handler.map(str::to_string).or(ann) {
        let Some(m) = manager else {
            crate::bail!(
                libc::EINVAL,
                "handler requested but no manager configured: `{name}`"
            );
        };
        return match m.find(&name) {
            Some(i) => Ok(Selection::Entry(i)),
            None => Err(Error::new(
                libc::ENOENT,
                format!(
                    "unknown handler `{name}` (available: {})",
                    if m.entries.is_empty() {
                        "none".to_string()
                    } else {
                        m.names().join(", ")
                    }
                ),
            )),
        };
    }
    let Some(m) = manager else {
        return Ok(Selection::None);
    };
    for i in 0..m.entries.len() {
        if can_handle(i)? {
            return Ok(Selection::Entry(i));
        }
    }
    Ok(Selection::None)
}

/// Pick and load the handler for a container from its annotations, crun's rules:
/// * `io.kubernetes.cri.container-type: sandbox` → no handler;
/// * a global handler (`context_handler`, e.g. from argv[0] `krun`) and the `run.oci.handler`
///   annotation both set → EACCES;
/// * the named handler (global, else annotation) must exist, or ENOENT naming it;
/// * otherwise the first handler whose `can_handle_container` accepts the container.
///
/// Out-of-tree handlers' `can_handle_container` only see the annotations here; use
/// [`configure_handler_for_spec`] to give them the whole configuration.
pub fn configure_handler(
    manager: Option<&HandlerManager>,
    context_handler: Option<&str>,
    annotations: Option<&HashMap<String, String>>,
) -> Result<Option<Box<dyn LoadedHandler>>> {
    let spec: oci_spec::runtime::Spec = serde_json::from_value(serde_json::json!({
        "ociVersion": "1.0.0",
        "annotations": annotations.cloned().unwrap_or_default(),
    }))
    .map_err(|e| Error::new(libc::EINVAL, format!("build configuration: {e}")))?;
    configure_handler_for_spec(manager, context_handler, &spec)
}

/// Which handler [`configure_handler_for_spec`] would choose, without loading it (for `exec`,
/// `state` and the like): its name, or `None` to run natively.  Same errors as selection.
pub fn selected_handler_name(
    manager: Option<&HandlerManager>,
    context_handler: Option<&str>,
    spec: &oci_spec::runtime::Spec,
) -> Result<Option<String>> {
    let annotation = |k: &str| spec.annotations().as_ref().and_then(|a| a.get(k).cloned());
    let sel = select_handler(manager, context_handler, annotation, |i| match manager {
        Some(m) => match &m.entries[i] {
            Entry::Builtin(_) => Ok(false),
            Entry::Dynamic(d) => d.can_handle(spec),
        },
        None => Ok(false),
    })?;
    Ok(match (sel, manager) {
        (Selection::Entry(i), Some(m)) => Some(m.entries[i].name().to_string()),
        _ => None,
    })
}

/// `Err(ENOTSUP "the handler does not support exec")` when the handler chosen for this
/// container cannot `exec` (krun); `Ok(())` for native containers and handlers that can.
pub fn check_exec_supported(
    manager: Option<&HandlerManager>,
    context_handler: Option<&str>,
    spec: &oci_spec::runtime::Spec,
) -> Result<()> {
    let Some(name) = selected_handler_name(manager, context_handler, spec)? else {
        return Ok(());
    };
    let supported = manager
        .and_then(|m| m.find(&name).map(|i| &m.entries[i]))
        .is_some_and(|e| match e {
            Entry::Builtin(Builtin::Krun) => false,
            // SAFETY: the vtable is valid while the manager holds its library.
            Entry::Dynamic(d) => unsafe { (*d.vtable.0).exec_func.is_some() },
        });
    if supported {
        Ok(())
    } else {
        Err(Error::new(
            libc::ENOTSUP,
            format!("the handler does not support exec: `{name}`"),
        ))
    }
}

/// [`configure_handler`] for a full configuration.
pub fn configure_handler_for_spec(
    manager: Option<&HandlerManager>,
    context_handler: Option<&str>,
    spec: &oci_spec::runtime::Spec,
) -> Result<Option<Box<dyn LoadedHandler>>> {
    let annotation = |k: &str| spec.annotations().as_ref().and_then(|a| a.get(k).cloned());
    let sel = select_handler(manager, context_handler, annotation, |i| match manager {
        Some(m) => match &m.entries[i] {
            Entry::Builtin(_) => Ok(false),
            Entry::Dynamic(d) => d.can_handle(spec),
        },
        None => Ok(false),
    })?;
    match (sel, manager) {
        (Selection::Entry(i), Some(m)) => m
            .instantiate(i)
            .map(Some)
            .with_context(|| format!("load handler `{}`", m.entries[i].name())),
        _ => Ok(None),
    }
}

/// The library handle of an out-of-tree handler, closed when the last user drops it.
pub(crate) type SharedLibrary = Arc<dynamic::Library>;

/// A raw vtable pointer that may be moved between threads: the vtables are immutable.
#[derive(Clone, Copy)]
pub(crate) struct VtablePtr(pub(crate) *const custom_handler_s);
// SAFETY: a handler vtable is never written after `run_oci_handler_get_handler` returns it.
unsafe impl Send for VtablePtr {}
// SAFETY: as above.
unsafe impl Sync for VtablePtr {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn selection_rules() {
        let m = HandlerManager::new_builtin().unwrap();
        let no = |_| Ok(false);
        assert_eq!(
            select_handler(Some(&m), None, ann(&[]), no).unwrap(),
            Selection::None
        );
        assert_eq!(
            select_handler(Some(&m), None, ann(&[("run.oci.handler", "krun")]), no).unwrap(),
            Selection::Entry(0)
        );
        assert_eq!(
            select_handler(Some(&m), Some("krun"), ann(&[]), no).unwrap(),
            Selection::Entry(0)
        );
        let e = select_handler(
            Some(&m),
            Some("krun"),
            ann(&[("run.oci.handler", "krun")]),
            no,
        )
        .unwrap_err();
        assert_eq!(e.errno(), libc::EACCES);
        assert!(e
            .message()
            .starts_with("invalid attempt to override already configured global handler"));
        let e =
            select_handler(Some(&m), None, ann(&[("run.oci.handler", "wasm")]), no).unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
        assert_eq!(e.message(), "unknown handler `wasm` (available: krun)");
        assert_eq!(
            select_handler(
                Some(&m),
                Some("krun"),
                ann(&[("io.kubernetes.cri.container-type", "sandbox")]),
                no
            )
            .unwrap(),
            Selection::None
        );
        let e = select_handler(None, Some("krun"), ann(&[]), no).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(
            select_handler(None, None, ann(&[]), no).unwrap(),
            Selection::None
        );
        assert_eq!(
            select_handler(Some(&m), None, ann(&[]), |_| Ok(true)).unwrap(),
            Selection::Entry(0)
        );
    }

    #[test]
    fn exec_support_is_known_without_loading() {
        let m = HandlerManager::new_builtin().unwrap();
        let spec = |a: serde_json::Value| -> oci_spec::runtime::Spec {
            serde_json::from_value(serde_json::json!({"ociVersion": "1.0.0", "annotations": a}))
                .unwrap()
        };
        let krun = spec(serde_json::json!({"run.oci.handler": "krun"}));
        assert_eq!(
            selected_handler_name(Some(&m), None, &krun)
                .unwrap()
                .as_deref(),
            Some("krun")
        );
        let e = check_exec_supported(Some(&m), None, &krun).unwrap_err();
        assert_eq!(e.errno(), libc::ENOTSUP);
        assert_eq!(e.message(), "the handler does not support exec: `krun`");
        let e = check_exec_supported(Some(&m), Some("krun"), &spec(serde_json::json!({})));
        assert!(e.is_err());
        check_exec_supported(Some(&m), None, &spec(serde_json::json!({}))).unwrap();
        check_exec_supported(None, None, &spec(serde_json::json!({}))).unwrap();
    }

    #[test]
    fn feature_tags_and_phases() {
        let m = HandlerManager::new_builtin().unwrap();
        assert_eq!(m.feature_tags(), "+LIBKRUN ");
        for p in [
            Phase::BeforeUserns,
            Phase::BeforeMounts,
            Phase::Mounts,
            Phase::AfterMounts,
        ] {
            assert_eq!(Phase::from_c(p.to_c() as i32).unwrap(), p);
        }
        assert_eq!(Phase::from_c(9).unwrap_err().errno(), libc::EINVAL);
    }
}
