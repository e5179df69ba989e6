//! Transactions: the five kinds, txids, the signing message, signatures, and the checks a
//! transaction passes on its own (no chain state).
//!
//! Owns the transaction types and their context-free validity. It must not look at the
//! UTXO set or the task registry: that is `state`'s job.
//!
//! # Consensus
//! `txid = H(encode(tx))` including signatures (ed25519 `verify_strict` makes them
//! non-malleable). Every input (and a reclaim's creator key) signs
//! `H(chain_id || encode(tx with every signature zeroed))`, so a transaction is bound to
//! one network.

use crate::chain::address::Address;
use crate::chain::amount::{Amount, AmountError};
use crate::chain::encode;
use crate::compute::problem::Certificate;
use crate::hash::{Hash256, sha256d, sha256d_parts};
use crate::pouw::task::TaskSpec;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;

/// An ed25519 signature (64 bytes), encoded as 64 bytes without a length prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sig64(pub [u8; 64]);

impl Sig64 {
    /// The all-zero placeholder used in the signing message.
    pub const EMPTY: Sig64 = Sig64([0u8; 64]);
}

impl std::fmt::Debug for Sig64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sig64({})", hex::encode(self.0))
    }
}

impl Serialize for Sig64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(64)?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for Sig64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Sig64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sig64, A::Error> {
                let mut out = [0u8; 64];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(Sig64(out))
            }
        }
        d.deserialize_tuple(64, V)
    }
}

/// A reference to an output: the transaction and the output's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutPoint {
    /// The creating transaction.
    pub txid: Hash256,
    /// Index among its outputs.
    pub vout: u32,
}

/// A payment to an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOut {
    /// Value in base units.
    pub value: Amount,
    /// The payee.
    pub address: Address,
}

/// A spend of an output, authorised by the key whose address it pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxIn {
    /// The output spent.
    pub prevout: OutPoint,
    /// The ed25519 public key; its address must be the output's.
    pub pubkey: [u8; 32],
    /// Signature over the signing message.
    pub signature: Sig64,
}

/// A transaction.
///
/// DESIGN.md §2 describes one struct whose `kind` selects the fields; an enum gives every
/// kind exactly its fields, so no field can be set where it means nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Transaction {
    /// First transaction of every block: subsidy + fees + any bounty the block's work earned.
    Coinbase {
        /// The block's height (makes every coinbase txid unique, as BIP 34).
        height: u64,
        /// Payouts.
        outputs: Vec<TxOut>,
    },
    /// A plain payment.
    Transfer {
        /// Spends.
        inputs: Vec<TxIn>,
        /// Payments.
        outputs: Vec<TxOut>,
    },
    /// Submits a task and escrows its bounty; `task_id = txid`.
    SubmitTask {
        /// Spends (the first input's key is the task's creator).
        inputs: Vec<TxIn>,
        /// Change.
        outputs: Vec<TxOut>,
        /// The task.
        spec: TaskSpec,
        /// Escrowed reward for the first solution meeting the target.
        bounty: Amount,
        /// After this height an unsolved task expires and can be reclaimed.
        expires_at_height: u64,
    },
    /// An off-chain solution; pays the bounty to `reward_to` if it meets the target.
    ModelUpdate {
        /// Spends paying the fee (may be empty).
        inputs: Vec<TxIn>,
        /// Change.
        outputs: Vec<TxOut>,
        /// The task.
        task_id: Hash256,
        /// The parameters.
        params: Vec<f64>,
        /// Their certificate; must equal the recomputed one bit for bit.
        claimed: Certificate,
        /// Who receives the bounty.
        reward_to: Address,
    },
    /// Returns an expired, unsolved task's bounty to its creator.
    ReclaimTask {
        /// The task.
        task_id: Hash256,
        /// The creator's public key.
        pubkey: [u8; 32],
        /// The creator's signature.
        signature: Sig64,
    },
}

/// Context-free limits of a transaction (from `ChainParams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLimits {
    /// Encoded size cap.
    pub max_tx_bytes: usize,
    /// Outputs per transaction.
    pub max_outputs: usize,
    /// Parameters in a model update.
    pub max_params: usize,
}

/// Why a transaction is invalid on its own.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TxError {
    /// Encoded size above the limit.
    #[error("transaction of {size} bytes exceeds the limit of {limit}")]
    Oversize {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// A kind that needs inputs has none.
    #[error("{kind} has no inputs")]
    NoInputs {
        /// The kind.
        kind: &'static str,
    },
    /// A kind that needs outputs has none.
    #[error("{kind} has no outputs")]
    NoOutputs {
        /// The kind.
        kind: &'static str,
    },
    /// Too many outputs.
    #[error("{count} outputs exceed the limit of {limit}")]
    TooManyOutputs {
        /// Count.
        count: usize,
        /// Limit.
        limit: usize,
    },
    /// An output of value zero.
    #[error("output {index} has value zero")]
    ZeroOutput {
        /// Output index.
        index: usize,
    },
    /// The same outpoint spent twice in one transaction.
    #[error("input {index} spends {txid}:{vout} a second time")]
    DuplicateInput {
        /// Input index.
        index: usize,
        /// Spent txid.
        txid: Hash256,
        /// Spent index.
        vout: u32,
    },
    /// Values overflow.
    #[error("{0}")]
    Amount(#[from] AmountError),
    /// A public key that is not a valid ed25519 point.
    #[error("input {index}: public key is not a valid ed25519 key")]
    BadPubkey {
        /// Input index (`u32::MAX` for a reclaim's creator key).
        index: usize,
    },
    /// A signature that does not verify (strictly) for the signing message.
    #[error("input {index}: signature does not verify for this transaction on this network")]
    BadSignature {
        /// Input index.
        index: usize,
    },
    /// A model update's parameters include NaN or inf.
    #[error("model update parameter {index} is not finite")]
    NonFiniteParams {
        /// Index of the first bad value.
        index: usize,
    },
    /// Too many parameters.
    #[error("model update has {count} parameters, above the limit of {limit}")]
    TooManyParams {
        /// Count.
        count: usize,
        /// Limit.
        limit: usize,
    },
    /// A bounty of zero.
    #[error("task bounty must be positive")]
    ZeroBounty,
}

/// Always the sender's fault: a transaction is invalid on its own whatever the chain.
impl crate::chain::fault::Classify for TxError {
    fn fault(&self) -> crate::chain::fault::Fault {
        crate::chain::fault::Fault::Peer
    }
}

impl Transaction {
    /// The kind's name.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Transaction::Coinbase { .. } => "coinbase",
            Transaction::Transfer { .. } => "transfer",
            Transaction::SubmitTask { .. } => "submit_task",
            Transaction::ModelUpdate { .. } => "model_update",
            Transaction::ReclaimTask { .. } => "reclaim_task",
        }
    }

    /// `H(encode(tx))`.
    pub fn txid(&self) -> Hash256 {
        sha256d(&encode::encode(self))
    }

    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        encode::encoded_len(self)
    }

    /// True for a coinbase.
    pub fn is_coinbase(&self) -> bool {
        matches!(self, Transaction::Coinbase { .. })
    }

    /// The spends.
    pub fn inputs(&self) -> &[TxIn] {
        match self {
            Transaction::Transfer { inputs, .. }
            | Transaction::SubmitTask { inputs, .. }
            | Transaction::ModelUpdate { inputs, .. } => inputs,
            Transaction::Coinbase { .. } | Transaction::ReclaimTask { .. } => &[],
        }
    }

    /// The outputs created.
    pub fn outputs(&self) -> &[TxOut] {
        match self {
            Transaction::Coinbase { outputs, .. }
            | Transaction::Transfer { outputs, .. }
            | Transaction::SubmitTask { outputs, .. }
            | Transaction::ModelUpdate { outputs, .. } => outputs,
            Transaction::ReclaimTask { .. } => &[],
        }
    }

    /// A copy with every signature zeroed (what is signed).
    fn unsigned(&self) -> Transaction {
        let mut t = self.clone();
        match &mut t {
            Transaction::Transfer { inputs, .. }
            | Transaction::SubmitTask { inputs, .. }
            | Transaction::ModelUpdate { inputs, .. } => {
                for i in inputs {
                    i.signature = Sig64::EMPTY;
                }
            }
            Transaction::ReclaimTask { signature, .. } => *signature = Sig64::EMPTY,
            Transaction::Coinbase { .. } => {}
        }
        t
    }

    /// `H(chain_id || encode(tx with every signature zeroed))`.
    pub fn signing_message(&self, chain_id: &Hash256) -> Hash256 {
        sha256d_parts(&[&chain_id.0, &encode::encode(&self.unsigned())])
    }

    /// Signs every input with `keys[i]` (and a reclaim with `keys[0]`), setting the public
    /// keys too. Extra keys are ignored; missing keys leave inputs unsigned.
    pub fn sign(&mut self, chain_id: &Hash256, keys: &[&SigningKey]) {
        match self {
            Transaction::Transfer { inputs, .. }
            | Transaction::SubmitTask { inputs, .. }
            | Transaction::ModelUpdate { inputs, .. } => {
                for (i, k) in inputs.iter_mut().zip(keys) {
                    i.pubkey = k.verifying_key().to_bytes();
                }
            }
            Transaction::ReclaimTask { pubkey, .. } => {
                if let Some(k) = keys.first() {
                    *pubkey = k.verifying_key().to_bytes();
                }
            }
            Transaction::Coinbase { .. } => return,
        }
        let msg = self.signing_message(chain_id);
        match self {
            Transaction::Transfer { inputs, .. }
            | Transaction::SubmitTask { inputs, .. }
            | Transaction::ModelUpdate { inputs, .. } => {
                for (i, k) in inputs.iter_mut().zip(keys) {
                    i.signature = Sig64(k.sign(&msg.0).to_bytes());
                }
            }
            Transaction::ReclaimTask { signature, .. } => {
                if let Some(k) = keys.first() {
                    *signature = Sig64(k.sign(&msg.0).to_bytes());
                }
            }
            Transaction::Coinbase { .. } => {}
        }
    }

    /// Checks every signature with `verify_strict` (never batch verification, DESIGN.md §2).
    pub fn verify_signatures(&self, chain_id: &Hash256) -> Result<(), TxError> {
        let msg = self.signing_message(chain_id);
        let check = |index: usize, pubkey: &[u8; 32], sig: &Sig64| -> Result<(), TxError> {
            let vk = VerifyingKey::from_bytes(pubkey).map_err(|_| TxError::BadPubkey { index })?;
            vk.verify_strict(&msg.0, &Signature::from_bytes(&sig.0)).map_err(|_| TxError::BadSignature { index })
        };
        match self {
            Transaction::ReclaimTask { pubkey, signature, .. } => check(0, pubkey, signature),
            _ => {
                for (index, i) in self.inputs().iter().enumerate() {
                    check(index, &i.pubkey, &i.signature)?;
                }
                Ok(())
            }
        }
    }

    /// Checks that need only the transaction, cheapest first: size, shape, values,
    /// duplicate inputs. Signatures are checked separately ([`Transaction::verify_signatures`])
    /// because they are the expensive part.
    pub fn check(&self, limits: &TxLimits) -> Result<(), TxError> {
        let size = self.size();
        if size > limits.max_tx_bytes {
            return Err(TxError::Oversize { size, limit: limits.max_tx_bytes });
        }
        let kind = self.kind_name();
        match self {
            Transaction::Transfer { inputs, outputs } => {
                if inputs.is_empty() {
                    return Err(TxError::NoInputs { kind });
                }
                if outputs.is_empty() {
                    return Err(TxError::NoOutputs { kind });
                }
            }
            Transaction::SubmitTask { inputs, bounty, .. } => {
                if inputs.is_empty() {
                    return Err(TxError::NoInputs { kind });
                }
                if *bounty == Amount::ZERO {
                    return Err(TxError::ZeroBounty);
                }
            }
            Transaction::ModelUpdate { params, .. } => {
                if params.len() > limits.max_params {
                    return Err(TxError::TooManyParams { count: params.len(), limit: limits.max_params });
                }
                if let Some(index) = params.iter().position(|v| !v.is_finite()) {
                    return Err(TxError::NonFiniteParams { index });
                }
            }
            // A coinbase may pay nothing: after the last halving a block without fees
            // earns no reward, and the chain must not stop there (DESIGN.md §6).
            Transaction::Coinbase { .. } => {}
            Transaction::ReclaimTask { .. } => {}
        }
        let outputs = self.outputs();
        if outputs.len() > limits.max_outputs {
            return Err(TxError::TooManyOutputs { count: outputs.len(), limit: limits.max_outputs });
        }
        if let Some(index) = outputs.iter().position(|o| o.value == Amount::ZERO) {
            return Err(TxError::ZeroOutput { index });
        }
        Amount::checked_sum(outputs.iter().map(|o| o.value))?;
        let mut seen = HashSet::with_capacity(self.inputs().len());
        for (index, i) in self.inputs().iter().enumerate() {
            if !seen.insert(i.prevout) {
                return Err(TxError::DuplicateInput { index, txid: i.prevout.txid, vout: i.prevout.vout });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn transfer() -> Transaction {
        Transaction::Transfer {
            inputs: vec![TxIn {
                prevout: OutPoint { txid: Hash256([1; 32]), vout: 0 },
                pubkey: [0; 32],
                signature: Sig64::EMPTY,
            }],
            outputs: vec![TxOut { value: Amount::from_units(5), address: Address([2; 20]) }],
        }
    }

    fn limits() -> TxLimits {
        TxLimits { max_tx_bytes: 4 << 20, max_outputs: 10_000, max_params: 1 << 20 }
    }

    #[test]
    fn signatures_verify_only_on_their_own_chain() {
        let chain = Hash256([7; 32]);
        let mut tx = transfer();
        tx.sign(&chain, &[&key(1)]);
        assert!(tx.verify_signatures(&chain).is_ok());
        assert_eq!(tx.verify_signatures(&Hash256([8; 32])), Err(TxError::BadSignature { index: 0 }));
        // Changing any signed field breaks the signature.
        if let Transaction::Transfer { outputs, .. } = &mut tx {
            outputs[0].value = Amount::from_units(6);
        }
        assert_eq!(tx.verify_signatures(&chain), Err(TxError::BadSignature { index: 0 }));
    }

    #[test]
    fn txid_commits_to_signatures_but_signing_message_does_not() {
        let chain = Hash256([7; 32]);
        let mut a = transfer();
        a.sign(&chain, &[&key(1)]);
        let mut b = a.clone();
        if let Transaction::Transfer { inputs, .. } = &mut b {
            inputs[0].signature = Sig64([3; 64]);
        }
        assert_ne!(a.txid(), b.txid());
        assert_eq!(a.signing_message(&chain), b.signing_message(&chain));
    }

    #[test]
    fn context_free_checks_reject_malformed_transactions() {
        let l = limits();
        assert!(transfer().check(&l).is_ok());
        let no_in = Transaction::Transfer { inputs: vec![], outputs: transfer().outputs().to_vec() };
        assert_eq!(no_in.check(&l), Err(TxError::NoInputs { kind: "transfer" }));
        let mut dup = transfer();
        if let Transaction::Transfer { inputs, .. } = &mut dup {
            inputs.push(inputs[0]);
        }
        assert!(matches!(dup.check(&l), Err(TxError::DuplicateInput { index: 1, .. })));
        let mut zero = transfer();
        if let Transaction::Transfer { outputs, .. } = &mut zero {
            outputs[0].value = Amount::ZERO;
        }
        assert_eq!(zero.check(&l), Err(TxError::ZeroOutput { index: 0 }));
        let mut big = transfer();
        if let Transaction::Transfer { outputs, .. } = &mut big {
            outputs.push(TxOut { value: Amount::MAX, address: Address([0; 20]) });
        }
        assert!(matches!(big.check(&l), Err(TxError::Amount(_))));
        assert!(matches!(transfer().check(&TxLimits { max_tx_bytes: 10, ..l }), Err(TxError::Oversize { .. })));
        let many = Transaction::Coinbase { height: 1, outputs: vec![transfer().outputs()[0]; 3] };
        assert!(matches!(many.check(&TxLimits { max_outputs: 2, ..l }), Err(TxError::TooManyOutputs { .. })));
    }

    #[test]
    fn sig64_round_trips_through_the_canonical_encoding_without_a_length_prefix() {
        let s = Sig64([9; 64]);
        let bytes = encode::encode(&s);
        assert_eq!(bytes.len(), 64);
        assert_eq!(encode::decode::<Sig64>(&bytes, 64, "sig").unwrap(), s);
    }
}
