//! Modules that manage files.
pub mod common;
pub mod copy;
pub mod file;
pub mod mode;
pub mod stat;
pub mod template;
