//! Helpers shared by the integration tests.

pub mod chain;
pub mod vectors;
