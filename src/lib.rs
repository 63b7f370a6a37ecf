//! castellan: a declarative provisioning agent for mutual-TLS PostgreSQL fleets.
pub mod error;
pub mod inventory;
pub mod modules;
pub mod yaml;
