//! Useful work: task specifications and their admission, mining-ticket seeds, and the
//! verification of a block's step and of model-update certificates.
//!
//! Pure (uses `compute` and `hash` only): no I/O, clock or OS randomness. It does not know
//! blocks or transactions; `chain` hands it bytes and values.

pub mod task;
pub mod ticket;
pub mod verify;
