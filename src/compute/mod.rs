//! Numerics: deterministic kernels and the solver families. Knows nothing of chains.
//!
//! Must not do I/O, read the clock, or use OS randomness: data comes in as values.
pub mod attention;
pub mod copyright;
pub mod data;
pub mod det;
pub mod nmr;
pub mod problem;
pub mod ricl;
pub mod sketch;
pub mod softmax;
pub mod trajectory;
