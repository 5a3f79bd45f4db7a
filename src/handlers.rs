//! (placeholder; filled in by the handlers work)
