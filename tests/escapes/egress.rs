//! Escapes: egress (filled in by its own change).
