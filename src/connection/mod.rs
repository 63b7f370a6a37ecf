//! Talking to managed hosts: command-line construction and (later) SSH transports.
pub mod quote;
