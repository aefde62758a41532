//! The `opml` commands as a user runs them, each a process: `opml devnet`, identities, faucet and deposits,
//! program registration, a task, a cheating `opml worker` daemon and `opml challenge`, which wins the dispute.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opml");

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
            .args([
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
                "--state",
                state.to_str().unwrap(),
            ])
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
