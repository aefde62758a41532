//! `opml worker` as a daemon: serves tasks over the inputs it knows, defends its claims, persists them to a state
//! file so a restart resumes its disputes, and (with `--listen`) serves an HTTP API:
//!
//! - `POST /v1/infer` `{"input": "..."}`: posts a task over that input (reward from the worker's balance), which
//!   the worker then serves; answers `{"task": id, "input_root": hex}`;
//! - `GET /v1/tasks/{id}`: the task, its live claim and its output;
//! - `GET /healthz`: `ok`;
//! - `GET /metrics`: Prometheus text (runs, claims, disputes won/lost, run time).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use opml_bisect::Hash;
use opml_verifier_canister::types::{PostTask, TaskStatus};
use tokio::sync::{mpsc, oneshot};

use crate::agent::{Event, Log, TaskInput, Worker};
use crate::chain::Chain;
use crate::local::hex;
use crate::model::{self, Model};

/// Daemon settings.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// Serve only this task.
    pub task: Option<u64>,
    /// Exit once every claim is settled (and there was at least one).
    pub exit_when_settled: bool,
    /// State file.
    pub state: Option<PathBuf>,
    pub poll: Duration,
    /// HTTP API address.
    pub listen: Option<SocketAddr>,
    /// Parameters of tasks posted through `POST /v1/infer`.
    pub reward: u64,
    pub stake: u64,
    pub window_ns: u64,
    pub clock_ns: u64,
    /// Where its status lines go (text or JSON).
    pub output: crate::progress::Output,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    runs: AtomicU64,
    run_ms: AtomicU64,
    claims: AtomicU64,
    won: AtomicU64,
    lost: AtomicU64,
    moves: AtomicU64,
}

impl Metrics {
    /// A log that counts events and passes them on.
    pub fn counting(self: &Arc<Self>, inner: Log) -> Log {
        let m = self.clone();
        Arc::new(move |e: &Event| {
            match e {
                Event::Ran { seconds, .. } => {
                    m.runs.fetch_add(1, Ordering::Relaxed);
                    m.run_ms.fetch_add((seconds * 1000.0) as u64, Ordering::Relaxed);
                }
                Event::Claimed { .. } => {
                    m.claims.fetch_add(1, Ordering::Relaxed);
                }
                Event::Moved { .. } => {
                    m.moves.fetch_add(1, Ordering::Relaxed);
                }
                Event::Resolved { outcome, .. } if outcome.starts_with("WorkerWon") => {
                    m.won.fetch_add(1, Ordering::Relaxed);
                }
                Event::Resolved { outcome, .. } if outcome.starts_with("ChallengerWon") => {
                    m.lost.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            inner(e)
        })
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP opml_runs_total Task executions.\n# TYPE opml_runs_total counter\nopml_runs_total {}\n\
             # HELP opml_run_seconds_total Time spent executing tasks.\n# TYPE opml_run_seconds_total counter\nopml_run_seconds_total {:.3}\n\
             # HELP opml_claims_total Claims submitted.\n# TYPE opml_claims_total counter\nopml_claims_total {}\n\
             # HELP opml_dispute_moves_total Dispute moves played.\n# TYPE opml_dispute_moves_total counter\nopml_dispute_moves_total {}\n\
             # HELP opml_disputes_won_total Disputes the worker won.\n# TYPE opml_disputes_won_total counter\nopml_disputes_won_total {}\n\
             # HELP opml_disputes_lost_total Disputes the worker lost.\n# TYPE opml_disputes_lost_total counter\nopml_disputes_lost_total {}\n",
            g(&self.runs),
            g(&self.run_ms) as f64 / 1000.0,
            g(&self.claims),
            g(&self.moves),
            g(&self.won),
            g(&self.lost),
        )
    }
}

enum Req {
    Infer { input: String, reply: oneshot::Sender<Result<serde_json::Value, String>> },
    Task { id: u64, reply: oneshot::Sender<Result<serde_json::Value, String>> },
}

#[derive(Clone)]
struct Api {
    tx: mpsc::Sender<Req>,
    metrics: Arc<Metrics>,
}

#[derive(serde::Deserialize)]
struct InferBody {
    input: String,
}

type Answer = (StatusCode, Json<serde_json::Value>);

async fn ask(api: &Api, make: impl FnOnce(oneshot::Sender<Result<serde_json::Value, String>>) -> Req) -> Answer {
    let (reply, rx) = oneshot::channel();
    if api.tx.send(make(reply)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "error": "the worker is stopping" })));
    }
    match rx.await {
        Ok(Ok(v)) => (StatusCode::OK, Json(v)),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": e }))),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "error": "the worker is stopping" }))),
    }
}

async fn infer(State(api): State<Api>, Json(body): Json<InferBody>) -> Answer {
    ask(&api, |reply| Req::Infer { input: body.input, reply }).await
}

async fn task(State(api): State<Api>, Path(id): Path<u64>) -> Answer {
    ask(&api, |reply| Req::Task { id, reply }).await
}

async fn metrics_text(State(api): State<Api>) -> String {
    api.metrics.render()
}

fn save(path: &Option<PathBuf>, claims: &BTreeMap<u64, String>) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let list: Vec<serde_json::Value> =
        claims.iter().map(|(c, i)| serde_json::json!({ "claim": c, "input": i })).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::json!({ "claims": list }).to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write the state {}: {e}", path.display()))
}

/// Runs the worker daemon until its claims settle (`exit_when_settled`) or forever.
pub async fn run<C: Chain>(
    mut w: Worker<C>,
    model: &'static Model,
    initial: Option<String>,
    opts: DaemonOptions,
    metrics: Arc<Metrics>,
) -> Result<(), String> {
    let program = w.program_hash();
    let mut inputs: BTreeMap<Hash, (String, TaskInput)> = BTreeMap::new();
    if let Some(i) = initial {
        let t = TaskInput::new(model, &i)?;
        inputs.insert(t.root(), (i, t));
    }
    let mut claims: BTreeMap<u64, String> = BTreeMap::new();
    let mut served = BTreeSet::new();
    if let Some(path) = opts.state.as_ref().filter(|p| p.exists()) {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the state {}: {e}", path.display()))?;
        let saved: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{} is not a worker state file: {e}", path.display()))?;
        let list = saved["claims"].as_array().ok_or_else(|| format!("{}: no claims list", path.display()))?;
        for c in list {
            let (Some(id), Some(i)) = (c["claim"].as_u64(), c["input"].as_str()) else {
                return Err(format!("{}: bad entry {c}", path.display()));
            };
            let input = TaskInput::new(model, i)?;
            let view = w.chain.get_claim(id).await.map_err(|e| e.to_string())?;
            served.insert(view.task);
            w.resume(id, &input).await.map_err(|e| e.to_string())?;
            opts.output.result(
                &format!("resumed claim {id} on task {}", view.task),
                serde_json::json!({ "event": "resumed", "claim": id, "task": view.task }),
            );
            claims.insert(id, i.to_string());
            inputs.insert(input.root(), (i.to_string(), input));
        }
    }
    let (tx, mut rx) = mpsc::channel::<Req>(16);
    if let Some(addr) = opts.listen {
        let api = Api { tx, metrics: metrics.clone() };
        let app = axum::Router::new()
            .route("/v1/infer", post(infer))
            .route("/v1/tasks/{id}", get(task))
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(metrics_text))
            .with_state(api);
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        opts.output.result(
            &format!("worker API listening on http://{local}"),
            serde_json::json!({ "event": "listening", "url": format!("http://{local}") }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    } else {
        drop(tx);
    }
    loop {
        let mut start = 0;
        loop {
            // A daemon survives a flaky network: log, and try again at the next poll.
            let page = match w.chain.list_tasks(start, 100).await {
                Ok(p) => p,
                Err(e) => {
                    opts.output.warn(&format!("listing tasks: {e}"));
                    break;
                }
            };
            for t in &page.items {
                if opts.task.is_none_or(|id| id == t.id)
                    && t.status == TaskStatus::Open
                    && t.spec.program == program
                    && !served.contains(&t.id)
                    && let Some((text, input)) = inputs.get(&t.spec.input_root)
                {
                    served.insert(t.id);
                    match w.serve(t.id, input).await {
                        Ok(claim) => {
                            claims.insert(claim, text.clone());
                            save(&opts.state, &claims)?;
                        }
                        Err(e) => opts.output.warn(&format!("task {}: {e}", t.id)),
                    }
                }
            }
            match page.next {
                Some(n) => start = n,
                None => break,
            }
        }
        if let Err(e) = w.poll().await {
            opts.output.warn(&format!("defending claims: {e}"));
        }
        if opts.exit_when_settled && !w.claims().is_empty() && w.settled() {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.poll) => {}
            Some(req) = rx.recv() => match req {
                Req::Infer { input, reply } => {
                    let r = async {
                        let t = TaskInput::new(model, &input)?;
                        let root = t.root();
                        let id = w
                            .chain
                            .post_task(PostTask {
                                program,
                                input_root: root,
                                reward: opts.reward,
                                challenge_window_ns: opts.window_ns,
                                clock_ns: opts.clock_ns,
                                worker_stake: opts.stake,
                            })
                            .await
                            .map_err(|e| e.to_string())?;
                        inputs.insert(root, (input, t));
                        Ok::<_, String>(serde_json::json!({ "task": id, "input_root": hex(&root.0) }))
                    }
                    .await;
                    let _ = reply.send(r);
                }
                Req::Task { id, reply } => {
                    let r = async {
                        let t = w.chain.get_task(id).await.map_err(|e| e.to_string())?;
                        let mut v = serde_json::json!({
                            "task": id,
                            "status": format!("{:?}", t.status),
                            "claims": t.claims,
                            "input_root": hex(&t.spec.input_root.0),
                        });
                        if let TaskStatus::Claimed { claim } | TaskStatus::Done { claim } = t.status {
                            let c = w.chain.get_claim(claim).await.map_err(|e| e.to_string())?;
                            v["claim"] = serde_json::json!({
                                "id": claim,
                                "status": format!("{:?}", c.status),
                                "worker": c.worker.to_text(),
                                "output": model::describe_output(model, &c.output),
                                "output_hex": hex(&c.output),
                                "window_end_ns": c.window_end_ns,
                                "open_disputes": c.open_disputes,
                            });
                        }
                        Ok::<_, String>(v)
                    }
                    .await;
                    let _ = reply.send(r);
                }
            },
        }
    }
}
