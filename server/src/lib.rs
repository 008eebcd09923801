//! Berth's classroom web application (sessions, lessons, terminals, grading).
//!
//! Built by the Classroom issues on top of [`berth_runtime`].
