//! Escapes: trees (filled in by its own change).
