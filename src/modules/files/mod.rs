//! Modules that manage files.
//!
//! `lineinfile`, `blockinfile` and `ini_file` are pure editors: they map the current content of a
//! file (or its absence) and their content arguments to an [`Edit`](crate::modules::edit::Edit).
pub mod blockinfile;
pub mod common;
pub mod copy;
pub mod editor_args;
pub mod env_file;
pub mod file;
pub mod ini_file;
pub mod lineinfile;
pub mod mode;
pub mod stat;
pub mod template;

pub(crate) use editor_args::lenient;
pub use editor_args::State;
