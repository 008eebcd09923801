//! Escapes: binds (filled in by its own change).
