//! Property tests: every consensus object survives the canonical encoding bit for bit, a
//! decoded object re-encodes to the same bytes, and no byte string makes a decoder panic.

use gradientcoin::chain::address::Address;
use gradientcoin::chain::amount::Amount;
use gradientcoin::chain::block::{Block, Header, WorkClaim, WorkWitness};
use gradientcoin::chain::encode::{decode, encode};
use gradientcoin::chain::tx::{OutPoint, Sig64, Transaction, TxIn, TxOut};
use gradientcoin::compute::copyright::CopyrightVariant;
use gradientcoin::compute::problem::{Certificate, Figure};
use gradientcoin::hash::Hash256;
use gradientcoin::pouw::task::{CopyrightSpec, TaskData, TaskKind, TaskSpec};
use proptest::prelude::*;

fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

fn f64_bits() -> impl Strategy<Value = f64> {
    // Every bit pattern, NaNs included: the encoding must carry them exactly.
    any::<u64>().prop_map(f64::from_bits)
}

fn txout() -> impl Strategy<Value = TxOut> {
    (any::<u64>(), any::<[u8; 20]>()).prop_map(|(v, a)| TxOut { value: Amount::from_units(v), address: Address(a) })
}

fn txin() -> impl Strategy<Value = TxIn> {
    (hash(), any::<u32>(), any::<[u8; 32]>(), any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(
        |(txid, vout, pubkey, s1, s2)| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&s1);
            sig[32..].copy_from_slice(&s2);
            TxIn { prevout: OutPoint { txid, vout }, pubkey, signature: Sig64(sig) }
        },
    )
}

fn spec() -> impl Strategy<Value = TaskSpec> {
    let data =
        prop_oneof![
            (1u32..4, 1u32..4, any::<u64>())
                .prop_flat_map(|(r, c, _)| {
                    (
                        Just(r),
                        Just(c),
                        proptest::collection::vec(f64_bits(), (r * c) as usize),
                        proptest::collection::vec(f64_bits(), r as usize),
                    )
                })
                .prop_map(|(rows, cols, a, b)| TaskData::Inline { rows, cols, a, b }),
            (any::<u32>(), any::<u32>(), any::<u64>(), f64_bits())
                .prop_map(|(n, d, seed, scale)| TaskData::Synthetic { n, d, seed, scale }),
        ];
    let cr = proptest::option::of((proptest::collection::vec(any::<u32>(), 0..5), f64_bits(), 0u8..3).prop_map(
        |(rows, gamma, v)| CopyrightSpec {
            rows,
            gamma,
            variant: [CopyrightVariant::All, CopyrightVariant::UnprotectedOnly, CopyrightVariant::PerBlock][v as usize],
        },
    ));
    (any::<bool>(), data, f64_bits(), cr, f64_bits()).prop_map(|(k, data, reg_lambda, copyright, target_score)| {
        TaskSpec {
            kind: if k { TaskKind::Softmax } else { TaskKind::ResnetSoftmax },
            data,
            reg_lambda,
            copyright,
            target_score,
        }
    })
}

fn certificate() -> impl Strategy<Value = Certificate> {
    (f64_bits(), f64_bits(), f64_bits(), proptest::collection::vec(("[a-z_]{0,12}", f64_bits()), 0..3)).prop_map(
        |(score, loss, grad_norm, f)| Certificate {
            score,
            loss,
            grad_norm,
            figures: f.into_iter().map(|(name, value)| Figure { name, value }).collect(),
        },
    )
}

fn tx() -> impl Strategy<Value = Transaction> {
    let ins = || proptest::collection::vec(txin(), 0..3);
    let outs = || proptest::collection::vec(txout(), 0..3);
    prop_oneof![
        (any::<u64>(), outs()).prop_map(|(height, outputs)| Transaction::Coinbase { height, outputs }),
        (ins(), outs()).prop_map(|(inputs, outputs)| Transaction::Transfer { inputs, outputs }),
        (ins(), outs(), spec(), any::<u64>(), any::<u64>()).prop_map(|(inputs, outputs, spec, b, e)| {
            Transaction::SubmitTask { inputs, outputs, spec, bounty: Amount::from_units(b), expires_at_height: e }
        }),
        (ins(), outs(), hash(), proptest::collection::vec(f64_bits(), 0..6), certificate(), any::<[u8; 20]>())
            .prop_map(|(inputs, outputs, task_id, params, claimed, r)| Transaction::ModelUpdate {
                inputs,
                outputs,
                task_id,
                params,
                claimed,
                reward_to: Address(r)
            }),
        (hash(), any::<[u8; 32]>(), txin()).prop_map(|(task_id, pubkey, i)| Transaction::ReclaimTask {
            task_id,
            pubkey,
            signature: i.signature
        }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (any::<u32>(), hash(), hash(), any::<u64>(), any::<u32>(), (hash(), hash(), any::<u64>(), hash()), any::<u64>())
        .prop_map(|(version, prev, merkle_root, time, bits, (task_id, input_hash, cost, output_hash), nonce)| Header {
            version,
            prev,
            merkle_root,
            time,
            bits,
            work: WorkClaim { task_id, input_hash, cost, output_hash },
            nonce,
        })
}

/// Bit-level equality (NaN payloads included), via the encoding itself being injective
/// on what was decoded.
fn same_bits<T: serde::Serialize>(a: &T, b: &T) -> bool {
    encode(a) == encode(b)
}

proptest! {
    #[test]
    fn transactions_round_trip(t in tx()) {
        let bytes = encode(&t);
        let back: Transaction = decode(&bytes, 1 << 24, "tx").unwrap();
        prop_assert!(same_bits(&t, &back));
        prop_assert_eq!(t.txid(), back.txid());
    }

    #[test]
    fn headers_round_trip_at_fixed_size(h in header()) {
        let bytes = encode(&h);
        prop_assert_eq!(bytes.len(), 192);
        let back: Header = decode(&bytes, 192, "header").unwrap();
        prop_assert_eq!(back, h);
        prop_assert_eq!(back.hash(), h.hash());
    }

    #[test]
    fn blocks_round_trip(h in header(), w in proptest::collection::vec(f64_bits(), 0..8), txs in proptest::collection::vec(tx(), 0..4)) {
        let b = Block { header: h, witness: WorkWitness { input_params: w }, txs };
        let bytes = encode(&b);
        let back: Block = decode(&bytes, 1 << 24, "block").unwrap();
        prop_assert!(same_bits(&b, &back));
    }

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode::<Block>(&bytes, 1 << 20, "block");
        let _ = decode::<Transaction>(&bytes, 1 << 20, "tx");
        let _ = decode::<Header>(&bytes, 1 << 20, "header");
    }

    #[test]
    fn truncated_and_extended_encodings_are_rejected(t in tx(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&t);
        let n = cut.index(bytes.len());
        prop_assert!(decode::<Transaction>(&bytes[..n], 1 << 24, "tx").is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(decode::<Transaction>(&longer, 1 << 24, "tx").is_err());
    }
}
