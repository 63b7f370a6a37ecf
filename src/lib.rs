//! castellan: a declarative provisioning agent for mutual-TLS PostgreSQL fleets.
pub mod boolean;
pub mod cli;
pub mod connection;
pub mod diff;
pub mod engine;
pub mod error;
pub mod inventory;
pub mod modules;
pub mod pki;
pub mod playbook;
pub mod postgres;
pub mod report;
pub mod template;
pub mod template_filters;
pub mod text;
pub mod vars;
pub mod yaml;
