//! The engine's registry client (see below).
