//! (placeholder; C API for container)
