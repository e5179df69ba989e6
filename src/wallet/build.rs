//! Transaction builders: fund, size, fee, sign, and check every kind of transaction.
//!
//! Owns the assembly of transactions from a selection of coins. It must not relax any
//! rule: each builder returns a transaction only after it passed the chain's own checks
//! against the state it was built on.

use super::coins;
use super::{Wallet, WalletError};
use crate::chain::address::Address;
use crate::chain::amount::Amount;
use crate::chain::state::{State, StateView};
use crate::chain::tx::{Sig64, Transaction, TxIn, TxOut};
use crate::compute::problem::{Certificate, Params};
use crate::hash::Hash256;
use crate::pouw::task::TaskSpec;
use ed25519_dalek::SigningKey;

/// A transaction shape to fund: given the inputs and the change output (if any), the
/// unsigned transaction.
type Shape<'a> = dyn Fn(Vec<TxIn>, Option<TxOut>) -> Transaction + 'a;

impl Wallet {
    /// A signed payment of `amount` to `to`, funded from the wallet's mature coins, change
    /// to [`Wallet::change_address`].
    pub fn transfer(
        &self,
        state: StateView<'_>,
        height: u64,
        to: Address,
        amount: Amount,
        fee_rate: u64,
    ) -> Result<Transaction, WalletError> {
        if amount == Amount::ZERO {
            return Err(WalletError::ZeroAmount);
        }
        let shape = |inputs, change: Option<TxOut>| Transaction::Transfer {
            inputs,
            outputs: std::iter::once(TxOut { value: amount, address: to }).chain(change).collect(),
        };
        let tx = self.fund(state.state, height, amount, fee_rate, &shape)?;
        self.checked(tx, state, height)
    }

    /// A signed task submission escrowing `bounty` until `expires_at_height`. The first
    /// input's key becomes the task's creator (who may reclaim it after expiry).
    pub fn submit_task(
        &self,
        state: StateView<'_>,
        height: u64,
        spec: TaskSpec,
        bounty: Amount,
        expires_at_height: u64,
        fee_rate: u64,
    ) -> Result<Transaction, WalletError> {
        if bounty == Amount::ZERO {
            return Err(WalletError::ZeroAmount);
        }
        let shape = |inputs, change: Option<TxOut>| Transaction::SubmitTask {
            inputs,
            outputs: change.into_iter().collect(),
            spec: spec.clone(),
            bounty,
            expires_at_height,
        };
        let tx = self.fund(state.state, height, bounty, fee_rate, &shape)?;
        self.checked(tx, state, height)
    }

    /// A signed model update of `task_id` with `params` and their certificate `claimed`,
    /// paying any bounty to `reward_to`. With `fee_rate` zero it has no inputs (and needs
    /// no key); otherwise the wallet's coins pay the fee.
    #[allow(clippy::too_many_arguments)] // one per field of the transaction, plus state and fee
    pub fn model_update(
        &self,
        state: StateView<'_>,
        height: u64,
        task_id: Hash256,
        params: Params,
        claimed: Certificate,
        reward_to: Address,
        fee_rate: u64,
    ) -> Result<Transaction, WalletError> {
        let shape = |inputs, change: Option<TxOut>| Transaction::ModelUpdate {
            inputs,
            outputs: change.into_iter().collect(),
            task_id,
            params: params.0.clone(),
            claimed: claimed.clone(),
            reward_to,
        };
        let tx = if fee_rate == 0 {
            shape(Vec::new(), None)
        } else {
            self.fund(state.state, height, Amount::ZERO, fee_rate, &shape)?
        };
        self.checked(tx, state, height)
    }

    /// A signed reclaim of an expired, unsolved task, by the creator's key. Pays no fee
    /// (it has no inputs; pools exempt it).
    pub fn reclaim(&self, state: StateView<'_>, height: u64, task_id: Hash256) -> Result<Transaction, WalletError> {
        let task = state.task(&task_id).ok_or(WalletError::UnknownTask(task_id))?;
        let creator = task.creator.ok_or(WalletError::NotCreator(task_id))?;
        let key = self.key_for(&creator).ok_or(WalletError::NotCreator(task_id))?;
        let mut tx = Transaction::ReclaimTask { task_id, pubkey: [0; 32], signature: Sig64::EMPTY };
        tx.sign(&self.params.chain_id, &[key]);
        self.checked(tx, state, height)
    }

    /// The fee of a transaction of `size` bytes at `fee_rate`: zero for a zero rate, else
    /// `max(min_fee, fee_rate × size)` (saturating: an absurd rate then fails as
    /// insufficient funds, not as an overflow).
    fn fee_for(&self, size: usize, fee_rate: u64) -> Amount {
        if fee_rate == 0 {
            return Amount::ZERO;
        }
        Amount::from_units(fee_rate.saturating_mul(size as u64)).max(self.min_fee)
    }

    /// Funds `shape` so that its inputs cover `pay` (outputs other than change, plus any
    /// bounty) and the fee, then signs it.
    ///
    /// Starts from the smallest possible fee, sizes the transaction with placeholder
    /// signatures (real ones have the same fixed size), and redoes the selection while the
    /// measured fee exceeds the one funded. The fee only grows and takes finitely many
    /// values (one per selection and change choice), so this ends; usually after one
    /// extra round, when the fee pulled in another coin.
    fn fund(
        &self,
        state: &State,
        height: u64,
        pay: Amount,
        fee_rate: u64,
        shape: &Shape<'_>,
    ) -> Result<Transaction, WalletError> {
        let change_to = self.change_address()?;
        let (available, immature) = self.coins(state, height);
        let mut fee = self.fee_for(0, fee_rate);
        loop {
            let needed = pay.checked_add(fee)?;
            let sel = coins::select(&available, needed, immature)?;
            let inputs: Vec<TxIn> = sel
                .coins
                .iter()
                .map(|c| TxIn { prevout: c.outpoint, pubkey: [0; 32], signature: Sig64::EMPTY })
                .collect();
            let change = sel.change.map(|value| TxOut { value, address: change_to });
            let mut tx = shape(inputs, change);
            let required = self.fee_for(tx.size(), fee_rate);
            if required > fee {
                fee = required;
                continue;
            }
            let keys: Vec<&SigningKey> = sel
                .coins
                .iter()
                .map(|c| {
                    self.key_for(&c.entry.output.address).ok_or_else(|| WalletError::UnknownAddress {
                        address: c.entry.output.address.to_string_for(self.network),
                    })
                })
                .collect::<Result<_, _>>()?;
            tx.sign(&self.params.chain_id, &keys);
            return Ok(tx);
        }
    }

    /// Returns `tx` only if the chain would accept it in a block at `height` on `state`.
    fn checked(&self, tx: Transaction, state: StateView<'_>, height: u64) -> Result<Transaction, WalletError> {
        tx.check(&self.params.tx_limits)?;
        tx.verify_signatures(&self.params.chain_id)?;
        state.check_tx(&tx, height, &self.params)?;
        Ok(tx)
    }
}
