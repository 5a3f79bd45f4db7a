//! The one error type of crun-rs.
//!
//! An [`Error`] carries a **positive** errno (or 0 when there is no system error behind it) and a
//! message chain, outermost context first, rendered like crun's: `context: inner: msg`.  When it is
//! shown to a user the errno is appended as `: strerror(errno)`.
//!
//! Errors become a C `struct libcrun_error_s` only at the FFI edge (`crate::ffi`).  The constructor
//! normalises the sign of the errno, so a negative errno coming from a C library (libkrun returns
//! `-EINVAL`) can never reach a user as "Unknown error -22".

use std::ffi::CStr;
use std::fmt;

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An errno-style error with a message chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    errno: i32,
    msg: String,
}

impl Error {
    /// Build an error.  `errno` may be given with either sign; the stored value is `>= 0`.
    pub fn new(errno: i32, msg: impl Into<String>) -> Self {
        Error {
            errno: normalize_errno(errno),
            msg: msg.into(),
        }
    }

    /// An error with no errno (status 0), like crun's `crun_make_error (err, 0, ...)`.
    pub fn msg(msg: impl Into<String>) -> Self {
        Error::new(0, msg)
    }

    /// An error from the calling thread's current `errno`.
    pub fn last_os_error(msg: impl Into<String>) -> Self {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Error::new(errno, msg)
    }

    /// The positive errno, or 0.
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// The message chain without the `strerror` suffix.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Prefix the message with `context: `, keeping the errno (crun's `crun_error_wrap`).
    pub fn wrap(mut self, context: impl fmt::Display) -> Self {
        self.msg = format!("{}: {}", context, self.msg);
        self
    }

    /// The value a failing libcrun call returns: `-status - 1`.
    pub fn return_code(&self) -> i32 {
        -self.errno - 1
    }

    /// Replace the errno (used where a caller knows better, e.g. a protocol violation).
    pub fn with_errno(mut self, errno: i32) -> Self {
        self.errno = normalize_errno(errno);
        self
    }
}

/// `msg: strerror(errno)`, or just `msg` when errno is 0: what crun prints and what podman's
/// regexes (126/127 mapping) expect.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errno == 0 {
            f.write_str(&self.msg)
        } else {
            write!(f, "{}: {}", self.msg, strerror(self.errno))
        }
    }
}

/// The absolute value of an errno, saturating for `i32::MIN`.
pub fn normalize_errno(errno: i32) -> i32 {
    errno.checked_abs().unwrap_or(i32::MAX)
}

/// The C library's text for an errno, as `strerror(3)` gives it.
pub fn strerror(errno: i32) -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: the XSI strerror_r (what the libc crate binds on glibc) writes a NUL-terminated
    // string of at most buf.len() bytes into buf.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    // SAFETY: strerror_r succeeded, so buf holds a NUL-terminated string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl From<nix::errno::Errno> for Error {
    fn from(e: nix::errno::Errno) -> Self {
        Error::new(e as i32, e.desc())
    }
}

/// Attach a message to failures from nix, std::io or our own errors.
pub trait Context<T> {
    /// On error, produce an [`Error`] with this message (for a bare errno) or this context
    /// prefixed (for an [`Error`] that already has a message).
    fn context(self, msg: impl fmt::Display) -> Result<T>;
    /// Like [`Context::context`], but the message is only built on failure.
    fn with_context<F, S>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: fmt::Display;
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn context(self, msg: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::new(e as i32, msg.to_string()))
    }
    fn with_context<F, S>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: fmt::Display,
    {
        self.map_err(|e| Error::new(e as i32, f().to_string()))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, msg: impl fmt::Display) -> Result<T> {
        self.map_err(|e| io_error(e, msg.to_string()))
    }
    fn with_context<F, S>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: fmt::Display,
    {
        self.map_err(|e| io_error(e, f().to_string()))
    }
}

impl<T> Context<T> for Result<T> {
    fn context(self, msg: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.wrap(msg))
    }
    fn with_context<F, S>(self, f: F) -> Result<T>
    where
        F: FnOnce() -> S,
        S: fmt::Display,
    {
        self.map_err(|e| e.wrap(f()))
    }
}

fn io_error(e: std::io::Error, msg: String) -> Error {
    match e.raw_os_error() {
        Some(errno) => Error::new(errno, msg),
        // An io::Error without an OS code (e.g. UnexpectedEof) keeps its own text.
        None => Error::new(io_kind_errno(e.kind()), format!("{msg}: {e}")),
    }
}

fn io_kind_errno(kind: std::io::ErrorKind) -> i32 {
    use std::io::ErrorKind::*;
    match kind {
        NotFound => libc::ENOENT,
        PermissionDenied => libc::EACCES,
        InvalidInput | InvalidData => libc::EINVAL,
        UnexpectedEof => libc::EPIPE,
        TimedOut => libc::ETIMEDOUT,
        WouldBlock => libc::EAGAIN,
        AlreadyExists => libc::EEXIST,
        _ => libc::EIO,
    }
}

/// Build an `Err(Error)` with `format!` arguments: `bail!(libc::EINVAL, "bad id `{}`", id)`.
#[macro_export]
macro_rules! bail {
    ($errno:expr, $($arg:tt)*) => {
        return Err($crate::error::Error::new($errno, format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_errno_is_stored_positive() {
        let e = Error::new(-libc::EINVAL, "could not start krun");
        assert_eq!(e.errno(), libc::EINVAL);
        assert_eq!(e.to_string(), "could not start krun: Invalid argument");
        assert_eq!(e.return_code(), -libc::EINVAL - 1);
    }

    #[test]
    fn min_errno_saturates() {
        assert_eq!(Error::new(i32::MIN, "x").errno(), i32::MAX);
    }

    #[test]
    fn status_zero_renders_without_strerror() {
        let e = Error::msg("unknown log type `foo`");
        assert_eq!(e.to_string(), "unknown log type `foo`");
        assert_eq!(e.return_code(), -1);
    }

    #[test]
    fn wrap_prefixes_and_keeps_errno() {
        let e = Error::new(libc::ENOENT, "open `/x`")
            .wrap("load config")
            .wrap("create");
        assert_eq!(e.message(), "create: load config: open `/x`");
        assert_eq!(e.errno(), libc::ENOENT);
    }

    #[test]
    fn context_on_nix_and_io() {
        let r: std::result::Result<(), nix::errno::Errno> = Err(nix::errno::Errno::EACCES);
        let e = r.context("mkdir `/a`").unwrap_err();
        assert_eq!((e.errno(), e.message()), (libc::EACCES, "mkdir `/a`"));
        let r = std::fs::File::open("/nonexistent/crun-rs-test").context("open `x`");
        assert_eq!(r.unwrap_err().errno(), libc::ENOENT);
        let r: std::result::Result<(), std::io::Error> = Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "eof",
        ));
        let e = r.context("read sync").unwrap_err();
        assert_eq!(e.errno(), libc::EPIPE);
        assert_eq!(e.message(), "read sync: eof");
    }

    #[test]
    fn strerror_matches_libc() {
        assert_eq!(strerror(libc::ENOENT), "No such file or directory");
        assert!(strerror(-22).starts_with("Unknown error"));
    }
}
