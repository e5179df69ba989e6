//! The RPC server: `ApiServer` over a node handle (and the network handle for `net_*`),
//! behind cookie / user-password authentication.

use super::auth::{self, Credentials};
use super::*;
use crate::net::{NetHandle, PeerId};
use crate::node::{BlockId, Handle};
use jsonrpsee::server::{Server, ServerHandle};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound.
    #[error("cannot serve RPC on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The cookie cannot be written.
    #[error("cannot write the RPC cookie {path}: {source}")]
    Cookie {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What the server answers from.
#[derive(Clone)]
pub struct RpcContext {
    /// The node.
    pub node: Handle,
    /// The network task (`None`: networking off; `net_*` then fail with -10).
    pub net: Option<NetHandle>,
    /// The node's network (address prefixes).
    pub network: crate::chain::Network,
    /// Default ban length for `net_ban`, seconds.
    pub ban_secs: u64,
    /// Where `node_stop` asks the node's owner to shut down.
    pub stop: Option<mpsc::Sender<()>>,
}

/// A running server. Dropping it without [`RpcServer::stop`] leaves the cookie in place.
pub struct RpcServer {
    /// The bound address.
    pub addr: SocketAddr,
    handle: ServerHandle,
    cookie: PathBuf,
}

impl RpcServer {
    /// Stops serving and removes the cookie.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
        let _ = std::fs::remove_file(&self.cookie);
    }
}

/// Serves the API on `bind`, writing a fresh cookie into `datadir`; `user_password` adds
/// a configured login.
pub async fn serve(
    bind: SocketAddr,
    datadir: &Path,
    user_password: Option<(String, String)>,
    ctx: RpcContext,
) -> Result<RpcServer, ServeError> {
    let cookie_path = auth::cookie_path(datadir);
    // Bind first: a second node on the same data directory must not replace the cookie.
    let listener = std::net::TcpListener::bind(bind).map_err(|source| ServeError::Bind { addr: bind, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: bind, source })?;
    // tokio refuses blocking sockets.
    listener.set_nonblocking(true).map_err(|source| ServeError::Bind { addr: bind, source })?;
    let cookie =
        auth::write_cookie(datadir).map_err(|source| ServeError::Cookie { path: cookie_path.clone(), source })?;
    let mut accepted = vec![Credentials::Cookie(cookie).header()];
    if let Some((user, password)) = user_password {
        accepted.push(Credentials::UserPassword { user, password }.header());
    }
    let middleware = tower::ServiceBuilder::new()
        .layer(tower_http::validate_request::ValidateRequestHeaderLayer::custom(auth::check(accepted)));
    let server = Server::builder()
        .set_http_middleware(middleware)
        .build_from_tcp(listener)
        .map_err(|source| ServeError::Bind { addr: bind, source })?;
    let handle = server.start(Service(ctx).into_rpc());
    Ok(RpcServer { addr, handle, cookie: cookie_path })
}

struct Service(RpcContext);

impl Service {
    fn net(&self) -> Result<&NetHandle, ErrorObjectOwned> {
        self.0.net.as_ref().ok_or_else(|| error(code::NOT_AVAILABLE, "networking is off on this node"))
    }

    fn peer(s: &str) -> Result<PeerId, ErrorObjectOwned> {
        s.trim().parse().map_err(|e| invalid(format!("invalid peer id {s:?}: {e}")))
    }

    async fn tip_height(&self) -> RpcResult<u64> {
        Ok(self.0.node.tip().await.map_err(node_error)?.height)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn net_error(e: crate::net::NetError) -> ErrorObjectOwned {
    error(code::NOT_AVAILABLE, e.to_string())
}

#[jsonrpsee::core::async_trait]
impl ApiServer for Service {
    async fn chain_get_tip(&self) -> RpcResult<TipView> {
        let t = self.0.node.tip().await.map_err(node_error)?;
        Ok(TipView::new(&t, self.0.network))
    }

    async fn chain_get_block(&self, id: serde_json::Value) -> RpcResult<BlockView> {
        let id =
            match &id {
                serde_json::Value::Number(n) => {
                    BlockId::Height(n.as_u64().ok_or_else(|| invalid(format!("invalid height {n}")))?)
                }
                serde_json::Value::String(s) if s.len() == 64 => BlockId::Hash(parse_hash("block hash", s)?),
                serde_json::Value::String(s) => BlockId::Height(s.trim().parse().map_err(|_| {
                    invalid(format!("invalid block id {s:?}: expected a height or a 64-hex-digit hash"))
                })?),
                other => return Err(invalid(format!("invalid block id {other}: expected a height or a hash"))),
            };
        let info = self.0.node.block_info(id).await.map_err(node_error)?;
        Ok(BlockView::new(&info, self.0.network))
    }

    async fn chain_get_tx(&self, txid: String) -> RpcResult<TxView> {
        let info = self.0.node.tx(parse_hash("txid", &txid)?).await.map_err(node_error)?;
        Ok(TxView::found(&info, self.0.network))
    }

    async fn chain_get_merkle_proof(&self, txid: String) -> RpcResult<ProofView> {
        let p = self.0.node.merkle_proof(parse_hash("txid", &txid)?).await.map_err(node_error)?;
        Ok(ProofView::new(&p))
    }

    async fn chain_get_utxos(&self, addresses: Option<Vec<String>>) -> RpcResult<Vec<UtxoView>> {
        let addrs = match addresses {
            None => None,
            Some(v) => Some(v.iter().map(|a| parse_address(a, self.0.network)).collect::<Result<Vec<_>, _>>()?),
        };
        let v = self.0.node.utxos(addrs).await.map_err(node_error)?;
        Ok(v.iter().map(|(o, e)| UtxoView::new(o, e, self.0.network)).collect())
    }

    async fn tx_send(&self, hex: String) -> RpcResult<String> {
        let bytes = hex::decode(hex.trim()).map_err(|e| invalid(format!("invalid transaction hex: {e}")))?;
        let tx: Transaction =
            crate::chain::encode::decode(&bytes, crate::chain::encode::MAX_OBJECT_BYTES, "transaction")
                .map_err(|e| invalid(format!("invalid transaction: {e}")))?;
        Ok(self.0.node.send_tx(tx).await.map_err(node_error)?.to_string())
    }

    async fn tx_mempool(&self) -> RpcResult<Vec<PoolTxView>> {
        Ok(self.0.node.mempool().await.map_err(node_error)?.iter().map(PoolTxView::from).collect())
    }

    async fn task_submit(&self, submit: TaskSubmit) -> RpcResult<Submitted> {
        let bounty = parse_amount(&submit.bounty)?;
        if submit.expires_in == 0 {
            return Err(invalid("expires_in must be at least 1 block"));
        }
        let (txid, task) = self
            .0
            .node
            .submit_task(submit.spec, bounty, submit.expires_in, submit.fee_rate.unwrap_or(1))
            .await
            .map_err(node_error)?;
        Ok(Submitted { txid: txid.to_string(), task: task.to_string() })
    }

    async fn task_list(&self) -> RpcResult<Vec<TaskView>> {
        let tip = self.tip_height().await?;
        let tasks = self.0.node.tasks().await.map_err(node_error)?;
        let mut out = Vec::with_capacity(tasks.len());
        for (id, t) in tasks {
            let spec = self.0.node.task_spec(id).await.ok();
            out.push(TaskView::new(id, &t, spec.as_ref(), tip, self.0.network));
        }
        Ok(out)
    }

    async fn task_get(&self, task: String) -> RpcResult<TaskView> {
        let id = parse_hash("task id", &task)?;
        let tip = self.tip_height().await?;
        let t = self.0.node.task(id).await.map_err(node_error)?;
        let spec = self.0.node.task_spec(id).await.ok();
        Ok(TaskView::new(id, &t, spec.as_ref(), tip, self.0.network))
    }

    async fn task_get_model(&self, task: String) -> RpcResult<ModelView> {
        let id = parse_hash("task id", &task)?;
        let t = self.0.node.task(id).await.map_err(node_error)?;
        Ok(ModelView { task: id.to_string(), params: t.best_params, score: t.best_score, height: t.best_height })
    }

    async fn task_predict(&self, task: String, rows: Vec<Vec<f64>>) -> RpcResult<Vec<f64>> {
        let id = parse_hash("task id", &task)?;
        if rows.is_empty() {
            return Err(invalid("no rows to predict on"));
        }
        if rows.iter().flatten().any(|v| !v.is_finite()) {
            return Err(invalid("rows must hold finite numbers"));
        }
        self.0.node.predict(id, rows).await.map_err(node_error)
    }

    async fn task_history(&self, task: String) -> RpcResult<Vec<ScorePoint>> {
        self.0.node.task_history(parse_hash("task id", &task)?).await.map_err(node_error)
    }

    async fn task_reclaim(&self, task: String) -> RpcResult<String> {
        Ok(self.0.node.reclaim(parse_hash("task id", &task)?).await.map_err(node_error)?.to_string())
    }

    async fn wallet_new_address(&self, label: Option<String>) -> RpcResult<String> {
        let a = self.0.node.new_address(label.as_deref().unwrap_or("")).await.map_err(node_error)?;
        Ok(a.to_string_for(self.0.network))
    }

    async fn wallet_list(&self) -> RpcResult<Vec<KeyView>> {
        let v = self.0.node.wallet_list().await.map_err(node_error)?;
        Ok(v.iter().map(|(k, b)| KeyView::new(k, b, self.0.network)).collect())
    }

    async fn wallet_balance(&self) -> RpcResult<BalanceView> {
        let b = self.0.node.balance().await.map_err(node_error)?;
        Ok(BalanceView { spendable: b.spendable.units(), immature: b.immature.units() })
    }

    async fn wallet_send(&self, to: String, amount: String, fee_rate: Option<u64>) -> RpcResult<String> {
        let to = parse_address(&to, self.0.network)?;
        let amount = parse_amount(&amount)?;
        Ok(self.0.node.send(to, amount, fee_rate.unwrap_or(1)).await.map_err(node_error)?.to_string())
    }

    async fn net_peers(&self) -> RpcResult<Vec<PeerView>> {
        let peers = self.net()?.peers().await.map_err(net_error)?;
        Ok(peers
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer_id.to_string(),
                addresses: p.addresses.iter().map(ToString::to_string).collect(),
                agent: p.agent,
                connected_since: p.connected_since,
            })
            .collect())
    }

    async fn net_info(&self) -> RpcResult<NetInfoView> {
        let net = self.net()?;
        let me = net.local_peer_id();
        let listen = net.listen_addrs().await.map_err(net_error)?;
        let peers = net.peers().await.map_err(net_error)?.len();
        Ok(NetInfoView {
            peer_id: me.to_string(),
            listen: listen.iter().map(|a| format!("{a}/p2p/{me}")).collect(),
            peers,
        })
    }

    async fn net_ban(&self, peer: String, seconds: Option<u64>) -> RpcResult<()> {
        let id = Self::peer(&peer)?;
        let until = unix_now() + seconds.unwrap_or(self.0.ban_secs);
        self.net()?.ban(id, until).await.map_err(net_error)?;
        self.0.node.put_ban(id.to_string(), until).await.map_err(node_error)
    }

    async fn net_unban(&self, peer: String) -> RpcResult<()> {
        let id = Self::peer(&peer)?;
        self.net()?.unban(id).await.map_err(net_error)?;
        self.0.node.remove_ban(id.to_string()).await.map_err(node_error)
    }

    async fn net_connect(&self, addr: String) -> RpcResult<()> {
        let a = addr.trim().parse().map_err(|e| invalid(format!("invalid multiaddr {addr:?}: {e}")))?;
        self.net()?.dial(a).await.map_err(net_error)
    }

    async fn mining_start(&self, threads: Option<usize>, payout: Option<String>) -> RpcResult<MiningView> {
        let threads = threads.unwrap_or(1);
        if threads == 0 || threads > 256 {
            return Err(invalid(format!("threads must be between 1 and 256, got {threads}")));
        }
        let payout = payout.map(|p| parse_address(&p, self.0.network)).transpose()?;
        let m = self.0.node.mining_start(threads, payout).await.map_err(node_error)?;
        Ok(MiningView::new(&m, self.0.network))
    }

    async fn mining_stop(&self) -> RpcResult<MiningView> {
        Ok(MiningView::new(&self.0.node.mining_stop().await.map_err(node_error)?, self.0.network))
    }

    async fn mining_info(&self) -> RpcResult<MiningView> {
        Ok(MiningView::new(&self.0.node.mining_info().await.map_err(node_error)?, self.0.network))
    }

    async fn dev_generate(&self, n: u64, payout: Option<String>) -> RpcResult<Vec<String>> {
        if n > 10_000 {
            return Err(invalid(format!("at most 10000 blocks at a time, asked {n}")));
        }
        let payout = payout.map(|p| parse_address(&p, self.0.network)).transpose()?;
        let v = self.0.node.generate(n, payout).await.map_err(node_error)?;
        Ok(v.iter().map(Hash256::to_string).collect())
    }

    async fn dev_set_mock_time(&self, time: Option<u64>) -> RpcResult<()> {
        self.0.node.set_mock_time(time).await.map_err(node_error)
    }

    async fn node_stop(&self) -> RpcResult<()> {
        match &self.0.stop {
            Some(s) => {
                let _ = s.try_send(());
                Ok(())
            }
            None => Err(error(code::NOT_AVAILABLE, "this node cannot be stopped over RPC")),
        }
    }
}
