//! castellan: a declarative provisioning agent for mutual-TLS PostgreSQL fleets.
pub mod connection;
pub mod modules;
