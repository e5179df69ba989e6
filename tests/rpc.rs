//! The JSON-RPC server over a real dev node (sled on disk, HTTP on 127.0.0.1 port 0),
//! called through the typed client the CLI uses: every method group, the stable error
//! codes, and cookie authentication.

use gradientcoin::chain::Network;
use gradientcoin::chain::params::ChainParams;
use gradientcoin::mempool::MempoolConfig;
use gradientcoin::node::{self, NodeOptions};
use gradientcoin::pouw::task::{TaskData, TaskKind, TaskSpec};
use gradientcoin::rpc::{self, ApiClient as _, ClientError, Credentials, RpcClient, RpcContext, code};
use std::time::Duration;

struct Fixture {
    _dir: tempfile::TempDir,
    datadir: std::path::PathBuf,
    server: rpc::RpcServer,
    client: RpcClient,
    node: node::Handle,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().to_path_buf();
    let opts = NodeOptions {
        params: ChainParams::dev(),
        datadir: datadir.clone(),
        mempool: MempoolConfig { max_bytes: 1 << 20, min_fee_rate: 1 },
    };
    let (node, _thread) = node::spawn(opts).unwrap();
    let ctx = RpcContext { node: node.clone(), net: None, network: Network::Dev, ban_secs: 60, stop: None };
    let server = rpc::serve("127.0.0.1:0".parse().unwrap(), &datadir, Some(("alice".into(), "s3cret".into())), ctx)
        .await
        .unwrap();
    let cookie = rpc::read_cookie(&datadir).unwrap();
    let client = rpc::connect(&server.addr.to_string(), &Credentials::Cookie(cookie), Duration::from_secs(60)).unwrap();
    Fixture { _dir: dir, datadir, server, client, node }
}

/// The code of a failed call.
fn code_of<T: std::fmt::Debug>(c: &RpcClient, r: Result<T, jsonrpsee::core::client::Error>) -> (i32, String) {
    let e = c.explain(r.expect_err("the call must fail"));
    (e.code().unwrap_or(0), e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_group_answers_over_http_with_the_cookie() {
    let f = start().await;
    let api = f.client.api();
    let tip = api.chain_get_tip().await.unwrap();
    assert_eq!((tip.network.as_str(), tip.height), ("dev", 0));

    // wallet_* and dev_generate: coins mature after 10 blocks on dev.
    let me = api.wallet_new_address(Some("me".into())).await.unwrap();
    let friend = api.wallet_new_address(None).await.unwrap();
    assert!(me.starts_with("dgc1"), "{me}");
    let hashes = api.dev_generate(12, Some(me.clone())).await.unwrap();
    assert_eq!(hashes.len(), 12);
    let bal = api.wallet_balance().await.unwrap();
    assert!(bal.spendable > 0 && bal.immature > 0, "{bal:?}");
    assert_eq!(api.wallet_list().await.unwrap().len(), 2);

    // A payment: in the mempool, then mined with a merkle proof that checks.
    let txid = api.wallet_send(friend.clone(), "1.25".into(), None).await.unwrap();
    let pooled = api.chain_get_tx(txid.clone()).await.unwrap();
    assert_eq!((pooled.confirmations, pooled.kind.as_str()), (0, "transfer"));
    assert_eq!(api.tx_mempool().await.unwrap().len(), 1);
    api.dev_generate(1, Some(me.clone())).await.unwrap();
    let mined = api.chain_get_tx(txid.clone()).await.unwrap();
    assert_eq!((mined.height, mined.confirmations), (Some(13), 1));
    assert!(mined.outputs.iter().any(|o| o.address == friend && o.value == 125_000_000));
    let proof = api.chain_get_merkle_proof(txid.clone()).await.unwrap();
    assert!(proof.valid && proof.height == 13, "{proof:?}");
    let by_height = api.chain_get_block(serde_json::json!(13)).await.unwrap();
    let by_hash = api.chain_get_block(serde_json::json!(by_height.hash)).await.unwrap();
    assert_eq!(by_height, by_hash);
    assert!(by_height.txs.iter().any(|t| t.txid == txid));
    let utxos = api.chain_get_utxos(Some(vec![friend.clone()])).await.unwrap();
    assert_eq!(utxos.len(), 1);
    assert_eq!(utxos[0].value, 125_000_000);

    // tx_send: a raw transaction re-sent is refused as a duplicate/spent (-26).
    let (c, _) = code_of(&f.client, api.tx_send(mined.hex.clone()).await);
    assert_eq!(c, code::REJECTED);

    // task_*: submit a synthetic task, mine it until its score falls, read the model.
    let spec = TaskSpec {
        kind: TaskKind::Softmax,
        data: TaskData::Synthetic { n: 200, d: 4, seed: 9, scale: 0.5 },
        reg_lambda: 1e-8,
        copyright: None,
        target_score: 1e-300, // never met: the regulariser keeps the loss above it
    };
    let sub =
        api.task_submit(rpc::TaskSubmit { spec, bounty: "2".into(), expires_in: 50, fee_rate: None }).await.unwrap();
    api.dev_generate(1, None).await.unwrap();
    let t = api.task_get(sub.task.clone()).await.unwrap();
    assert_eq!((t.status.as_str(), t.bounty, t.rows, t.cols), ("open", 200_000_000, Some(200), Some(4)));
    assert!(api.task_list().await.unwrap().iter().any(|x| x.id == sub.task));
    let model = api.task_get_model(sub.task.clone()).await.unwrap();
    assert_eq!(model.params.len(), 4);
    let f_pred = api.task_predict(sub.task.clone(), vec![vec![0.1, 0.2, 0.3, 0.4], vec![0.0; 4]]).await.unwrap();
    assert_eq!(f_pred.len(), 2);
    let history = api.task_history(sub.task.clone()).await.unwrap();
    assert_eq!(history.first().map(|p| p.height), Some(14), "created at 14: {history:?}");

    // mining_*: the built-in miner finds dev blocks on its own.
    let m = api.mining_start(Some(1), None).await.unwrap();
    assert!(m.running);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info = api.mining_info().await.unwrap();
        if info.blocks_found >= 2 {
            assert!(info.steps >= 2 && info.task.is_some(), "{info:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the miner found no blocks: {info:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!api.mining_stop().await.unwrap().running);

    // net_* without networking, node_stop without an owner: not available here.
    let (c, _) = code_of(&f.client, api.net_peers().await);
    assert_eq!(c, code::NOT_AVAILABLE);
    let (c, _) = code_of(&f.client, api.node_stop().await);
    assert_eq!(c, code::NOT_AVAILABLE);

    // The configured user/password works too.
    let other = rpc::connect(
        &f.server.addr.to_string(),
        &Credentials::UserPassword { user: "alice".into(), password: "s3cret".into() },
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(other.api().chain_get_tip().await.unwrap().network, "dev");
    drop(f.node);
    f.server.stop().await;
    assert!(!rpc::cookie_path(&f.datadir).exists(), "the cookie is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_params_get_stable_codes_and_clear_messages() {
    let f = start().await;
    let api = f.client.api();
    let cases: Vec<(Result<(), jsonrpsee::core::client::Error>, i32, &str)> = vec![
        (
            api.wallet_send("gc1notanaddress".into(), "1".into(), None).await.map(drop),
            code::INVALID_PARAMS,
            "invalid address",
        ),
        (
            api.wallet_send(api.wallet_new_address(None).await.unwrap(), "1.5x".into(), None).await.map(drop),
            code::INVALID_PARAMS,
            "invalid amount",
        ),
        (api.chain_get_tx("abc".into()).await.map(drop), code::INVALID_PARAMS, "invalid txid"),
        (api.chain_get_tx("00".repeat(32)).await.map(drop), code::NOT_FOUND, "not found"),
        (api.chain_get_block(serde_json::json!(99)).await.map(drop), code::NOT_FOUND, "height 99"),
        (api.chain_get_block(serde_json::json!(true)).await.map(drop), code::INVALID_PARAMS, "invalid block id"),
        (api.task_get("11".repeat(32)).await.map(drop), code::NOT_FOUND, "not found"),
        (api.tx_send("zz".into()).await.map(drop), code::INVALID_PARAMS, "invalid transaction hex"),
        (api.tx_send("0011".into()).await.map(drop), code::INVALID_PARAMS, "invalid transaction"),
        (api.mining_start(Some(0), None).await.map(drop), code::INVALID_PARAMS, "threads"),
    ];
    for (i, (r, want, text)) in cases.into_iter().enumerate() {
        let (c, msg) = code_of(&f.client, r);
        assert_eq!(c, want, "case {i}: {msg}");
        assert!(msg.contains(text), "case {i}: {msg:?} lacks {text:?}");
        assert!(!msg.contains('\n'), "case {i}: one line");
    }
    // Insufficient funds: a wallet with nothing mature.
    let to = api.wallet_new_address(None).await.unwrap();
    let (c, msg) = code_of(&f.client, api.wallet_send(to, "1".into(), None).await);
    assert_eq!(c, code::INSUFFICIENT_FUNDS, "{msg}");
    assert!(msg.contains("insufficient funds"), "{msg}");
    // Unknown methods are JSON-RPC's -32601.
    use jsonrpsee::core::client::ClientT as _;
    let r: Result<serde_json::Value, _> = api.request("chain_nope", jsonrpsee::rpc_params![]).await;
    assert_eq!(code_of(&f.client, r).0, -32601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_and_an_absent_server_is_unreachable() {
    let f = start().await;
    let bad =
        rpc::connect(&f.server.addr.to_string(), &Credentials::Cookie("__cookie__:00".into()), Duration::from_secs(10))
            .unwrap();
    let err = bad.explain(bad.api().chain_get_tip().await.unwrap_err());
    assert!(matches!(err, ClientError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("refused our RPC credentials"), "{err}");
    // Nothing listens on a port we just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone =
        rpc::connect(&format!("127.0.0.1:{port}"), &Credentials::Cookie("x".into()), Duration::from_secs(10)).unwrap();
    let err = gone.explain(gone.api().chain_get_tip().await.unwrap_err());
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
}
