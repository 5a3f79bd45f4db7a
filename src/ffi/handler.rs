//! (placeholder; C API for handler)
