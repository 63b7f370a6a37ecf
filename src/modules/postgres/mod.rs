//! PostgreSQL modules.
pub mod pg_conf;
pub mod pg_hba;
