//! PostgreSQL: configuration file parsers and editors, facts, service control.
pub mod conf;
pub mod guc_contexts;
pub mod hba;
