//! Abuse: disk (filled in by its own change).
