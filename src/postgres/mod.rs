//! PostgreSQL domain logic shared by the `pg_*` modules (DESIGN.md part 3).
pub mod facts;
pub mod service;
pub mod target;
pub mod verify;
