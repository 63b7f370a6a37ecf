//! PostgreSQL domain logic shared by the `pg_*` modules (DESIGN.md part 3): configuration file
//! parsers and editors, facts, service control with rollback, mutual-TLS verification.
pub mod conf;
pub mod facts;
pub mod guc_contexts;
pub mod hba;
pub mod manager;
pub mod patroni;
pub mod service;
pub mod target;
pub mod verify;
pub mod win_scripts;
