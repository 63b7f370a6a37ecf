//! castellan: a declarative provisioning agent for mutual-TLS PostgreSQL fleets.
pub mod modules;
pub mod pki;
