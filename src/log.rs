//! crun-compatible logging: verbosity, text/JSON formats, and the output handler.
//!
//! The current handler is a C function pointer plus an opaque argument, exactly crun's
//! `crun_output_handler`, so C callers can install their own and `libcrun_init_logging` can
//! hand back ours.  Both are kept in atomics (not a mutex) so a process that forks while another
//! thread logs cannot deadlock in the child.
//!
//! Behaviour follows crun's `error.c`:
//! * messages above the current verbosity are dropped;
//! * an ERROR is also written to stderr (text) when the handler is not the stderr handler,
//!   because monitors such as conmon read the runtime's stderr, not its log file;
//! * in JSON mode the handler receives one `{"msg","level","time"}` object and errno 0.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use crate::error::{strerror, Context, Error, Result};

/// Only errors are printed (crun's default).
pub const VERBOSITY_ERROR: i32 = 0;
/// Errors and warnings.
pub const VERBOSITY_WARNING: i32 = 1;
/// Everything.
pub const VERBOSITY_DEBUG: i32 = 2;

/// crun's `crun_output_handler`: `(errno, msg, verbosity, arg)`.
pub type OutputHandlerFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *mut c_void);

static VERBOSITY: AtomicI32 = AtomicI32::new(VERBOSITY_ERROR);
static JSON: AtomicBool = AtomicBool::new(false);
/// 0 means "the stderr handler".
static HANDLER: AtomicUsize = AtomicUsize::new(0);
static HANDLER_ARG: AtomicUsize = AtomicUsize::new(0);
/// Every [`LogFile`] ever opened (they are never closed; see [`init_logging`]).
static OPEN_LOG_FILES: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// Log formats accepted by `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `msg: strerror` lines.
    Text,
    /// One JSON object per line.
    Json,
}

pub fn set_verbosity(v: i32) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

pub fn verbosity() -> i32 {
    VERBOSITY.load(Ordering::Relaxed)
}

pub fn set_format(f: Format) {
    JSON.store(f == Format::Json, Ordering::Relaxed);
}

pub fn format() -> Format {
    if JSON.load(Ordering::Relaxed) {
        Format::Json
    } else {
        Format::Text
    }
}

/// Parse `text` / `json`.
pub fn parse_format(s: &str) -> Result<Format> {
    match s {
        "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        _ => Err(Error::msg(format!("unknown log format type `{s}`"))),
    }
}

/// Make `handler(arg)` the current output handler; `None` restores the stderr handler.
pub fn set_output_handler(handler: Option<OutputHandlerFn>, arg: *mut c_void) {
    HANDLER.store(handler.map_or(0, |h| h as usize), Ordering::SeqCst);
    HANDLER_ARG.store(arg as usize, Ordering::SeqCst);
}

/// The current handler and its argument.
pub fn output_handler() -> (OutputHandlerFn, *mut c_void) {
    let h = HANDLER.load(Ordering::SeqCst);
    let arg = HANDLER_ARG.load(Ordering::SeqCst) as *mut c_void;
    if h == 0 {
        (log_write_to_stderr as OutputHandlerFn, std::ptr::null_mut())
    } else {
        // SAFETY: HANDLER only ever holds 0 or a value stored from an OutputHandlerFn.
        (
            unsafe { std::mem::transmute::<usize, OutputHandlerFn>(h) },
            arg,
        )
    }
}

fn is_stderr_handler(h: OutputHandlerFn) -> bool {
    h as usize == log_write_to_stderr as OutputHandlerFn as usize
}

fn level_name(verbosity: i32) -> &'static str {
    match verbosity {
        VERBOSITY_ERROR => "error",
        VERBOSITY_WARNING => "warning",
        _ => "debug",
    }
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` in UTC.
pub fn timestamp() -> String {
    let (tm, nsec) = crate::sys::utc_now();
    format!("{}.{:06}Z", crate::sys::format_date_time(&tm), nsec / 1000)
}

/// The one-line JSON form of a message, key order `msg`, `level`, `time` as crun's.
pub fn json_line(errno: i32, msg: &str, verbosity: i32) -> String {
    let full = if errno != 0 {
        format!("{}: {}", msg, strerror(errno))
    } else {
        msg.to_string()
    };
    format!(
        "{{\"msg\":{},\"level\":\"{}\",\"time\":\"{}\"}}",
        serde_json::Value::String(full),
        level_name(verbosity),
        timestamp()
    )
}

/// Log `msg` at `verbosity` through the current handler (crun's `write_log`).
pub fn write_log(errno: i32, verbosity: i32, msg: &str) {
    if verbosity > self::verbosity() {
        return;
    }
    let errno = crate::error::normalize_errno(errno);
    let (handler, arg) = output_handler();
    if verbosity == VERBOSITY_ERROR && !is_stderr_handler(handler) {
        write_line_to_fd(2, errno, msg, verbosity, Format::Text);
    }
    let (errno_arg, text) = match format() {
        Format::Text => (errno, msg.to_string()),
        Format::Json => (0, json_line(errno, msg, verbosity)),
    };
    let c = to_cstring(&text);
    // SAFETY: handler is a valid output handler (see set_output_handler) and c outlives the call.
    unsafe { handler(errno_arg, c.as_ptr(), verbosity, arg) };
}

/// Log an error.
pub fn error(errno: i32, msg: &str) {
    write_log(errno, VERBOSITY_ERROR, msg)
}

/// Log a warning.
pub fn warning(msg: &str) {
    write_log(0, VERBOSITY_WARNING, msg)
}

/// Log a debug message.
pub fn debug(msg: &str) {
    write_log(0, VERBOSITY_DEBUG, msg)
}

/// Log an [`Error`] at ERROR level.
pub fn log_error(e: &Error) {
    write_log(e.errno(), VERBOSITY_ERROR, e.message())
}

pub(crate) fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).expect("NULs were replaced")
}

/// Format one line as crun's `log_write_to_stream`: colour and (text mode) timestamp on a tty,
/// `msg[: strerror]\n`, written with a single `write(2)` so concurrent writers do not interleave.
fn format_stream_line(fd: i32, errno: i32, msg: &str, verbosity: i32, fmt: Format) -> Vec<u8> {
    // SAFETY: isatty only inspects the fd.
    let tty = unsafe { libc::isatty(fd) } == 1;
    let mut line = String::with_capacity(msg.len() + 64);
    if tty {
        line.push_str(match verbosity {
            VERBOSITY_ERROR => "\x1b[1;31m",
            VERBOSITY_WARNING => "\x1b[1;33m",
            _ => "\x1b[1;34m",
        });
        if fmt == Format::Text {
            line.push_str(&timestamp());
            line.push_str(": ");
        }
    }
    line.push_str(msg);
    if errno != 0 {
        line.push_str(": ");
        line.push_str(&strerror(errno));
    }
    if tty {
        line.push_str("\x1b[0m");
    }
    line.push('\n');
    line.into_bytes()
}

fn write_line_to_fd(fd: i32, errno: i32, msg: &str, verbosity: i32, fmt: Format) {
    let line = format_stream_line(fd, errno, msg, verbosity, fmt);
    crate::sys::write_all(fd, &line);
}

/// # Safety
/// `msg` is NULL or a NUL-terminated string.
unsafe fn msg_str<'a>(msg: *const c_char) -> std::borrow::Cow<'a, str> {
    if msg.is_null() {
        "(null)".into()
    } else {
        CStr::from_ptr(msg).to_string_lossy()
    }
}

/// The default output handler: writes `msg[: strerror(errno)]` to stderr.  Exported so C
/// callers can compare with what `libcrun_init_logging` returns or chain to it.
///
/// # Safety
/// `msg` is NULL or a NUL-terminated string.
#[export_name = "libcrun_log_write_to_stderr"]
pub unsafe extern "C" fn log_write_to_stderr(
    errno_: c_int,
    msg: *const c_char,
    verbosity: c_int,
    _arg: *mut c_void,
) {
    write_line_to_fd(2, errno_, &msg_str(msg), verbosity, format());
}

/// A log file opened by [`init_logging`]; the handler's argument.
pub struct LogFile {
    file: File,
}

/// The file handler; `arg` is a `*mut LogFile`.
///
/// # Safety
/// `msg` is NULL or a NUL-terminated string; `arg` is a `LogFile` from [`init_logging`].
pub unsafe extern "C" fn log_write_to_file(
    errno: c_int,
    msg: *const c_char,
    verbosity: c_int,
    arg: *mut c_void,
) {
    if arg.is_null() {
        return log_write_to_stderr(errno, msg, verbosity, arg);
    }
    let lf = &*(arg as *const LogFile);
    write_line_to_fd(
        lf.file.as_raw_fd(),
        errno,
        &msg_str(msg),
        verbosity,
        format(),
    );
}

/// The syslog handler.
///
/// # Safety
/// `msg` is NULL or a NUL-terminated string.
pub unsafe extern "C" fn log_write_to_syslog(
    errno: c_int,
    msg: *const c_char,
    verbosity: c_int,
    _arg: *mut c_void,
) {
    let prio = match verbosity {
        VERBOSITY_ERROR => libc::LOG_ERR,
        VERBOSITY_WARNING => libc::LOG_WARNING,
        _ => libc::LOG_DEBUG,
    };
    let mut text = msg_str(msg).into_owned();
    if errno != 0 {
        text.push_str(": ");
        text.push_str(&strerror(errno));
    }
    let c = to_cstring(&text);
    libc::syslog(prio, c"%s".as_ptr(), c.as_ptr());
}

/// Where `--log` sends messages.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Stderr,
    File(String),
    Syslog(Option<String>),
    Journald,
}

/// Parse a `--log` value: NULL/None = stderr, `PATH`, `file:PATH`, `syslog:[ID]`, `journald:[...]`.
pub fn parse_target(log: Option<&str>) -> Result<Target> {
    let Some(log) = log else {
        return Ok(Target::Stderr);
    };
    if log.is_empty() {
        return Err(Error::new(libc::EINVAL, "empty log target"));
    }
    match log.split_once(':') {
        None => Ok(Target::File(log.to_string())),
        Some(("file", path)) if !path.is_empty() => Ok(Target::File(path.to_string())),
        Some(("file", _)) => Err(Error::new(libc::EINVAL, "empty path in log target `file:`")),
        Some(("syslog", id)) => Ok(Target::Syslog((!id.is_empty()).then(|| id.to_string()))),
        Some(("journald", _)) => Ok(Target::Journald),
        Some(_) => Err(Error::new(
            libc::EINVAL,
            format!("unknown log type `{log}`"),
        )),
    }
}

/// Open the `--log` target and make it the current handler (crun's `libcrun_init_logging`).
/// Returns the handler and its argument.
pub fn init_logging(id: Option<&str>, log: Option<&str>) -> Result<(OutputHandlerFn, *mut c_void)> {
    let (handler, arg): (OutputHandlerFn, *mut c_void) = match parse_target(log)? {
        Target::Stderr => (log_write_to_stderr, std::ptr::null_mut()),
        Target::File(path) => {
            let file = OpenOptions::new()
                .append(true)
                .read(true)
                .create(true)
                .mode(0o640)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .with_context(|| format!("open log file `{path}`"))?;
            // Never freed, as crun never closes its FILE*: a caller may keep using the
            // handler and argument it was given.  Kept reachable for leak checkers.
            let lf = Box::into_raw(Box::new(LogFile { file }));
            OPEN_LOG_FILES
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(lf as usize);
            (log_write_to_file, lf.cast())
        }
        Target::Syslog(ident) => {
            let ident = ident.or_else(|| id.map(str::to_string));
            let ident_ptr = match ident {
                // openlog keeps the pointer: leak it.
                Some(s) => to_cstring(&s).into_raw() as *const c_char,
                None => std::ptr::null(),
            };
            // SAFETY: ident_ptr is NULL or a leaked, NUL-terminated string.
            unsafe { libc::openlog(ident_ptr, 0, libc::LOG_USER) };
            (log_write_to_syslog, std::ptr::null_mut())
        }
        Target::Journald => {
            return Err(Error::new(
                libc::ENOTSUP,
                format!(
                    "log target `{}`: journald is not supported by this build of crun-rs",
                    log.unwrap_or_default()
                ),
            ))
        }
    };
    set_output_handler(Some(handler), arg);
    Ok((handler, arg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target(None).unwrap(), Target::Stderr);
        assert_eq!(
            parse_target(Some("/tmp/x.log")).unwrap(),
            Target::File("/tmp/x.log".into())
        );
        assert_eq!(
            parse_target(Some("file:/a:b")).unwrap(),
            Target::File("/a:b".into())
        );
        assert_eq!(parse_target(Some("syslog:")).unwrap(), Target::Syslog(None));
        assert_eq!(
            parse_target(Some("syslog:ident")).unwrap(),
            Target::Syslog(Some("ident".into()))
        );
        assert_eq!(parse_target(Some("journald:")).unwrap(), Target::Journald);
        let e = parse_target(Some("nope:x")).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL);
        assert!(e.message().contains("unknown log type `nope:x`"));
    }

    #[test]
    fn json_line_shape() {
        let l = json_line(libc::ENOENT, "open \"x\"", VERBOSITY_ERROR);
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["msg"], "open \"x\": No such file or directory");
        assert_eq!(v["level"], "error");
        let t = v["time"].as_str().unwrap();
        assert_eq!(t.len(), "2026-01-01T00:00:00.000000Z".len());
        assert!(t.ends_with('Z'));
        // key order is msg, level, time
        assert!(l.starts_with("{\"msg\":"));
        assert!(l.find("\"level\"").unwrap() < l.find("\"time\"").unwrap());
    }

    #[test]
    fn formats_parse() {
        assert_eq!(parse_format("json").unwrap(), Format::Json);
        assert_eq!(parse_format("text").unwrap(), Format::Text);
        assert_eq!(parse_format("yaml").unwrap_err().errno(), 0);
    }

    #[test]
    fn stream_line_plain_when_not_a_tty() {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two fds into the array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let line = format_stream_line(fds[1], libc::EACCES, "m", VERBOSITY_ERROR, Format::Text);
        assert_eq!(line, b"m: Permission denied\n");
        // SAFETY: closing the fds we own.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
