//! `gradientcoin node`: starts the node thread, the network, the p2p glue and the RPC
//! server from one `NodeConfig`, and shuts them down cleanly on Ctrl-C, SIGTERM or
//! `node_stop`.

use crate::chain::Network;
use crate::chain::params::ChainParams;
use crate::config::{NodeConfig, Overrides};
use crate::mempool::MempoolConfig;
use crate::net::{self, NetConfig};
use crate::node::{self, NodeOptions};
use crate::rpc::{self, RpcContext};
use anyhow::Context;
use clap::Args;
use libp2p::identity::Keypair;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a node's settings come from (shared by `node` and the client commands).
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Network: main, test or dev.
    #[arg(long, global = true, value_parser = parse_network)]
    pub network: Option<Network>,
    /// Data directory (chain, wallet, RPC cookie); default ~/.gradientcoin/<network>.
    #[arg(long, global = true)]
    pub datadir: Option<PathBuf>,
    /// Config file (TOML; see node-config/). Also GRADIENTCOIN_CONFIG.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// RPC address (host:port) to serve on (`node`) or to call (client commands).
    #[arg(long, global = true)]
    pub rpc: Option<String>,
}

fn parse_network(s: &str) -> Result<Network, String> {
    s.parse().map_err(|e: crate::chain::ParseNetworkError| e.to_string())
}

/// Arguments of `gradientcoin node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Multiaddr to listen on for peers (repeatable), e.g. /ip4/0.0.0.0/tcp/19733.
    #[arg(long)]
    listen: Vec<String>,
    /// Peer multiaddr to dial at start (repeatable).
    #[arg(long)]
    peer: Vec<String>,
    /// Mine with the built-in miner.
    #[arg(long)]
    mine: bool,
    /// Miner threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Discover peers on the LAN with mDNS.
    #[arg(long)]
    mdns: bool,
}

/// Loads the configuration: defaults < file (--config or GRADIENTCOIN_CONFIG) < env <
/// flags.
pub fn load_config(c: &ConfigArgs, extra: Overrides) -> anyhow::Result<NodeConfig> {
    let env: BTreeMap<String, String> =
        std::env::vars().filter(|(k, _)| k.starts_with(crate::config::ENV_PREFIX)).collect();
    let file = c.config.clone().or_else(|| env.get("GRADIENTCOIN_CONFIG").map(PathBuf::from));
    let flags = Overrides { network: c.network, datadir: c.datadir.clone(), rpc: c.rpc.clone(), ..extra };
    Ok(NodeConfig::load(file.as_deref(), &env, &flags)?)
}

/// Runs `gradientcoin node` until Ctrl-C, SIGTERM or `node_stop`.
pub fn run(c: &ConfigArgs, args: NodeArgs) -> anyhow::Result<()> {
    let extra = Overrides {
        listen: args.listen,
        peers: args.peer,
        mine: args.mine.then_some(true),
        threads: args.threads,
        mdns: args.mdns.then_some(true),
        ..Overrides::default()
    };
    let cfg = load_config(c, extra)?;
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(serve(cfg))
}

/// Logs to stderr, `RUST_LOG` or info for this crate and warnings for the rest.
/// sled's internal error logging stays off (DESIGN §8: it can hang shutdown).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,gradientcoin=info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

/// Loads the node's libp2p identity from `<datadir>/p2p_key`, creating it (mode 0600) on
/// first start: a stable peer id across restarts, so peers' bans and address books hold.
fn load_identity(datadir: &Path) -> anyhow::Result<Keypair> {
    let path = datadir.join("p2p_key");
    if path.exists() {
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a libp2p key", path.display()));
    }
    let key = Keypair::generate_ed25519();
    let bytes = key.to_protobuf_encoding().context("encoding the p2p key")?;
    let mut tmp = tempfile::NamedTempFile::new_in(datadir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(&bytes)?;
    tmp.persist(&path).map_err(|e| e.error).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

async fn serve(cfg: NodeConfig) -> anyhow::Result<()> {
    let params = ChainParams::for_network(cfg.network);
    let datadir = cfg.datadir();
    std::fs::create_dir_all(&datadir).with_context(|| format!("cannot create {}", datadir.display()))?;
    let opts = NodeOptions {
        params: params.clone(),
        datadir: datadir.clone(),
        mempool: MempoolConfig { max_bytes: cfg.mempool.max_bytes, min_fee_rate: cfg.mempool.min_fee_rate },
    };
    let (node, thread) = node::spawn(opts).with_context(|| format!("opening the node in {}", datadir.display()))?;
    let keypair = load_identity(&datadir)?;
    let banned = node::p2p::persisted_bans(&node).await;
    let net_cfg = NetConfig {
        keypair,
        listen: cfg.listen_addrs(),
        bootstrap: cfg.peer_addrs(),
        mdns: cfg.net.mdns,
        chain_id: params.chain_id,
        max_block_bytes: params.max_block_bytes,
        max_tx_bytes: params.tx_limits.max_tx_bytes,
        idle_timeout: Duration::from_secs(cfg.net.idle_timeout_secs),
        banned,
    };
    let (net, events) = net::spawn(net_cfg).context("starting the network")?;
    let glue = tokio::spawn(node::p2p::run(node.clone(), net.clone(), events));
    let (stop_tx, mut stop_rx) = mpsc::channel(1);
    let ctx = RpcContext {
        node: node.clone(),
        net: Some(net.clone()),
        network: cfg.network,
        ban_secs: cfg.net.ban_secs,
        stop: Some(stop_tx),
    };
    let user_password = cfg.rpc.user.clone().zip(cfg.rpc.password.clone());
    let server = rpc::serve(cfg.rpc_addr()?, &datadir, user_password, ctx).await?;
    // Give the network a moment to bind so the listen addresses can be printed.
    let mut listen = Vec::new();
    for _ in 0..50 {
        listen = net.listen_addrs().await.unwrap_or_default();
        if !listen.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tip = node.tip().await?;
    let me = net.local_peer_id();
    tracing::info!(network = %cfg.network, datadir = %datadir.display(), height = tip.height, tip = %tip.hash, "node started");
    for a in &listen {
        tracing::info!("p2p listening on {a}/p2p/{me}");
    }
    tracing::info!(rpc = %server.addr, cookie = %rpc::cookie_path(&datadir).display(), "RPC ready");
    if cfg.mining.enabled {
        node.mining_start(cfg.mining.threads, cfg.payout()?).await?;
    }
    let progress = tokio::spawn(sync_progress(node.clone()));
    wait_for_stop(&mut stop_rx).await;
    tracing::info!("shutting down");
    progress.abort();
    server.stop().await;
    glue.abort();
    let _ = node.shutdown().await;
    drop(node);
    tokio::task::spawn_blocking(move || thread.join()).await.ok();
    tracing::info!("stopped");
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or an RPC `node_stop`.
async fn wait_for_stop(stop_rx: &mut mpsc::Receiver<()>) {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_recv = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term_recv => {}
            _ = stop_rx.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = stop_rx.recv() => {}
    }
}

/// A progress line while the node syncs (the tip moving faster than mining would move
/// it): height and blocks per second. Hidden when stderr is not a terminal.
async fn sync_progress(node: node::Handle) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let mut last = match node.tip().await {
        Ok(t) => t.height,
        Err(_) => return,
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Ok(t) = node.tip().await else { return };
        let rate = t.height.saturating_sub(last);
        if rate >= 5 {
            bar.set_message(format!("syncing: height {} ({rate} blocks/s)", t.height));
            bar.tick();
        } else if !bar.message().is_empty() {
            bar.set_message("");
            bar.finish_and_clear();
        }
        last = t.height;
    }
}
