//! Node configuration: `NodeConfig` with the precedence defaults < TOML file <
//! `GRADIENTCOIN_*` environment < command-line flags, and its validation.
//!
//! Owns parsing and checking configuration values; it starts nothing. The doc comments of
//! the fields are the reference; `node-config/*.toml` are examples (a test parses each).

use crate::chain::Network;
use crate::chain::address::Address;
use crate::chain::params::ChainParams;
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "GRADIENTCOIN_";

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node config (unknown keys are named here).
    #[error("config file {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, one line.
        reason: String,
    },
    /// An unknown `GRADIENTCOIN_*` environment variable.
    #[error("unknown environment variable {0} (see `gradientcoin node --help` for the GRADIENTCOIN_* variables)")]
    UnknownEnv(String),
    /// A value is malformed.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The key (file key, env var or flag).
        key: String,
        /// Why.
        reason: String,
    },
}

/// `[net]`: peer-to-peer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetSection {
    /// Multiaddrs to listen on, e.g. `/ip4/0.0.0.0/tcp/9733`.
    pub listen: Vec<String>,
    /// Peers to dial at start (also the Kademlia bootstrap set).
    pub peers: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Close connections idle this long (seconds).
    pub idle_timeout_secs: u64,
    /// How long a misbehaving peer stays banned (seconds).
    pub ban_secs: u64,
}

/// `[rpc]`: JSON-RPC server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    /// Address to serve JSON-RPC on (127.0.0.1 by default: never expose it unauthenticated).
    pub bind: String,
    /// Optional user for HTTP basic auth (besides the cookie file).
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
}

/// `[mining]`: the built-in miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningSection {
    /// Mine from start.
    pub enabled: bool,
    /// Mining threads.
    pub threads: usize,
    /// Address the coinbase pays (a wallet address when unset).
    pub payout: Option<String>,
}

/// `[mempool]`: transaction pool policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    /// Byte bound of the pool.
    pub max_bytes: usize,
    /// Minimum fee rate to accept or relay, base units per byte.
    pub min_fee_rate: u64,
}

/// The whole node configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// `main`, `test` or `dev`.
    pub network: Network,
    /// Data directory (chain, wallet, cookie); `~/.gradientcoin/<network>` when unset.
    pub datadir: Option<PathBuf>,
    /// Peer-to-peer.
    #[serde(default)]
    pub net: NetSection,
    /// JSON-RPC.
    #[serde(default)]
    pub rpc: RpcSection,
    /// Mining.
    #[serde(default)]
    pub mining: MiningSection,
    /// Mempool.
    #[serde(default)]
    pub mempool: MempoolSection,
}

impl Default for NetSection {
    fn default() -> Self {
        NetSection { listen: Vec::new(), peers: Vec::new(), mdns: false, idle_timeout_secs: 60, ban_secs: 24 * 3600 }
    }
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection { bind: String::new(), user: None, password: None }
    }
}

impl Default for MiningSection {
    fn default() -> Self {
        MiningSection { enabled: false, threads: 1, payout: None }
    }
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection { max_bytes: 64 << 20, min_fee_rate: 1 }
    }
}

/// Values given on the command line (the last layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--network`.
    pub network: Option<Network>,
    /// `--datadir`.
    pub datadir: Option<PathBuf>,
    /// `--listen` (repeatable).
    pub listen: Vec<String>,
    /// `--peer` (repeatable).
    pub peers: Vec<String>,
    /// `--rpc`.
    pub rpc: Option<String>,
    /// `--mine`.
    pub mine: Option<bool>,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--mdns`.
    pub mdns: Option<bool>,
}

impl NodeConfig {
    /// The defaults of `network`: listen on all interfaces at its default port, RPC on
    /// 127.0.0.1 at its default port.
    pub fn defaults(network: Network) -> NodeConfig {
        let p = ChainParams::for_network(network);
        NodeConfig {
            network,
            datadir: None,
            net: NetSection { listen: vec![format!("/ip4/0.0.0.0/tcp/{}", p.p2p_port)], ..NetSection::default() },
            rpc: RpcSection { bind: format!("127.0.0.1:{}", p.rpc_port), ..RpcSection::default() },
            mining: MiningSection::default(),
            mempool: MempoolSection::default(),
        }
    }

    /// Builds the configuration: defaults < `file` < environment (`env`, the
    /// `GRADIENTCOIN_*` variables) < `flags`, then validates it.
    pub fn load(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: &Overrides,
    ) -> Result<NodeConfig, ConfigError> {
        let file_table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| parse_err(path, e))?;
                Some((path, table))
            }
            None => None,
        };
        // The network decides the defaults, so it is resolved first, with the same precedence.
        let network = match (
            &flags.network,
            env.get("GRADIENTCOIN_NETWORK"),
            file_table.as_ref().and_then(|(_, t)| t.get("network")),
        ) {
            (Some(n), _, _) => *n,
            (None, Some(v), _) => {
                v.parse().map_err(|e: crate::chain::ParseNetworkError| invalid("GRADIENTCOIN_NETWORK", e))?
            }
            (None, None, Some(toml::Value::String(v))) => {
                v.parse().map_err(|e: crate::chain::ParseNetworkError| invalid("network", e))?
            }
            (None, None, Some(other)) => return Err(invalid("network", format!("{other} is not a string"))),
            (None, None, None) => Network::Main,
        };
        let mut merged = toml::Table::try_from(NodeConfig::defaults(network)).map_err(|e| invalid("defaults", e))?;
        if let Some((path, table)) = file_table {
            merge(&mut merged, table);
            merged.insert("network".into(), toml::Value::String(network.to_string()));
            let cfg: NodeConfig = merged.clone().try_into().map_err(|e| parse_err(path, e))?;
            merged = toml::Table::try_from(cfg).map_err(|e| invalid("config", e))?;
        }
        let mut cfg: NodeConfig = merged.try_into().map_err(|e| invalid("config", e))?;
        cfg.network = network;
        cfg.apply_env(env)?;
        cfg.apply_flags(flags);
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        for (k, v) in env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)) {
            let list = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
            match k.as_str() {
                "GRADIENTCOIN_NETWORK" => {}
                "GRADIENTCOIN_DATADIR" => self.datadir = Some(PathBuf::from(v)),
                "GRADIENTCOIN_LISTEN" => self.net.listen = list(),
                "GRADIENTCOIN_PEERS" => self.net.peers = list(),
                "GRADIENTCOIN_MDNS" => self.net.mdns = parse_bool(k, v)?,
                "GRADIENTCOIN_RPC" => self.rpc.bind = v.clone(),
                "GRADIENTCOIN_RPC_USER" => self.rpc.user = Some(v.clone()),
                "GRADIENTCOIN_RPC_PASSWORD" => self.rpc.password = Some(v.clone()),
                "GRADIENTCOIN_MINE" => self.mining.enabled = parse_bool(k, v)?,
                "GRADIENTCOIN_THREADS" => {
                    self.mining.threads = v.parse().map_err(|_| invalid(k, format!("{v:?} is not a thread count")))?
                }
                "GRADIENTCOIN_PAYOUT" => self.mining.payout = Some(v.clone()),
                // Read by the CLI itself (where the file is), not a setting.
                "GRADIENTCOIN_CONFIG" => {}
                other => return Err(ConfigError::UnknownEnv(other.to_string())),
            }
        }
        Ok(())
    }

    fn apply_flags(&mut self, f: &Overrides) {
        if let Some(d) = &f.datadir {
            self.datadir = Some(d.clone());
        }
        if !f.listen.is_empty() {
            self.net.listen = f.listen.clone();
        }
        if !f.peers.is_empty() {
            self.net.peers = f.peers.clone();
        }
        if let Some(r) = &f.rpc {
            self.rpc.bind = r.clone();
        }
        if let Some(m) = f.mine {
            self.mining.enabled = m;
        }
        if let Some(t) = f.threads {
            self.mining.threads = t;
        }
        if let Some(m) = f.mdns {
            self.net.mdns = m;
        }
    }

    /// Checks every value: multiaddrs, the RPC socket address, the payout address's
    /// network, thread count, credentials given in pairs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for a in self.net.listen.iter().chain(&self.net.peers) {
            a.parse::<Multiaddr>().map_err(|e| invalid("net address", format!("{a:?}: {e}")))?;
        }
        self.rpc_addr()?;
        if self.mining.threads == 0 || self.mining.threads > 256 {
            return Err(invalid("mining.threads", format!("{} is not between 1 and 256", self.mining.threads)));
        }
        if self.rpc.user.is_some() != self.rpc.password.is_some() {
            return Err(invalid("rpc.user/rpc.password", "give both or neither"));
        }
        self.payout()?;
        Ok(())
    }

    /// The RPC socket address.
    pub fn rpc_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.rpc.bind.parse().map_err(|e| invalid("rpc.bind", format!("{:?}: {e}", self.rpc.bind)))
    }

    /// The listen multiaddrs.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.net.listen.iter().filter_map(|a| a.parse().ok()).collect()
    }

    /// The peer multiaddrs.
    pub fn peer_addrs(&self) -> Vec<Multiaddr> {
        self.net.peers.iter().filter_map(|a| a.parse().ok()).collect()
    }

    /// The payout address, checked against the network.
    pub fn payout(&self) -> Result<Option<Address>, ConfigError> {
        match &self.mining.payout {
            None => Ok(None),
            Some(s) => Address::parse(s, self.network).map(Some).map_err(|e| invalid("mining.payout", e)),
        }
    }

    /// The data directory: the configured one, or `~/.gradientcoin/<network>`.
    pub fn datadir(&self) -> PathBuf {
        match &self.datadir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
                home.join(".gradientcoin").join(self.network.name())
            }
        }
    }
}

fn invalid(key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), reason: reason.to_string().replace('\n', " ") }
}

fn parse_err(path: &Path, e: impl std::fmt::Display) -> ConfigError {
    let reason = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    ConfigError::Parse { path: path.into(), reason }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, format!("{v:?} is not a boolean (true/false)"))),
    }
}

/// Recursively overlays `top` onto `base` (tables merge, other values replace).
fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(p: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
    }

    #[test]
    fn every_shipped_config_file_parses() {
        for f in ["default.toml", "dev.toml", "testnet.toml"] {
            let cfg =
                NodeConfig::load(Some(&repo(&format!("node-config/{f}"))), &BTreeMap::new(), &Overrides::default())
                    .unwrap_or_else(|e| panic!("{f}: {e}"));
            cfg.validate().unwrap();
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "network = \"dev\"\n[net]\nlisen = []\n").unwrap();
        let e = NodeConfig::load(Some(&p), &BTreeMap::new(), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        std::fs::write(&p, "colour = 1\n").unwrap();
        let e = NodeConfig::load(Some(&p), &BTreeMap::new(), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let env = BTreeMap::from([("GRADIENTCOIN_FOO".to_string(), "1".to_string())]);
        let e = NodeConfig::load(None, &env, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("GRADIENTCOIN_FOO"), "{e}");
    }

    #[test]
    fn precedence_is_defaults_then_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "network = \"dev\"\n[mining]\nthreads = 3\nenabled = true\n[rpc]\nbind = \"127.0.0.1:1111\"\n",
        )
        .unwrap();
        let none = BTreeMap::new();
        let cfg = NodeConfig::load(Some(&p), &none, &Overrides::default()).unwrap();
        assert_eq!(
            (cfg.network, cfg.mining.threads, cfg.mining.enabled, cfg.rpc.bind.as_str()),
            (Network::Dev, 3, true, "127.0.0.1:1111")
        );
        assert_eq!(
            cfg.net.listen,
            NodeConfig::defaults(Network::Dev).net.listen,
            "untouched keys keep the network's defaults"
        );
        let env = BTreeMap::from([
            ("GRADIENTCOIN_THREADS".to_string(), "5".to_string()),
            ("GRADIENTCOIN_RPC".to_string(), "127.0.0.1:2222".to_string()),
        ]);
        let cfg = NodeConfig::load(Some(&p), &env, &Overrides::default()).unwrap();
        assert_eq!((cfg.mining.threads, cfg.rpc.bind.as_str()), (5, "127.0.0.1:2222"));
        let flags = Overrides { threads: Some(7), network: Some(Network::Test), ..Overrides::default() };
        let cfg = NodeConfig::load(Some(&p), &env, &flags).unwrap();
        assert_eq!((cfg.mining.threads, cfg.network), (7, Network::Test));
        assert_eq!(cfg.rpc.bind, "127.0.0.1:2222");
    }

    #[test]
    fn bad_values_are_named() {
        let none = BTreeMap::new();
        let bad_rpc = Overrides { rpc: Some("nonsense".into()), ..Overrides::default() };
        assert!(NodeConfig::load(None, &none, &bad_rpc).unwrap_err().to_string().contains("rpc.bind"));
        let bad_peer = Overrides { peers: vec!["not-a-multiaddr".into()], ..Overrides::default() };
        assert!(NodeConfig::load(None, &none, &bad_peer).unwrap_err().to_string().contains("not-a-multiaddr"));
        let zero = Overrides { threads: Some(0), ..Overrides::default() };
        assert!(NodeConfig::load(None, &none, &zero).unwrap_err().to_string().contains("mining.threads"));
        let env = BTreeMap::from([("GRADIENTCOIN_MINE".to_string(), "perhaps".to_string())]);
        assert!(
            NodeConfig::load(None, &env, &Overrides::default()).unwrap_err().to_string().contains("GRADIENTCOIN_MINE")
        );
        let wrong_net = BTreeMap::from([("GRADIENTCOIN_PAYOUT".to_string(), "gc1qqqqq".to_string())]);
        assert!(
            NodeConfig::load(None, &wrong_net, &Overrides { network: Some(Network::Dev), ..Overrides::default() })
                .is_err()
        );
        let missing =
            NodeConfig::load(Some(Path::new("/nonexistent/x.toml")), &none, &Overrides::default()).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/x.toml"));
    }
}
