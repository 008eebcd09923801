//! The `berth` subcommands: parse, call the runtime, print.

pub mod daemon;
pub mod image;
pub mod lesson;
pub mod registry;
pub mod run;
pub mod serve;
