//! Escapes: unpack (filled in by its own change).
