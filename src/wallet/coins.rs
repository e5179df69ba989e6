//! Coin selection: which of the wallet's unspent outputs fund a transaction.
//!
//! Owns the choice of inputs (largest first) and of the change (none below the dust
//! threshold). It must not sign or decide validity: it reads the UTXO set and applies the
//! same maturity rule as `chain::state`, so it never offers a coin the chain would reject.

use super::WalletError;
use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::state::{State, UtxoEntry};
use crate::chain::tx::OutPoint;
use std::collections::HashSet;

/// Change below this many base units is not worth an output (it would cost more to spend
/// than it holds): it is added to the fee instead.
pub const DUST: Amount = Amount::from_units(1_000);

/// An unspent output the wallet can spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// What it holds and whom it pays.
    pub entry: UtxoEntry,
}

/// The wallet's coins in `state`, split into spendable in a block at `height` and still
/// maturing (coinbase and bounty outputs younger than `maturity` blocks). Spendable coins
/// are sorted largest first, ties by outpoint, so selection is deterministic.
pub fn wallet_coins(state: &State, owned: &HashSet<Address>, height: u64, maturity: u64) -> (Vec<Coin>, Amount) {
    let mut spendable = Vec::new();
    let mut immature = Amount::ZERO;
    for (o, e) in state.utxos() {
        if !owned.contains(&e.output.address) {
            continue;
        }
        // The chain's rule (`State::spend_inputs`): spendable from `created + maturity` on.
        if e.maturing && height < e.height.saturating_add(maturity) {
            immature = immature.checked_add(e.output.value).unwrap_or(Amount::MAX);
            continue;
        }
        spendable.push(Coin { outpoint: *o, entry: *e });
    }
    spendable.sort_by(|a, b| b.entry.output.value.cmp(&a.entry.output.value).then(a.outpoint.cmp(&b.outpoint)));
    (spendable, immature)
}

/// Inputs covering `needed` and the change left over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The coins spent, largest first.
    pub coins: Vec<Coin>,
    /// Their total.
    pub total: Amount,
    /// `total - needed` when at least [`DUST`]; `None` when the rest (dust) goes to the fee.
    pub change: Option<Amount>,
}

/// Largest first from `coins` (already sorted) until `needed` is covered.
pub fn select(coins: &[Coin], needed: Amount, immature: Amount) -> Result<Selection, WalletError> {
    let mut picked = Vec::new();
    let mut total = Amount::ZERO;
    for c in coins {
        if total >= needed && !picked.is_empty() {
            break;
        }
        total = total.checked_add(c.entry.output.value)?;
        picked.push(*c);
    }
    if total < needed {
        return Err(WalletError::InsufficientFunds { needed, available: total, immature });
    }
    let rest = total.checked_sub(needed)?;
    Ok(Selection { coins: picked, total, change: (rest >= DUST).then_some(rest) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::tx::TxOut;
    use crate::hash::Hash256;

    fn coin(i: u8, units: u64) -> Coin {
        Coin {
            outpoint: OutPoint { txid: Hash256([i; 32]), vout: 0 },
            entry: UtxoEntry {
                output: TxOut { value: Amount::from_units(units), address: Address([1; 20]) },
                height: 1,
                maturing: false,
            },
        }
    }

    #[test]
    fn largest_first_with_dust_folded_into_the_fee() {
        let coins = [coin(1, 50_000), coin(2, 30_000), coin(3, 10_000)];
        let s = select(&coins, Amount::from_units(60_000), Amount::ZERO).expect("enough");
        assert_eq!(s.coins, vec![coins[0], coins[1]]);
        assert_eq!(s.change, Some(Amount::from_units(20_000)));
        let s = select(&coins, Amount::from_units(79_500), Amount::ZERO).expect("enough");
        assert_eq!((s.total, s.change), (Amount::from_units(80_000), None), "500 units of dust go to the fee");
        let e = select(&coins, Amount::from_units(90_001), Amount::from_units(7)).expect_err("short");
        assert!(
            matches!(e, WalletError::InsufficientFunds { available, .. } if available == Amount::from_units(90_000))
        );
        assert_eq!(
            e.to_string(),
            "insufficient funds: need 0.00090001 GRAD, spendable 0.00090000 GRAD (0.00000007 GRAD more is still maturing)"
        );
        // Nothing needed still spends one coin: a transaction needs an input.
        assert_eq!(select(&coins, Amount::ZERO, Amount::ZERO).expect("one coin").coins.len(), 1);
    }
}
