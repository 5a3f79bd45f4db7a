//! crun-rs: a Rust implementation of crun's libcrun.
//!
//! C programs link `libcrun.so.0` / `libcrun.a` and include `libcrun.h`; Rust programs use the
//! safe modules directly.  See ARCHITECTURE.md for the module map.

pub mod error;
pub mod ffi;
pub mod log;
mod sys;

pub mod cgroups;
pub mod cli;
pub mod console;
pub mod container;
pub mod handlers;
pub mod hooks;
pub mod seccomp;

pub use error::{Context, Error, Result};
