//! The `opml` commands as a user runs them, each a process: `opml devnet`, identities, faucet and deposits,
//! program registration, a task, a cheating `opml worker` daemon and `opml challenge`, which wins the dispute.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opml");

/// A worker that serves the digits task on held-out image 3 with the result of image 4, and exits when settled.
const CHEATING_WORKER: &[&str] = &[
    "worker",
    "--model",
    "digits",
    "--input",
    "heldout:3",
    "--lie-input",
    "heldout:4",
    "--exit-when-settled",
    "--poll-ms",
    "100",
];

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn opml(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = opml(args, env);
    assert_eq!(code, 0, "opml {args:?} failed: {err}{out}");
    out
}

fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(format!("{name}.pem"));
    let out = ok(&["identity", "new", path.to_str().unwrap()], &[]);
    let principal = out.split("principal ").nth(1).unwrap().trim().to_string();
    (path, principal)
}

/// A fresh identities directory for `test`, its operator's identity in it, and a devnet started with `extra` flags
/// on which that operator may register programs.
fn operator_devnet(test: &str, extra: &[&str]) -> (PathBuf, PathBuf, Devnet) {
    let dir = std::env::temp_dir().join(format!("opml-cli-{test}-ids-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (op, op_principal) = identity(&dir, "operator");
    let net = Devnet::start(test, &op_principal, extra);
    (dir, op, net)
}

/// A minimal HTTP/1.1 request (Connection: close); returns status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let code = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

#[test]
fn worker_and_challenge_commands_play_a_dispute_on_a_devnet() {
    let dir = std::env::temp_dir().join(format!("opml-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (op, op_principal) = identity(&dir, "operator");
    let (req, _) = identity(&dir, "requester");
    let (cheat, _) = identity(&dir, "cheater");
    let (chal, _) = identity(&dir, "challenger");

    let mut devnet = Command::new(BIN)
        .args(["--json", "devnet", "--port", "0", "--operator", &op_principal])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(devnet.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _devnet = Kill(devnet);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    let canister = v["canister"].as_str().unwrap().to_string();
    let env = |id: &Path| {
        vec![
            ("OPML_NETWORK", url.clone()),
            ("OPML_CANISTER", canister.clone()),
            ("OPML_IDENTITY", id.to_str().unwrap().to_string()),
        ]
    };
    let as_ = |id: &Path, args: &[&str]| {
        let e = env(id);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ok(args, &e)
    };

    // `opml deploy` over HTTP: a second verifier through the management canister (gzipped module), then an
    // upgrade of it by its controller; a non-controller's upgrade is refused in one line.
    let out = ok(&["deploy", "--network", &url, "--identity", op.to_str().unwrap()], &[]);
    let second = out.strip_prefix("verifier canister ").and_then(|r| r.strip_suffix(" installed\n")).expect(&out);
    assert_ne!(second, canister);
    let out = ok(&["deploy", "--network", &url, "--identity", op.to_str().unwrap(), "--canister", second], &[]);
    assert_eq!(out, format!("verifier canister {second} upgraded\n"));
    let (code, _, err) =
        opml(&["deploy", "--network", &url, "--identity", req.to_str().unwrap(), "--canister", second], &[]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");

    for id in [&req, &cheat, &chal] {
        assert!(as_(id, &["deposit", "--faucet", "1000000000"]).contains("balance 1000000000"));
    }
    assert!(as_(&op, &["program", "register", "digits"]).contains("digits registered as program"));
    // A requester cannot register programs: one line, exit 1.
    let e = env(&req);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _, err) = opml(&["program", "register", "digits"], &e);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    assert!(err.contains("NotOperator"), "{err}");

    let out = as_(&req, &["task", "post", "--model", "digits", "--input", "heldout:3"]);
    assert!(out.starts_with("task 0 posted"), "{out}");

    let e = env(&cheat);
    let state = dir.join("worker-state.json");
    let spawn_worker = || {
        Command::new(BIN)
            .args(CHEATING_WORKER)
            .args(["--state", state.to_str().unwrap()])
            .envs(e.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let worker = Kill(spawn_worker());

    // Wait for the claim, then challenge it.
    let start = Instant::now();
    loop {
        if as_(&chal, &["status", "0"]).contains("claim 0 on task 0") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no claim appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The worker stops (a crash) right after claiming; the challenger opens the dispute; the worker restarts from
    // its state file, re-runs the task and defends the claim it made before.
    drop(worker);
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("\"claim\":0") && saved.contains("heldout:3"), "{saved}");
    let e = env(&chal);
    let challenge = Command::new(BIN)
        .args(["challenge", "0", "--model", "digits", "--input", "heldout:3", "--poll-ms", "100"])
        .envs(e.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !as_(&chal, &["status", "0"]).contains("dispute 0") {
        assert!(start.elapsed() < Duration::from_secs(120), "no dispute opened");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut worker = Kill(spawn_worker());
    let out = challenge.wait_with_output().unwrap();
    assert!(out.status.success());
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.contains("wrong result"), "{out}");
    assert!(out.contains("claim 0 on task 0: invalidated (ChallengerWon(StepProof))"), "{out}");

    // The restarted worker resumed the claim, played the dispute, saw its claim settle and exited cleanly.
    let status = worker.0.wait().unwrap();
    assert!(status.success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut worker.0.stdout.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("resumed claim 0 on task 0"), "{log}");
    assert!(log.contains("posted"), "the restarted worker made the moves: {log}");
    assert!(log.contains("resolved: ChallengerWon(StepProof)"), "{log}");
    let status = as_(&chal, &["status", "0"]);
    assert!(status.contains("task 0: Open"), "{status}");
    assert!(status.contains("Invalidated"), "{status}");
    assert!(status.contains("ChallengerWon(StepProof)"), "{status}");
    // The same for scripts: one JSON object per claim.
    let json: serde_json::Value = serde_json::from_str(as_(&chal, &["--json", "status", "0"]).trim()).unwrap();
    assert_eq!(json["claim"], 0);
    assert!(json["status"].as_str().unwrap().starts_with("Invalidated"), "{json}");
    assert_eq!(json["disputes"][0]["resolved"]["outcome"], "ChallengerWon(StepProof)");
    assert!(json["disputes"][0]["moves"].as_u64().unwrap() > 2, "{json}");
    assert!(as_(&chal, &["balance"]).contains("canister balance 1080000000"));
    assert!(as_(&cheat, &["balance"]).contains("canister balance 900000000"));
    // The same from a config file instead of the environment.
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("network = \"{url}\"\ncanister = \"{canister}\"\nidentity = \"{}\"\n", chal.display()),
    )
    .unwrap();
    let out = ok(&["balance"], &[("OPML_CONFIG", config.to_str().unwrap())]);
    assert!(out.contains("canister balance 1080000000"), "{out}");

    // The worker's HTTP API: an honest worker posts a task through POST /v1/infer and serves it.
    let (api_id, _) = identity(&dir, "api");
    as_(&api_id, &["deposit", "--faucet", "1000000000"]);
    let e = env(&api_id);
    let mut api_worker = Command::new(BIN)
        .args(["worker", "--model", "digits", "--listen", "127.0.0.1:0", "--poll-ms", "100"])
        .envs(e.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(api_worker.stdout.take().unwrap());
    let _api_worker = Kill(api_worker);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("worker API listening on http://").expect(&line).to_string();
    assert_eq!(http(&addr, "GET", "/healthz", ""), (200, "ok".to_string()));
    let (code, body) = http(&addr, "POST", "/v1/infer", r#"{"input":"heldout:7"}"#);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let task = v["task"].as_u64().unwrap();
    assert_eq!(task, 1);
    let start = Instant::now();
    let claim = loop {
        let (code, body) = http(&addr, "GET", &format!("/v1/tasks/{task}"), "");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["claim"].is_object() {
            break v["claim"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no claim: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(claim["output"].as_str().unwrap().starts_with("class "), "{claim}");
    let (_, metrics) = http(&addr, "GET", "/metrics", "");
    assert!(metrics.contains("opml_claims_total 1"), "{metrics}");
    assert!(metrics.contains("opml_runs_total 1"), "{metrics}");
    let (code, body) = http(&addr, "POST", "/v1/infer", r#"{"input":"heldout:99999"}"#);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("held-out set"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A devnet process (`opml --json devnet`) and the identities made for one test.
struct Devnet {
    _process: Kill,
    url: String,
    canister: String,
    dir: PathBuf,
}

impl Devnet {
    /// Starts `opml devnet` on a free port with `extra` flags; `operator` may register programs.
    fn start(test: &str, operator: &str, extra: &[&str]) -> Devnet {
        let dir = std::env::temp_dir().join(format!("opml-cli-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["--json", "devnet", "--port", "0", "--operator", operator];
        args.extend_from_slice(extra);
        let mut p = Command::new(BIN).args(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(p.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let process = Kill(p);
        let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
        Devnet {
            _process: process,
            url: v["url"].as_str().unwrap().to_string(),
            canister: v["canister"].as_str().unwrap().to_string(),
            dir,
        }
    }

    fn env(&self, id: &Path) -> Vec<(String, String)> {
        vec![
            ("OPML_NETWORK".into(), self.url.clone()),
            ("OPML_CANISTER".into(), self.canister.clone()),
            ("OPML_IDENTITY".into(), id.to_str().unwrap().to_string()),
        ]
    }

    /// `opml args` as `id`: (exit code, stdout, stderr).
    fn run(&self, id: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN).args(args).envs(self.env(id)).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// `opml --json args` as `id`, which must succeed with one JSON object on stdout and nothing on stderr.
    fn json(&self, id: &Path, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(id, &all);
        assert_eq!(code, 0, "opml {all:?} failed: {err}{out}");
        assert_eq!(err, "", "opml {all:?} wrote to stderr");
        assert_eq!(out.lines().count(), 1, "{out}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("opml {all:?}: not JSON ({e}): {out}"))
    }

    /// `opml args` as `id` in the background, its stdout read line by line on a channel.
    fn spawn(&self, id: &Path, args: &[&str]) -> (Kill, std::sync::mpsc::Receiver<String>) {
        let mut p = Command::new(BIN).args(args).envs(self.env(id)).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = p.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (Kill(p), rx)
    }

    /// A new identity with `deposit` tokens in the canister (from the devnet's faucet).
    fn funded(&self, name: &str, deposit: u64) -> PathBuf {
        let (path, _) = identity(&self.dir, name);
        let v = self.json(&path, &["deposit", "--faucet", &deposit.to_string()]);
        assert_eq!(v["balance"], deposit, "{v}");
        path
    }

    /// The operator registers the digits guest.
    fn register_digits(&self, operator: &Path) {
        let v = self.json(operator, &["program", "register", "digits"]);
        assert_eq!(v["model"], "digits");
        assert_eq!(v["program"].as_str().unwrap().len(), 64, "{v}");
    }

    /// Polls `opml --json status --claim <claim>` until `done` holds for it.
    fn wait_claim(&self, id: &Path, claim: u64, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
        let start = Instant::now();
        loop {
            let (code, out, _) = self.run(id, &["--json", "status", "--claim", &claim.to_string()]);
            if code == 0 && done(&serde_json::from_str(out.trim()).unwrap()) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "waited 120 s for {what}: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The next line of a background process that satisfies `want`, within `secs` seconds.
fn line_until(rx: &std::sync::mpsc::Receiver<String>, secs: u64, mut want: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no such line within {secs} s: {e}"),
        }
    }
}

/// A balance as `opml --json balance` reports it: (canister balance, ledger balance).
fn balances(net: &Devnet, id: &Path) -> (u64, u128) {
    let v = net.json(id, &["balance"]);
    (v["balance"].as_u64().unwrap(), v["ledger"].as_str().unwrap().parse().unwrap())
}

/// `opml watch` is a daemon: started first, it catches a lying claim submitted while it runs, disputes it to the
/// one-step proof and collects the cheater's stake (less the burn). Its `--json` events are one object per line.
#[test]
fn watch_daemon_catches_a_lie_submitted_while_it_runs() {
    let start = Instant::now();
    let (dir, op, net) = operator_devnet("watch", &[]);
    net.register_digits(&op);
    let req = net.funded("requester", 1_000_000_000);
    let cheat = net.funded("cheater", 1_000_000_000);
    let watcher = net.funded("watcher", 1_000_000_000);

    let (_watch, events) =
        net.spawn(&watcher, &["--json", "watch", "--model", "digits", "--input", "heldout:3", "--poll-ms", "100"]);
    let first: serde_json::Value = serde_json::from_str(&line_until(&events, 60, |_| true)).unwrap();
    assert_eq!(first["event"], "watching", "{first}");

    // Only now does the lie appear: a task, and a worker that claims another image's result for it.
    let task = net.json(&req, &["task", "post", "--model", "digits", "--input", "heldout:3"]);
    assert_eq!(task["task"], 0, "{task}");
    assert_eq!(task["input_root"].as_str().unwrap().len(), 64, "{task}");
    let (mut worker, _worker_out) = net.spawn(&cheat, CHEATING_WORKER);
    let mut kinds = Vec::new();
    let resolved = line_until(&events, 120, |l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        kinds.push(v["event"].as_str().unwrap().to_string());
        v["event"] == "resolved"
    });
    let v: serde_json::Value = serde_json::from_str(&resolved).unwrap();
    assert_eq!(v["outcome"], "ChallengerWon(StepProof)", "{v}");
    assert_eq!(v["claim"], 0);
    for k in ["ran", "disagrees", "opened", "moved"] {
        assert!(kinds.iter().any(|e| e == k), "no `{k}` event in {kinds:?}");
    }
    // The cheater's worker saw its claim invalidated and exited by itself.
    assert!(worker.0.wait().unwrap().success());
    // Stake 100M to the watcher, less the 20 % burn; the cheater lost it.
    assert_eq!(balances(&net, &watcher).0, 1_080_000_000);
    assert_eq!(balances(&net, &cheat).0, 900_000_000);
    // Reading needs no identity: `status` falls back to the anonymous one.
    let out = Command::new(BIN)
        .args(["--json", "status", "0"])
        .env("OPML_NETWORK", &net.url)
        .env("OPML_CANISTER", &net.canister)
        .env_remove("OPML_IDENTITY")
        .env_remove("OPML_CONFIG")
        .env("HOME", &dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["status"].as_str().unwrap().starts_with("Invalidated"), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("watch test: {:.1} s", start.elapsed().as_secs_f64());
}

/// `opml withdraw` moves exactly the amount to the ledger account and debits the amount plus the ledger fee from
/// the canister balance; a withdrawal beyond the balance is refused in one line and changes nothing.
#[test]
fn withdraw_moves_exactly_the_amount_and_the_fee() {
    let start = Instant::now();
    let (dir, _, net) = operator_devnet("withdraw", &[]);
    // `--json identity new` for scripts.
    let (code, out, err) = opml(&["--json", "identity", "new", dir.join("user.pem").to_str().unwrap()], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["path"], dir.join("user.pem").to_str().unwrap());
    let user = dir.join("user.pem");
    let d = net.json(&user, &["deposit", "--faucet", "500000000"]);
    assert_eq!((d["deposited"].as_u64(), d["balance"].as_u64()), (Some(500_000_000), Some(500_000_000)), "{d}");
    let (b0, l0) = balances(&net, &user);
    // Minted 1,000,000,000, deposited half, paid the approve and transfer_from fees.
    assert_eq!((b0, l0), (500_000_000, 500_000_000 - 2 * 10_000));

    let w = net.json(&user, &["withdraw", "123456789"]);
    assert_eq!(w["amount"], 123_456_789, "{w}");
    let fee = w["fee"].as_u64().unwrap();
    assert_eq!(fee, 10_000, "the devnet ledger's fee");
    assert!(w["block"].as_str().unwrap().parse::<u64>().is_ok(), "{w}");
    let (b1, l1) = balances(&net, &user);
    assert_eq!(b1, b0 - 123_456_789 - fee);
    assert_eq!(l1, l0 + 123_456_789);
    // Text form names the amount and the fee.
    let (code, out, _) = net.run(&user, &["withdraw", "1000"]);
    assert_eq!(code, 0);
    assert!(out.contains("1000 sent to your ledger account (fee 10000)"), "{out}");
    let (b2, l2) = balances(&net, &user);
    assert_eq!((b2, l2), (b1 - 1000 - fee, l1 + 1000));

    // More than the balance (the fee on top counts): refused, one line, nothing moves.
    let (code, out, err) = net.run(&user, &["withdraw", &(b2 - fee + 1).to_string()]);
    assert_eq!((code, out.as_str(), err.lines().count()), (1, "", 1), "{err}");
    assert_eq!(balances(&net, &user), (b2, l2));
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("withdraw test: {:.1} s", start.elapsed().as_secs_f64());
}

/// Exit code 3 means "a dispute was lost": `opml challenge` opens a dispute on a lying claim, then is frozen
/// (SIGSTOP) while it is its turn; its 5 s dispute clock runs out, the worker daemon claims the timeout, and
/// when the challenger wakes up it reports the loss and exits 3.
#[test]
fn challenge_exits_3_when_its_dispute_is_lost() {
    let start = Instant::now();
    // Short dispute clocks are allowed on this devnet.
    let (dir, op, net) = operator_devnet("lost", &["--min-clock-s", "1"]);
    net.register_digits(&op);
    let req = net.funded("requester", 1_000_000_000);
    let cheat = net.funded("cheater", 1_000_000_000);
    let chal = net.funded("challenger", 1_000_000_000);
    let task = net.json(&req, &["task", "post", "--model", "digits", "--input", "heldout:3", "--clock-s", "5"]);
    assert_eq!(task["task"], 0);
    let (_worker, worker_events) = net.spawn(
        &cheat,
        &[
            "--json",
            "worker",
            "--model",
            "digits",
            "--input",
            "heldout:3",
            "--lie-input",
            "heldout:4",
            "--poll-ms",
            "100",
        ],
    );
    let claimed: serde_json::Value =
        serde_json::from_str(&line_until(&worker_events, 60, |l| l.contains("\"claimed\""))).unwrap();
    assert_eq!((claimed["claim"].as_u64(), claimed["lie"].as_bool()), (Some(0), Some(true)), "{claimed}");

    let mut challenge = Command::new(BIN)
        .args(["--json", "challenge", "0", "--model", "digits", "--input", "heldout:3", "--poll-ms", "100"])
        .envs(net.env(&chal))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = challenge.id().to_string();
    net.wait_claim(&chal, 0, "the dispute to open", |v| v["disputes"].as_array().is_some_and(|d| !d.is_empty()));
    let signal = |s: &str| assert!(Command::new("kill").args([s, &pid]).status().unwrap().success());
    signal("-STOP");
    // Frozen: the worker moves, the challenger's clock runs out, the worker calls `timeout` and wins.
    net.wait_claim(&chal, 0, "the worker's timeout win", |v| {
        v["disputes"][0]["resolved"]["outcome"].as_str().is_some_and(|o| o.starts_with("WorkerWon"))
    });
    signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = challenge.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the challenger did not exit after waking up");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut challenge.stdout.take().unwrap(), &mut out).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut challenge.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(3), "stdout {out}\nstderr {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the dispute on claim 0 was lost: WorkerWon(Timeout)"), "{err}");
    // Every stdout line is a JSON object; the last is the verdict.
    let lines: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let last = lines.last().unwrap();
    assert_eq!((last["verdict"].as_str(), last["outcome"].as_str()), (Some("lost"), Some("WorkerWon(Timeout)")));
    assert!(lines.iter().any(|l| l["event"] == "opened"), "{out}");
    // The challenger's bond went to the worker (less the burn); the worker's stake is still locked in its claim.
    assert!(balances(&net, &chal).0 < 1_000_000_000);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("exit-3 test: {:.1} s", start.elapsed().as_secs_f64());
}

/// Progress bars go to stderr only when it is a terminal: piped, stderr stays empty; under a pseudo-terminal
/// (util-linux `script`) the segment spinner shows, and `--quiet` or `--json` turn it off.
#[test]
fn progress_shows_only_on_a_terminal() {
    let (code, out, err) = opml(&["run", "--model", "digits", "--input", "heldout:3"], &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains("class "), "{out}");
    let pty = |args: &str| {
        let out = Command::new("script").args(["-qec", &format!("{BIN} {args}"), "/dev/null"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = pty("run --model digits --input heldout:3");
    assert!(shown.contains("running digits: "), "{shown}");
    assert!(shown.contains("class "), "{shown}");
    for flags in ["--quiet", "--json"] {
        let hidden = pty(&format!("{flags} run --model digits --input heldout:3"));
        assert!(!hidden.contains("segments done"), "{flags}: {hidden}");
    }
}

/// A reader that closes stdout early (`opml ... | head -1`) stops the command with one clear line, not a
/// reported bug.
#[test]
fn closed_stdout_is_not_a_bug() {
    let mut child = Command::new(BIN)
        .args(["run", "--model", "digits", "--input", "heldout:3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the run (about a second of inference) prints anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("stdout was closed"), "{err}");
}
