//! PostgreSQL modules. Shared logic lives in `crate::postgres`.
pub mod hba_args;
pub mod manager_restart;
pub mod patroni_config;
pub mod pg_conf;
pub mod pg_facts;
pub mod pg_hba;
pub mod pg_service;
pub mod pg_verify;
pub mod pg_win;
pub mod target;
