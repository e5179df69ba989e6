//! Who is to blame when an object is refused: the one classification that the network
//! (ban or not), the mempool (relay or not), sync (defer or ban) and RPC (error code) all
//! read, so that a refusal means the same thing everywhere.
//!
//! Each error type says its own [`Fault`] through [`Classify`]; what a caller does with it
//! is the caller's: `node::p2p` bans on [`Fault::Peer`], sync defers on
//! [`Fault::Transient`], RPC answers [`Fault::Local`] with an internal-error code.
//!
//! # Consensus
//! Not a consensus rule, but it guards one: a [`Fault::Peer`] must be a refusal no honest
//! node can provoke, or honest peers get banned and the network splits. So an error whose
//! verdict depends on which blocks we have is [`Fault::TipDependent`], never `Peer`.

/// The classes of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The sender sent what no honest node sends (invalid at every tip): ban it.
    Peer,
    /// Cannot be judged yet (an unknown parent, a time ahead of our clock): retry later,
    /// nobody's fault.
    Transient,
    /// Judged against our tip, which an honest sender may not share (an input we saw
    /// spent, a task that just expired, an update another beat): drop it without blame.
    TipDependent,
    /// Ours: our store, our policy (fees, pool size), a bug, a shutdown.
    Local,
}

/// An error that knows its [`Fault`].
pub trait Classify {
    /// Who is to blame.
    fn fault(&self) -> Fault;

    /// Whether the sender is to blame.
    fn is_peer_fault(&self) -> bool {
        self.fault() == Fault::Peer
    }
}

/// A refusal that is not an error type of its own (a fixed class).
impl Classify for Fault {
    fn fault(&self) -> Fault {
        *self
    }
}
