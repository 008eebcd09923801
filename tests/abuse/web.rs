//! Abuse: web (filled in by its own change).
