//! `opml`: the command-line side of opml-ic.
//!
//! Exit codes: 0 success (for `challenge`: the claim is right, or the dispute was won), 1 an error (one line on
//! stderr), 2 bad usage, 3 a dispute was lost.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use candid::Principal;
use clap::{Args, Parser, Subcommand};
use opml_prover::agent::{Challenger, Lie, ModelProgram, TaskInput, Verdict, Worker};
use opml_prover::chain::{self, Chain, IcChain, Network};
use opml_prover::progress::Output;
use opml_prover::{demo, model};
use opml_verifier_canister::types::{PostTask, WithdrawalStatus};

/// Verifiable ML inference for the Internet Computer (optimistic: run off-chain, challenge by bisection,
/// settle with a one-step proof on-chain).
///
/// Start with `opml demo --model digits` (the whole protocol on an in-process local IC, a few seconds) or
/// `opml run --model digits --input heldout:3` (one local run). Step by step on a local devnet: `opml identity new`
/// for each party, `opml devnet --operator <principal>` (prints the URL and canister id to export as OPML_NETWORK and
/// OPML_CANISTER), then as the operator `opml program register digits`, as each party `opml deposit --faucet
/// <amount>`, as a requester `opml task post`, as a worker `opml worker`, as a challenger `opml challenge` or
/// `opml watch`, and `opml status <task>` to follow. On a replica or mainnet, `opml deploy` installs the canister.
///
/// The chain flags (--network, --identity, --canister) go after the command, or come from OPML_NETWORK,
/// OPML_IDENTITY, OPML_CANISTER or a TOML file ($OPML_CONFIG, else ~/.config/opml/config.toml).
/// Exit codes: 0 success, 1 error (one line on stderr), 2 bad usage, 3 a dispute was lost.
/// Logs: RUST_LOG=opml_prover=debug shows every canister call on stderr.
#[derive(Parser)]
#[command(name = "opml", version, about, long_about)]
struct Cli {
    /// Print one JSON object per line instead of text (every command), and no progress bars.
    #[arg(long, global = true, help_heading = "Output")]
    json: bool,
    /// Only results, warnings and errors: no progress bars and no per-move lines. (Progress bars are drawn on
    /// stderr only when it is a terminal.)
    #[arg(long, short, global = true, help_heading = "Output")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where and as whom to talk to the verifier canister.
#[derive(Args, Clone)]
struct Net {
    /// `ic` (mainnet), `local` (http://127.0.0.1:4943, the default) or a URL (e.g. the one `opml devnet` prints).
    #[arg(long, env = "OPML_NETWORK", help_heading = "Chain")]
    network: Option<String>,
    /// PEM identity (Ed25519 or secp256k1, as dfx/icp-cli write it; `opml identity new` makes one). Default:
    /// dfx's `default` identity. Defaults for all three can also come from a TOML file ($OPML_CONFIG or
    /// ~/.config/opml/config.toml).
    #[arg(long, env = "OPML_IDENTITY", help_heading = "Chain")]
    identity: Option<PathBuf>,
    /// The verifier canister id (`opml devnet` and `opml deploy` print it).
    #[arg(long, env = "OPML_CANISTER", help_heading = "Chain")]
    canister: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on an input locally and print its output and commitments.
    Run {
        /// Model name (`digits`, `minilm`).
        #[arg(long)]
        model: String,
        /// The input: for digits `heldout:<n>`, a 64-byte file or 64 comma-separated pixels;
        /// for minilm the sentence or `@<file>`.
        #[arg(long)]
        input: String,
        /// Also run the task through the stepping machine (slow) and check it reaches the same roots.
        #[arg(long)]
        stepper: bool,
    },
    /// The whole protocol on an in-process local IC: deploy, register, an honest task that finalizes, a cheating
    /// worker caught by bisection and a one-step proof, and a summary.
    Demo {
        /// `minilm` (a wrong sentence embedding; needs the MiniLM wheel from scripts/setup.sh) or `digits`
        /// (fast).
        #[arg(long, default_value = "minilm")]
        model: String,
        /// The task's input (default: a fixed sentence / held-out image 3).
        #[arg(long)]
        input: Option<String>,
        /// How the cheater lies: `corrupt` (corrupts one activation before the last segment; default for
        /// minilm) or `other-input` (claims the result of another input; default for digits).
        #[arg(long)]
        lie: Option<String>,
        /// The input whose result an `other-input` cheater claims.
        #[arg(long)]
        lie_input: Option<String>,
        /// Bisection arity k (2..=16).
        #[arg(long, default_value_t = 8)]
        arity: u8,
    },
    /// Start a local devnet (an in-process IC with an ICRC ledger and faucet) with the verifier canister
    /// installed; prints the URL and canister id to pass as --network and --canister. Runs until Ctrl-C.
    Devnet {
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 4943)]
        port: u16,
        /// Bisection arity of the installed canister.
        #[arg(long, default_value_t = 8)]
        arity: u8,
        /// A principal allowed to register programs (repeatable).
        #[arg(long)]
        operator: Vec<String>,
        /// Shortest dispute clock a task may ask for, seconds (short clocks make timeouts testable locally).
        #[arg(long, default_value_t = 60)]
        min_clock_s: u64,
        /// Shortest challenge window a task may ask for, seconds.
        #[arg(long, default_value_t = 60)]
        min_window_s: u64,
    },
    /// Install (or with --canister, upgrade) the verifier canister on a replica. Local replicas only create the
    /// canister with provisional cycles; on mainnet create it with dfx/icp-cli and pass --canister.
    Deploy {
        #[command(flatten)]
        net: Net,
        /// The ICRC-1/2 ledger of the stake token.
        #[arg(long, default_value = opml_devnet::DEFAULT_LEDGER_ID)]
        ledger: String,
        /// The ledger's transfer fee.
        #[arg(long, default_value_t = 10_000)]
        ledger_fee: u64,
        /// Bisection arity.
        #[arg(long, default_value_t = 8)]
        arity: u8,
    },
    /// Register model guests with the canister.
    Program {
        #[command(subcommand)]
        command: ProgramCommand,
    },
    /// Post tasks.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Approve the canister on the ledger and deposit tokens into your canister balance.
    Deposit {
        #[command(flatten)]
        net: Net,
        /// Amount in ledger units.
        amount: u64,
        /// On a devnet: first mint twice the amount from its faucet.
        #[arg(long)]
        faucet: bool,
    },
    /// Withdraw tokens from your canister balance to your ledger account (the fee is debited on top).
    Withdraw {
        #[command(flatten)]
        net: Net,
        /// Amount in ledger units (arrives in full; the fee comes on top).
        amount: u64,
    },
    /// Show your canister balance and ledger balance.
    Balance {
        #[command(flatten)]
        net: Net,
    },
    /// Serve tasks: run them, submit claims with stake, defend every dispute, finalize. Serves the tasks over
    /// --input and/or those posted through its HTTP API (--listen). Runs until Ctrl-C (or, with
    /// --exit-when-settled, until its claims are settled).
    Worker {
        #[command(flatten)]
        net: Net,
        /// Model to serve.
        #[arg(long)]
        model: String,
        /// The input of the tasks to serve (inputs are off-chain: a task is served only if its input root is
        /// this input's, or an input posted through the API's `POST /v1/infer`).
        #[arg(long)]
        input: Option<String>,
        /// Serve the HTTP API here (e.g. 127.0.0.1:8080): POST /v1/infer, GET /v1/tasks/{id}, /healthz, /metrics.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Reward of tasks posted through the API (from this identity's balance).
        #[arg(long, default_value_t = demo::REWARD)]
        reward: u64,
        /// Worker stake of tasks posted through the API.
        #[arg(long, default_value_t = demo::STAKE)]
        stake: u64,
        /// Challenge window of tasks posted through the API, seconds.
        #[arg(long, default_value_t = 3600)]
        window_s: u64,
        /// Dispute clock of tasks posted through the API, seconds.
        #[arg(long, default_value_t = 3600)]
        clock_s: u64,
        /// Serve only this task.
        #[arg(long)]
        task: Option<u64>,
        /// Dishonest worker (for demos): claim the result of this other input instead.
        #[arg(long)]
        lie_input: Option<String>,
        /// Dishonest worker (for demos): corrupt one activation before the last segment.
        #[arg(long, conflicts_with = "lie_input")]
        corrupt: bool,
        /// Exit once every claim it made is final or invalidated.
        #[arg(long)]
        exit_when_settled: bool,
        /// State file (JSON: the claims it defends and their inputs). On start, every claim listed there is
        /// re-run and defended again, so a restarted worker resumes its open disputes.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Poll interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
    /// Re-execute a task's claim; if it is wrong, open a dispute and play it to the end. Exit 0 if the claim is
    /// right or the dispute was won, 3 if it was lost.
    Challenge {
        #[command(flatten)]
        net: Net,
        /// The task.
        task: u64,
        /// Model of the task.
        #[arg(long)]
        model: String,
        /// The task's input (checked against its input root).
        #[arg(long)]
        input: String,
        /// Poll interval in milliseconds.
        #[arg(long, default_value_t = 500)]
        poll_ms: u64,
    },
    /// A challenger daemon: re-executes every new claim on tasks over this model and input, and disputes the
    /// wrong ones to the end. Runs until Ctrl-C.
    Watch {
        #[command(flatten)]
        net: Net,
        /// Model of the tasks to watch.
        #[arg(long)]
        model: String,
        /// The input whose tasks it watches (claims over other inputs are skipped: inputs are off-chain).
        #[arg(long)]
        input: String,
        /// Poll interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
    /// State of a task (its claims and their disputes: phase, whose turn, clocks, rounds) or, with --claim, of one
    /// claim.
    Status {
        #[command(flatten)]
        net: Net,
        /// The task.
        task: Option<u64>,
        /// A claim instead.
        #[arg(long)]
        claim: Option<u64>,
    },
    /// Create identities (PEM key files).
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
}

#[derive(Subcommand)]
enum ProgramCommand {
    /// Upload a model's guest and register it (controllers and operators only).
    Register {
        #[command(flatten)]
        net: Net,
        /// `digits` or `minilm`.
        model: String,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Post a task (its reward is locked from your balance).
    Post {
        #[command(flatten)]
        net: Net,
        /// Model to run (`digits`, `minilm`; registered on the canister).
        #[arg(long)]
        model: String,
        /// The input (only its root goes on-chain; give the input to workers and challengers).
        #[arg(long)]
        input: String,
        /// Reward paid to the worker whose claim is finalized.
        #[arg(long, default_value_t = demo::REWARD)]
        reward: u64,
        /// Stake a worker locks with its claim (lost to a challenger who proves it wrong).
        #[arg(long, default_value_t = demo::STAKE)]
        stake: u64,
        /// Challenge window, seconds.
        #[arg(long, default_value_t = 3600)]
        window_s: u64,
        /// Per-party dispute clock, seconds.
        #[arg(long, default_value_t = 3600)]
        clock_s: u64,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Write a new Ed25519 identity (PKCS#8 PEM) and print its principal.
    New {
        /// Where to write it (refuses to overwrite).
        out: PathBuf,
    },
}

/// A failure with its exit code.
struct Fail(u8, String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(1, e.to_string())
    }
}

type Res = Result<(), Fail>;

static FILE: std::sync::OnceLock<opml_prover::config::FileConfig> = std::sync::OnceLock::new();

impl Net {
    /// Flag or environment, then the config file, then `local`.
    fn network(&self) -> Result<Network, Fail> {
        let file = FILE.get().and_then(|f| f.network.clone());
        Ok(Network::parse(self.network.clone().or(file).as_deref().unwrap_or("local"))?)
    }

    /// Flag or environment, then the config file, then dfx's default identity.
    fn identity_path(&self) -> Result<PathBuf, Fail> {
        self.identity
            .clone()
            .or_else(|| FILE.get().and_then(|f| f.identity.clone()))
            .or_else(default_identity)
            .ok_or_else(|| {
                Fail(1, "no identity: pass --identity <pem> (or create one with `opml identity new <file>`)".into())
            })
    }

    /// Flag or environment, then the config file.
    fn canister(&self) -> Result<Option<Principal>, Fail> {
        match self.canister.clone().or_else(|| FILE.get().and_then(|f| f.canister.clone())) {
            Some(c) => Principal::from_text(&c).map(Some).map_err(|e| Fail(1, format!("bad canister id `{c}`: {e}"))),
            None => Ok(None),
        }
    }
}

fn default_identity() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".config/dfx/identity/default/identity.pem");
    p.exists().then_some(p)
}

async fn connect(net: &Net) -> Result<IcChain, Fail> {
    // The flags are checked before the identity file is read, so a typo in them is named first.
    net.network()?;
    let identity = chain::load_identity(&net.identity_path()?)?;
    connect_as(net, identity).await
}

/// For read-only commands: the given identity, or the anonymous one when none is configured.
async fn connect_reader(net: &Net) -> Result<IcChain, Fail> {
    net.network()?;
    let identity = match net.identity_path() {
        Ok(path) => chain::load_identity(&path)?,
        Err(_) => Box::new(ic_agent::identity::AnonymousIdentity),
    };
    connect_as(net, identity).await
}

async fn connect_as(net: &Net, identity: Box<dyn ic_agent::Identity>) -> Result<IcChain, Fail> {
    let network = net.network()?;
    let canister = net.canister()?.ok_or_else(|| Fail(1, "no canister: pass --canister <id>".into()))?;
    let c = IcChain::connect(&network, identity, canister).await?;
    // Fail early and clearly on a wrong canister id or an unreachable network.
    c.config().await?;
    Ok(c)
}

async fn run(cli: Cli) -> Res {
    let json = cli.json;
    let out = Output::new(json, cli.quiet);
    match cli.command {
        Command::Run { model, input, stepper } => opml_prover::local::run(&model, &input, stepper, &out)?,
        Command::Demo { model, input, lie, lie_input, arity } => {
            if !(2..=16).contains(&arity) {
                return Err(Fail(2, format!("--arity must be in 2..=16 (got {arity})")));
            }
            model::find(&model)?;
            let report = demo::run(demo::DemoOptions {
                model,
                input,
                lie,
                lie_input,
                arity,
                verbose: !json,
                progress: out.progress.clone(),
            })
            .await?;
            if json {
                println!("{}", demo::report_json(&report));
            }
            if !(report.cheat_claim_invalidated && report.challenger_won_by_proof) {
                return Err(Fail(1, "the demo did not end with the cheater slashed".into()));
            }
        }
        Command::Devnet { port, arity, operator, min_clock_s, min_window_s } => {
            let operators = operator
                .iter()
                .map(|p| Principal::from_text(p).map_err(|e| Fail(1, format!("bad operator principal `{p}`: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            let devnet = opml_devnet::Devnet::start(opml_devnet::DevnetConfig {
                bind: Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
                ..Default::default()
            })?;
            let mut config = demo::demo_config(devnet.ledger_id(), devnet.ledger_fee() as u64, arity);
            config.operators = operators;
            config.min_clock_ns = min_clock_s.saturating_mul(1_000_000_000);
            config.min_challenge_window_ns = min_window_s.saturating_mul(1_000_000_000);
            let canister = devnet
                .install_canister(
                    opml_canister_wasm::VERIFIER_WASM,
                    candid::encode_one(&config)?,
                    vec![Principal::anonymous()],
                )
                .map_err(|e| Fail(1, format!("installing the verifier canister failed: {e:?}")))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "url": devnet.url(), "canister": canister.to_text(), "ledger": devnet.ledger_id().to_text() })
                );
            } else {
                println!("devnet listening at {}", devnet.url());
                println!("verifier canister   {canister} (controller: anonymous; operators: {operator:?})");
                println!("ledger              {} (faucet: `opml deposit --faucet`)", devnet.ledger_id());
                println!("export OPML_NETWORK={} OPML_CANISTER={canister}", devnet.url());
                println!("Ctrl-C to stop.");
            }
            tokio::signal::ctrl_c().await?;
        }
        Command::Deploy { net, ledger, ledger_fee, arity } => {
            let network = net.network()?;
            let path = net.identity_path()?;
            let agent = chain::agent(&network, chain::load_identity(&path)?).await?;
            let ledger = Principal::from_text(&ledger).map_err(|e| Fail(1, format!("bad ledger id: {e}")))?;
            let existing = net.canister()?;
            let mut config = demo::demo_config(ledger, ledger_fee, arity);
            config.sweep_interval_s = 60;
            let wasm = chain::gzip(opml_canister_wasm::VERIFIER_WASM)?;
            let id = chain::deploy(&agent, network.url(), &wasm, &config, existing).await?;
            let action = if existing.is_some() { "upgraded" } else { "installed" };
            out.result(
                &format!("verifier canister {id} {action}"),
                serde_json::json!({ "canister": id.to_text(), "action": action }),
            );
        }
        Command::Program { command: ProgramCommand::Register { net, model } } => {
            let m = model::find(&model)?;
            let c = connect(&net).await?;
            // Validation and the code commitment take a few update calls for a large guest.
            let working = out.progress.working(format!("registering {} ({} bytes)", m.name, m.wasm.len()));
            let h = c.register_program(m.wasm).await?;
            drop(working);
            let hash = opml_prover::local::hex(&h.0);
            out.result(
                &format!("{} registered as program {hash}", m.name),
                serde_json::json!({ "model": m.name, "program": hash }),
            );
        }
        Command::Task { command: TaskCommand::Post { net, model, input, reward, stake, window_s, clock_s } } => {
            let m = model::find(&model)?;
            let input = TaskInput::new(m, &input)?;
            let program = ModelProgram::new(m)?;
            let c = connect(&net).await?;
            let id = c
                .post_task(PostTask {
                    program: program.hash,
                    input_root: input.root(),
                    reward,
                    challenge_window_ns: window_s.saturating_mul(1_000_000_000),
                    clock_ns: clock_s.saturating_mul(1_000_000_000),
                    worker_stake: stake,
                })
                .await?;
            let root = opml_prover::local::hex(&input.root().0);
            out.result(
                &format!("task {id} posted (input root {root})"),
                serde_json::json!({ "task": id, "input_root": root }),
            );
        }
        Command::Deposit { net, amount, faucet } => {
            let c = connect(&net).await?;
            if faucet {
                c.devnet_mint(2 * amount as u128).await?;
            }
            let b = c.deposit(amount).await?;
            out.result(
                &format!("deposited {amount}; balance {b}"),
                serde_json::json!({ "deposited": amount, "balance": b }),
            );
        }
        Command::Withdraw { net, amount } => {
            let c = connect(&net).await?;
            let w = c.withdraw(amount).await?;
            match &w.status {
                WithdrawalStatus::Completed { block } => out.result(
                    &format!(
                        "withdrawal {}: {} sent to your ledger account (fee {}), block {block}",
                        w.id, w.amount, w.fee
                    ),
                    serde_json::json!({
                        "withdrawal": w.id, "amount": w.amount, "fee": w.fee, "block": block.to_string()
                    }),
                ),
                other => return Err(Fail(1, format!("withdrawal {} did not complete: {other:?}", w.id))),
            }
        }
        Command::Balance { net } => {
            let c = connect(&net).await?;
            let b = c.balance_of(c.principal()).await?;
            let l = c.ledger_balance().await?;
            out.result(
                &format!("{}: canister balance {b}, ledger balance {l}", c.principal()),
                serde_json::json!({ "principal": c.principal().to_text(), "balance": b, "ledger": l.to_string() }),
            );
        }
        Command::Worker {
            net,
            model,
            input,
            task,
            lie_input,
            corrupt,
            exit_when_settled,
            state,
            poll_ms,
            listen,
            reward,
            stake,
            window_s,
            clock_s,
        } => {
            let m = model::find(&model)?;
            if input.is_none() && listen.is_none() {
                return Err(Fail(
                    2,
                    "give --input (the tasks to serve) and/or --listen (tasks posted through the API)".into(),
                ));
            }
            if let Some(i) = &input {
                TaskInput::new(m, i)?;
            }
            let program = Arc::new(ModelProgram::new(m)?);
            let c = connect(&net).await?;
            let lie = if corrupt { Some(Lie::CorruptState) } else { lie_input.map(Lie::OtherInput) };
            let metrics = Arc::new(opml_prover::daemon::Metrics::default());
            let w = Worker::new(c, program, lie, metrics.counting(out.log())).with_progress(out.progress.clone());
            let opts = opml_prover::daemon::DaemonOptions {
                task,
                exit_when_settled,
                state,
                poll: Duration::from_millis(poll_ms),
                listen,
                reward,
                stake,
                window_ns: window_s.saturating_mul(1_000_000_000),
                clock_ns: clock_s.saturating_mul(1_000_000_000),
                output: out.clone(),
            };
            opml_prover::daemon::run(w, m, input, opts, metrics).await?;
        }
        Command::Challenge { net, task, model, input, poll_ms } => {
            let m = model::find(&model)?;
            let input = TaskInput::new(m, &input)?;
            let program = Arc::new(ModelProgram::new(m)?);
            let c = connect(&net).await?;
            let mut ch = Challenger::new(c, program, out.log()).with_progress(out.progress.clone());
            let claim = ch.claim_of(task).await?;
            match ch.check(claim, &input).await? {
                Verdict::Agrees => out.result(
                    &format!("claim {claim} on task {task}: agrees"),
                    serde_json::json!({ "claim": claim, "task": task, "verdict": "agrees" }),
                ),
                Verdict::Disputed(_) => {
                    while !ch.settled() {
                        if ch.poll().await? == 0 {
                            tokio::time::sleep(Duration::from_millis(poll_ms)).await;
                        }
                    }
                    let r = ch.resolution(claim).unwrap_or_default().to_string();
                    if !r.contains("ChallengerWon") {
                        out.result(
                            &format!("claim {claim} on task {task}: dispute lost ({r})"),
                            serde_json::json!({ "claim": claim, "task": task, "verdict": "lost", "outcome": r }),
                        );
                        return Err(Fail(3, format!("the dispute on claim {claim} was lost: {r}")));
                    }
                    out.result(
                        &format!("claim {claim} on task {task}: invalidated ({r})"),
                        serde_json::json!({ "claim": claim, "task": task, "verdict": "invalidated", "outcome": r }),
                    );
                }
            }
        }
        Command::Watch { net, model, input, poll_ms } => {
            let m = model::find(&model)?;
            let input = TaskInput::new(m, &input)?;
            let program = Arc::new(ModelProgram::new(m)?);
            let c = connect(&net).await?;
            let mut ch = Challenger::new(c, program.clone(), out.log()).with_progress(out.progress.clone());
            let (p, r) = (opml_prover::local::hex(&program.hash.0), opml_prover::local::hex(&input.root().0));
            out.result(
                &format!("watching claims of {} (program {p}) on input root {r}", m.name),
                serde_json::json!({ "event": "watching", "model": m.name, "program": p, "input_root": r }),
            );
            let mut seen = std::collections::BTreeSet::new();
            let mut start = 0;
            loop {
                loop {
                    let page = match ch.chain.list_claims(start, 100).await {
                        Ok(p) => p,
                        Err(e) => {
                            out.warn(&format!("listing claims: {e}"));
                            break;
                        }
                    };
                    for v in &page.items {
                        if v.claim.program == program.hash
                            && v.claim.input_root == input.root()
                            && matches!(v.status, opml_bisect::ClaimStatus::Pending)
                            && seen.insert(v.id)
                            && let Err(e) = ch.check(v.id, &input).await
                        {
                            out.warn(&format!("claim {}: {e}", v.id));
                        }
                        start = start.max(v.id);
                    }
                    match page.next {
                        Some(n) => start = n,
                        None => break,
                    }
                }
                if let Err(e) = ch.poll().await {
                    out.warn(&format!("playing disputes: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(poll_ms)).await;
            }
        }
        Command::Status { net, task, claim } => {
            let c = connect_reader(&net).await?;
            let claims = match (task, claim) {
                (_, Some(cl)) => vec![cl],
                (Some(t), None) => {
                    let t = c.get_task(t).await?;
                    if !json {
                        println!(
                            "task {}: {:?}, requester {}, reward {}, stake {}, program {}, input root {}",
                            t.id,
                            t.status,
                            t.requester,
                            t.spec.reward,
                            t.spec.worker_stake,
                            opml_prover::agent::short(&t.spec.program),
                            opml_prover::agent::short(&t.spec.input_root)
                        );
                    }
                    t.claims
                }
                (None, None) => return Err(Fail(2, "give a task id or --claim <id>".into())),
            };
            for cl in claims {
                if json {
                    println!("{}", opml_prover::status::claim_json(&c, cl).await?);
                } else {
                    print!("{}", opml_prover::status::claim_text(&c, cl).await?);
                }
            }
        }
        Command::Identity { command: IdentityCommand::New { out: path } } => {
            if path.exists() {
                return Err(Fail(1, format!("{} exists; not overwriting it", path.display())));
            }
            let (id, pem) = chain::generate_identity()?;
            std::fs::write(&path, pem).map_err(|e| Fail(1, format!("cannot write {}: {e}", path.display())))?;
            let principal = ic_agent::Identity::sender(&id)?;
            out.result(
                &format!("{} written; principal {principal}", path.display()),
                serde_json::json!({ "path": path.display().to_string(), "principal": principal.to_text() }),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // The config file's values are defaults under the flags and environment variables.
    match opml_prover::config::load() {
        Ok(f) => {
            let _ = FILE.set(f);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    // Logs (to stderr) with `RUST_LOG`, e.g. `RUST_LOG=opml_prover=debug` for every canister call; off by default
    // so the normal output stays the progress lines.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic is a bug; report it in one line, never a backtrace.
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(Fail::from)?;
        rt.block_on(run(cli))
    });
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Fail(code, msg))) => {
            // One line, whatever the message (IC rejects span several).
            let msg: Vec<&str> = msg.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            eprintln!("error: {}", msg.join(" "));
            ExitCode::from(code)
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            // `println!` panics when the reader of stdout went away (`opml watch --json | head -1`): not a bug.
            if msg.contains("failed printing to stdout") {
                eprintln!("error: stdout was closed by its reader; stopped");
                return ExitCode::FAILURE;
            }
            eprintln!("error: internal failure (a bug): {msg}");
            ExitCode::FAILURE
        }
    }
}
