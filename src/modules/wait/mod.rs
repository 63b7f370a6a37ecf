//! Waiting for a condition on the host: `wait_for`.
pub mod wait_for;
