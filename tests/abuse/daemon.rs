//! Abuse: daemon (filled in by its own change).
