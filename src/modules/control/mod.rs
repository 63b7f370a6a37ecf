//! Modules that only touch the run itself: messages, checks, facts.
pub mod assert;
pub mod debug;
pub mod fail;
pub mod set_fact;
