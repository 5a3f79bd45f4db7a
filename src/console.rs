//! (placeholder; filled in by the console work)
