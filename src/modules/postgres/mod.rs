//! PostgreSQL modules (issue 5). Shared logic lives in `crate::postgres`.
pub mod pg_facts;
pub mod pg_service;
pub mod pg_verify;
