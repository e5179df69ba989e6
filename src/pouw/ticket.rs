//! Mining-ticket seeds (DESIGN.md §3 step 2).
//!
//! # Consensus
//! `seed = H("gradientcoin/ticket/v1" || encode(header with output_hash = 0))`: the seed
//! commits to everything in the header except the step's own output, so any change to the
//! header needs a new step. The caller (`chain::block`) supplies the encoded header.

use crate::hash::sha256d_parts;

/// Domain separator of ticket seeds.
pub const TICKET_DOMAIN: &[u8] = b"gradientcoin/ticket/v1";

/// The 32-byte step seed of a ticket from the canonical encoding of its header with
/// `output_hash` zeroed.
pub fn ticket_seed(header_without_output: &[u8]) -> [u8; 32] {
    sha256d_parts(&[TICKET_DOMAIN, header_without_output]).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_depends_on_every_header_byte() {
        let h = vec![7u8; 100];
        let base = ticket_seed(&h);
        for i in [0, 50, 99] {
            let mut g = h.clone();
            g[i] ^= 1;
            assert_ne!(ticket_seed(&g), base);
        }
        assert_eq!(ticket_seed(&h), base);
    }
}
