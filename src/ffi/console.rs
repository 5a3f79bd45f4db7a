//! (placeholder; C API for console)
