//! End to end through the built binary: a `gradientcoin node` process on the dev network,
//! driven by the client commands (`wallet`, `task`, `query`, `mining`) over its RPC.
//! Bad input gets one clear line on stderr and exit code 1; usage errors exit 2; the node
//! stops cleanly over RPC and removes its cookie.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gradientcoin");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct NodeProc {
    child: Child,
    datadir: PathBuf,
    rpc: String,
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GRADIENTCOIN_")) {
        c.env_remove(k);
    }
    c
}

fn start_node(datadir: &Path) -> NodeProc {
    let rpc = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(datadir.with_extension("log")).unwrap();
    let child = command()
        .args(["node", "--network", "dev", "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc", &rpc])
        .arg("--datadir")
        .arg(datadir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut n = NodeProc { child, datadir: datadir.to_path_buf(), rpc };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(n.child.try_wait().unwrap().is_none(), "the node exited at start");
        if datadir.join(".cookie").exists() && cli(&n, &["query", "tip"]).status.success() {
            return n;
        }
        assert!(Instant::now() < deadline, "the node's RPC did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a client command against `n`.
fn cli(n: &NodeProc, args: &[&str]) -> Output {
    command().args(args).args(["--network", "dev", "--rpc", &n.rpc]).arg("--datadir").arg(&n.datadir).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure with exit code 1 and one line on stderr containing `text`.
fn fails_with(o: &Output, text: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("error: ") && err.contains(text), "{err:?} lacks {text:?}");
}

#[test]
fn client_commands_work_and_bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let n = start_node(&dir.path().join("node"));

    // Happy paths, human and JSON.
    let tip: serde_json::Value = serde_json::from_slice(&cli(&n, &["query", "tip", "--json"]).stdout).unwrap();
    assert_eq!((tip["network"].as_str(), tip["height"].as_u64()), (Some("dev"), Some(0)));
    let new = cli(&n, &["wallet", "new", "--label", "me", "--json"]);
    assert!(new.status.success(), "{}", stderr(&new));
    let addr =
        serde_json::from_slice::<serde_json::Value>(&new.stdout).unwrap()["address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("dgc1"));
    let list = String::from_utf8(cli(&n, &["wallet", "list"]).stdout).unwrap();
    assert!(list.contains(&addr) && list.contains("me"), "{list}");
    let genesis = String::from_utf8(cli(&n, &["query", "block", "0"]).stdout).unwrap();
    assert!(genesis.contains("height 0"), "{genesis}");
    let tasks: serde_json::Value = serde_json::from_slice(&cli(&n, &["task", "list", "--json"]).stdout).unwrap();
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "the public task");

    // Malformed address.
    fails_with(&cli(&n, &["wallet", "send", "dgc1notanaddress", "1"]), "invalid address");
    // Insufficient funds (nothing mined yet).
    fails_with(&cli(&n, &["wallet", "send", &addr, "5"]), "insufficient funds");
    // Unknown task.
    fails_with(&cli(&n, &["task", "show", &"ab".repeat(32)]), "not found");
    // Malformed task id.
    fails_with(&cli(&n, &["task", "show", "xyz"]), "invalid task id");
    // Malformed data file: named, with its line.
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(&a, "1,2\n3,oops\n").unwrap();
    std::fs::write(&b, "1\n2\n").unwrap();
    let args = [
        "task",
        "submit",
        "--data",
        a.to_str().unwrap(),
        "--target",
        b.to_str().unwrap(),
        "--target-score",
        "0.1",
        "--bounty",
        "1",
    ];
    fails_with(&cli(&n, &args), "a.csv");
    // Mismatched shapes.
    std::fs::write(&a, "1,2\n3,4\n5,6\n").unwrap();
    fails_with(&cli(&n, &args), "has 3 rows but");
    // Attention data: softmax files for an attention task, attention files for a softmax
    // task, and four matrices of different shapes are refused before the node is asked.
    let submit = |extra: &[&str]| {
        let mut v = vec!["task", "submit", "--target-score", "0.1", "--bounty", "1"];
        v.extend_from_slice(extra);
        cli(&n, &v)
    };
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    fails_with(&submit(&["--kind", "attention", "--data", a, "--target", b]), "attention tasks take --a1");
    let q = dir.path().join("q.csv");
    std::fs::write(&q, "1,2\n3,4\n").unwrap();
    let q = q.to_str().unwrap();
    fails_with(&submit(&["--a1", q, "--a2", q, "--a3", q, "--b", q]), "are attention data");
    fails_with(&submit(&["--kind", "attention", "--a1", q, "--a2", a, "--a3", q, "--b", q]), "a.csv is 3x2 but");
    // Ricl data: a prompt too small for the admission domain, labels all equal, and
    // softmax files for a ricl task, each refused with its reason.
    let rows = |n: usize, label: &dyn Fn(usize) -> f64| -> String {
        (0..n).map(|i| format!("{},{},{}\n", i % 3, (i * 7) % 5, label(i))).collect()
    };
    let (small, flat, val) = (dir.path().join("small.csv"), dir.path().join("flat.csv"), dir.path().join("val.csv"));
    std::fs::write(&small, rows(4, &|i| i as f64)).unwrap();
    std::fs::write(&flat, rows(12, &|_| 0.5)).unwrap();
    std::fs::write(&val, rows(20, &|i| (i % 2) as f64)).unwrap();
    let ricl =
        |p: &Path| submit(&["--kind", "ricl", "--prompt", p.to_str().unwrap(), "--validation", val.to_str().unwrap()]);
    fails_with(&ricl(&small), "the prompt must have 8 to 256 examples");
    fails_with(&ricl(&flat), "every prompt label is 5e-1");
    fails_with(&submit(&["--kind", "ricl", "--data", a, "--target", b]), "ricl");
    // A data file that does not exist.
    fails_with(&cli(&n, &["task", "predict", &"ab".repeat(32), "--data", "/nonexistent/x.csv"]), "x.csv");

    // RPC unreachable: nothing listens on that port.
    let gone = command()
        .args(["query", "tip", "--network", "dev", "--rpc", &format!("127.0.0.1:{}", free_port())])
        .arg("--datadir")
        .arg(&n.datadir)
        .output()
        .unwrap();
    fails_with(&gone, "cannot reach the node's RPC");
    // Wrong cookie.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join(".cookie"), "__cookie__:0000").unwrap();
    let wrong = command()
        .args(["query", "tip", "--network", "dev", "--rpc", &n.rpc])
        .arg("--datadir")
        .arg(&other)
        .output()
        .unwrap();
    fails_with(&wrong, "refused our RPC credentials");

    // Usage errors exit 2.
    assert_eq!(cli(&n, &["wallet", "send"]).status.code(), Some(2));

    // Mining over RPC, then a clean stop over RPC: exit 0 and the cookie removed.
    let m = cli(&n, &["mining", "start", "--threads", "1"]);
    assert!(
        m.status.success() && String::from_utf8_lossy(&m.stdout).contains("mining with 1 threads"),
        "{}",
        stderr(&m)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t: serde_json::Value = serde_json::from_slice(&cli(&n, &["query", "tip", "--json"]).stdout).unwrap();
        if t["height"].as_u64() >= Some(3) {
            break;
        }
        assert!(Instant::now() < deadline, "the miner found no blocks");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut n = n;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cookie = gradientcoin::rpc::read_cookie(&n.datadir).unwrap();
    let c =
        gradientcoin::rpc::connect(&n.rpc, &gradientcoin::rpc::Credentials::Cookie(cookie), Duration::from_secs(10))
            .unwrap();
    use gradientcoin::rpc::ApiClient as _;
    rt.block_on(c.api().node_stop()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = n.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the node did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!n.datadir.join(".cookie").exists());
    // Restarted, it has kept its chain; SIGTERM stops it cleanly too.
    let mut n2 = start_node(&n.datadir);
    let t: serde_json::Value = serde_json::from_slice(&cli(&n2, &["query", "tip", "--json"]).stdout).unwrap();
    assert!(t["height"].as_u64().unwrap() >= 3);
    let term = Command::new("kill").args(["-TERM", &n2.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = n2.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the node did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!n2.datadir.join(".cookie").exists());
}
