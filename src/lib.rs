//! castellan: a declarative provisioning agent for mutual-TLS PostgreSQL fleets.
pub mod connection;
pub mod error;
pub mod inventory;
pub mod modules;
pub mod playbook;
pub mod report;
pub mod template;
pub mod template_filters;
pub mod vars;
pub mod yaml;
