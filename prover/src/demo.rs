//! `opml demo`: the whole protocol on an in-process devnet, through the same ic-agent client and agents the
//! `opml` commands use.
//!
//! 1. start the devnet and install the verifier canister (its wasm from `opml-canister-wasm`);
//! 2. five fresh identities get tokens from the devnet faucet and deposit them (ICRC-2 approve + `deposit`);
//! 3. the operator registers the model guests (chunked upload);
//! 4. an honest worker serves a task, a challenger re-executes it and agrees, the window passes (devnet time is
//!    advanced), the claim is finalized and the reward paid;
//! 5. a cheating worker claims the result of another input for a second task; the challenger re-executes,
//!    disagrees, opens a dispute and both play it round by round down to one instruction, whose one-step proof
//!    the canister verifies; the cheater's stake goes to the challenger (less the burn) and the task reopens;
//! 6. a summary: rounds, bytes posted, canister instructions and cycles, time per phase, balances.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candid::Principal;
use opml_bisect::{ClaimStatus, Outcome, Reason};
use opml_devnet::{Devnet, DevnetConfig};
use opml_verifier_canister::types::{Config, Id, PostTask, TaskStatus};

use crate::agent::{Challenger, Event, Lie, Log, ModelProgram, TaskInput, Verdict, Worker};
use crate::chain::{Chain, IcChain, Network, generate_identity};
use crate::model;
use crate::progress::Progress;

/// The worker stake a demo task asks for.
pub const STAKE: u64 = 100_000_000;
/// The challenger bond.
pub const BOND: u64 = 10_000_000;
/// A task's reward.
pub const REWARD: u64 = 5_000_000;
/// Burnt share of forfeits, in basis points.
pub const BURN_BPS: u16 = 2_000;
/// Challenge window and per-party clock of demo tasks.
pub const WINDOW_NS: u64 = 3_600_000_000_000;
/// What each party deposits.
pub const DEPOSIT: u64 = 1_000_000_000;

/// Demo options.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// `minilm` (the default) or `digits` (fast).
    pub model: String,
    /// Input of the honest task, and of the task the cheater lies about.
    pub input: Option<String>,
    /// The other input whose result the cheater claims (the `other-input` lie).
    pub lie_input: Option<String>,
    /// `corrupt` (an activation corrupted before the last segment; the default for multi-segment models) or
    /// `other-input` (the result of another input; the default for digits).
    pub lie: Option<String>,
    /// Bisection arity.
    pub arity: u8,
    /// Print progress lines.
    pub verbose: bool,
    /// Progress bars (hidden by default).
    pub progress: Arc<Progress>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            model: "minilm".into(),
            input: None,
            lie_input: None,
            lie: None,
            arity: 8,
            verbose: true,
            progress: Progress::hidden(),
        }
    }
}

/// What the demo measured.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    pub model: String,
    /// (phase, seconds), in order.
    pub phases: Vec<(String, f64)>,
    pub honest_claim: Id,
    pub honest_status: String,
    pub cheat_task: Id,
    pub cheat_task_status: String,
    pub cheat_claim: Id,
    pub cheat_claim_invalidated: bool,
    pub outcome: String,
    pub challenger_won_by_proof: bool,
    pub segment_rounds: u32,
    pub step_rounds: u32,
    pub moves: u32,
    /// The instruction the one-step proof settled: (segment, step, steps in that segment).
    pub proved_step: Option<(u64, u64)>,
    /// Segments of the cheating claim.
    pub cheat_segments: u64,
    pub dispute_bytes_worker: u64,
    pub dispute_bytes_challenger: u64,
    /// Canister instructions per method (calls, total, max).
    pub instructions: BTreeMap<String, (u64, u64, u64)>,
    pub dispute_instructions: u64,
    pub dispute_cycles: u128,
    /// Internal balances (name, before, after).
    pub balances: Vec<(String, u64, u64)>,
    pub burned: u128,
    pub locked: u128,
    /// Ledger balances after (name, balance).
    pub ledger: Vec<(String, u128)>,
}

/// IC pricing (13-node application subnet): per update call 5M cycles for its execution and 1.2M for ingress
/// reception, 2,000 per ingress byte, and 4 cycles per 10 instructions. The devnet counts instructions as the IC
/// does (its cost table, see `opml_devnet::metering`).
pub fn cycles(updates: u64, instructions: u64, ingress_bytes: u64) -> u128 {
    updates as u128 * (5_000_000 + 1_200_000) + instructions as u128 * 4 / 10 + ingress_bytes as u128 * 2_000
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

struct Party {
    name: &'static str,
    chain: IcChain,
}

async fn party(name: &'static str, url: &str, canister: Principal) -> Result<Party, String> {
    let (id, _) = generate_identity()?;
    let chain = IcChain::connect(&Network::Url(url.into()), Box::new(id), canister).await.map_err(|e| e.to_string())?;
    Ok(Party { name, chain })
}

fn default_input(model: &str) -> (&'static str, &'static str) {
    match model {
        "digits" => ("heldout:3", "heldout:4"),
        _ => ("This is an example sentence", "This is an example sentence, honestly."),
    }
}

/// The verifier configuration the demo installs.
pub fn demo_config(ledger: Principal, fee: u64, arity: u8) -> Config {
    Config {
        ledger,
        ledger_fee: fee,
        operators: vec![],
        arity,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 40,
        min_stake: STAKE,
        challenger_bond: BOND,
        burn_bps: BURN_BPS,
        min_challenge_window_ns: 60_000_000_000,
        max_challenge_window_ns: 7 * 86_400_000_000_000,
        min_clock_ns: 60_000_000_000,
        max_clock_ns: 3 * 86_400_000_000_000,
        max_program_bytes: 16 << 20,
        max_output_bytes: 65_536,
        sweep_interval_s: 0,
    }
}

/// Runs the demo; returns what it measured.
pub async fn run(opts: DemoOptions) -> Result<DemoReport, String> {
    let verbose = opts.verbose;
    let progress = opts.progress.clone();
    let say = move |s: String| {
        if verbose {
            progress.println(&s);
        }
    };
    let model = model::find(&opts.model)?;
    let (def_in, def_lie) = default_input(model.name);
    let input_text = opts.input.clone().unwrap_or_else(|| def_in.into());
    let lie_text = opts.lie_input.clone().unwrap_or_else(|| def_lie.into());
    let mut report = DemoReport { model: model.name.into(), ..Default::default() };
    let total = Instant::now();

    // -- 1. devnet and canister
    let t = Instant::now();
    say("== 1. devnet: starting the local IC and installing the verifier canister".into());
    let devnet = Devnet::start(DevnetConfig::default()).map_err(|e| e.to_string())?;
    let url = devnet.url().to_string();
    let operator_id = generate_identity()?.0;
    let operator_principal = ic_agent::Identity::sender(&operator_id)?;
    let config = demo_config(devnet.ledger_id(), devnet.ledger_fee() as u64, opts.arity);
    let canister = devnet
        .install_canister(
            opml_canister_wasm::VERIFIER_WASM,
            candid::encode_one(&config).map_err(|e| e.to_string())?,
            vec![operator_principal],
        )
        .map_err(|e| format!("installing the verifier canister failed: {e:?}"))?;
    let operator = Party {
        name: "operator",
        chain: IcChain::connect(&Network::Url(url.clone()), Box::new(operator_id), canister)
            .await
            .map_err(|e| e.to_string())?,
    };
    say(format!(
        "   devnet at {url}, verifier canister {canister} ({} KiB wasm), arity {}",
        opml_canister_wasm::VERIFIER_WASM.len() / 1024,
        opts.arity
    ));
    report.phases.push(("devnet + deploy".into(), secs(t)));

    // -- 2. parties and deposits
    let t = Instant::now();
    say("== 2. accounts: faucet, ICRC-2 approve, deposit".into());
    let requester = party("requester", &url, canister).await?;
    let worker = party("honest worker", &url, canister).await?;
    let cheater = party("cheater", &url, canister).await?;
    let challenger = party("challenger", &url, canister).await?;
    let parties = [&requester, &worker, &cheater, &challenger];
    for p in parties {
        p.chain.devnet_mint(2 * DEPOSIT as u128).await.map_err(|e| e.to_string())?;
        p.chain.deposit(DEPOSIT).await.map_err(|e| e.to_string())?;
        say(format!("   {:<13} {} deposited {DEPOSIT}", p.name, p.chain.principal()));
    }
    let mut before = Vec::new();
    for p in parties {
        before.push(p.chain.balance_of(p.chain.principal()).await.map_err(|e| e.to_string())?);
    }
    report.phases.push(("accounts".into(), secs(t)));

    // -- 3. programs
    let t = Instant::now();
    say("== 3. programs: chunked upload, validation and commitment by the canister".into());
    let mut to_register = vec![model::find("digits")?];
    if model.name != "digits" {
        to_register.push(model);
    }
    for m in &to_register {
        let tm = Instant::now();
        let hash = operator.chain.register_program(m.wasm).await.map_err(|e| e.to_string())?;
        say(format!(
            "   {:<7} {} KiB -> program {} ({:.1} s)",
            m.name,
            m.wasm.len() / 1024,
            crate::agent::short(&hash),
            secs(tm)
        ));
    }
    let program = Arc::new(ModelProgram::new(model).map_err(|e| e.to_string())?);
    let registered = operator.chain.get_program(program.hash).await.map_err(|e| e.to_string())?;
    if registered.program != program.hash {
        return Err("the canister's program hash differs from the agents'".into());
    }
    report.phases.push(("register programs".into(), secs(t)));

    let log_for = |who: &'static str| -> Log {
        let say = say.clone();
        Arc::new(move |e: &Event| say(format!("   [{who:<10}] {e}")))
    };
    let input = TaskInput::new(model, &input_text)?;
    let spec = PostTask {
        program: program.hash,
        input_root: input.root(),
        reward: REWARD,
        challenge_window_ns: WINDOW_NS,
        clock_ns: WINDOW_NS,
        worker_stake: STAKE,
    };

    // -- 4. honest task
    let t = Instant::now();
    say(format!("== 4. honest task: {} on {input_text:?}", model.name));
    let task = requester.chain.post_task(spec.clone()).await.map_err(|e| e.to_string())?;
    say(format!("   requester posted task {task} (reward {REWARD}, stake {STAKE})"));
    let mut honest =
        Worker::new(worker.chain, program.clone(), None, log_for("worker")).with_progress(opts.progress.clone());
    let claim = honest.serve(task, &input).await.map_err(|e| e.to_string())?;
    let mut watcher =
        Challenger::new(challenger.chain, program.clone(), log_for("challenger")).with_progress(opts.progress.clone());
    if watcher.check(claim, &input).await.map_err(|e| e.to_string())? != Verdict::Agrees {
        return Err("the challenger disagreed with the honest worker".into());
    }
    devnet.advance_time(Duration::from_nanos(WINDOW_NS + 1_000_000_000));
    say("   (devnet time advanced past the challenge window)".into());
    honest.finalize_next_poll();
    honest.poll().await.map_err(|e| e.to_string())?;
    let view = honest.chain.get_claim(claim).await.map_err(|e| e.to_string())?;
    report.honest_claim = claim;
    report.honest_status = format!("{:?}", view.status);
    report.phases.push(("honest task".into(), secs(t)));

    // -- 5. the cheat
    let t = Instant::now();
    let lie = match opts.lie.as_deref() {
        Some("corrupt") => Lie::CorruptState,
        Some("other-input") => Lie::OtherInput(lie_text.clone()),
        None if model.name == "digits" => Lie::OtherInput(lie_text.clone()),
        None => Lie::CorruptState,
        Some(other) => return Err(format!("unknown lie `{other}` (corrupt, other-input)")),
    };
    match &lie {
        Lie::OtherInput(t) => {
            say(format!("== 5. cheating worker: claims the result of {t:?} for a task on {input_text:?}"))
        }
        Lie::CorruptState => say(format!(
            "== 5. cheating worker: runs {input_text:?} but corrupts one activation before the last segment"
        )),
    }
    let cheat_task = requester.chain.post_task(spec).await.map_err(|e| e.to_string())?;
    let mut liar =
        Worker::new(cheater.chain, program.clone(), Some(lie), log_for("cheater")).with_progress(opts.progress.clone());
    let cheat_claim = liar.serve(cheat_task, &input).await.map_err(|e| e.to_string())?;
    let out = liar.chain.get_claim(cheat_claim).await.map_err(|e| e.to_string())?.output;
    say(format!("   claimed output: {}", model::describe_output(model, &out)));
    let verdict = watcher.check(cheat_claim, &input).await.map_err(|e| e.to_string())?;
    let Verdict::Disputed(d) = verdict else { return Err("the challenger did not dispute the lie".into()) };
    let bytes_w0 = liar.chain.stats().bytes();
    let bytes_c0 = watcher.chain.stats().bytes();
    let play_start = Instant::now();
    let mut guard = 0;
    while !watcher.settled() {
        let moved = liar.poll().await.map_err(|e| e.to_string())? + watcher.poll().await.map_err(|e| e.to_string())?;
        guard += 1;
        if moved == 0 && guard > 10_000 {
            return Err("the dispute stalled".into());
        }
    }
    liar.poll().await.map_err(|e| e.to_string())?;
    let dispute = watcher.chain.get_dispute(cheat_claim, d).await.map_err(|e| e.to_string())?;
    let state = watcher.chain.get_claim_state(cheat_claim).await.map_err(|e| e.to_string())?;
    let ds = state.dispute(d).map_err(|e| e.to_string())?;
    report.cheat_task = cheat_task;
    report.cheat_claim = cheat_claim;
    report.segment_rounds = ds.segment_rounds;
    if let opml_bisect::Phase::ProveStep { segment, step, .. } = ds.phase {
        report.proved_step = Some((segment, step));
    }
    report.cheat_segments = state.claim.segments;
    report.step_rounds = ds.step_rounds;
    report.moves = dispute.seq as u32;
    report.outcome = format!("{:?}", dispute.resolution.as_ref().map(|r| &r.outcome));
    report.challenger_won_by_proof =
        matches!(dispute.resolution.as_ref().map(|r| &r.outcome), Some(Outcome::ChallengerWon(Reason::StepProof)));
    report.cheat_claim_invalidated = matches!(state.status, ClaimStatus::Invalidated { .. });
    let ct = requester.chain.get_task(cheat_task).await.map_err(|e| e.to_string())?;
    report.cheat_task_status = format!("{:?}", ct.status);
    report.dispute_bytes_worker = liar.chain.stats().of("play").1.min(liar.chain.stats().bytes() - bytes_w0);
    report.dispute_bytes_challenger = watcher.chain.stats().bytes() - bytes_c0;
    say(format!(
        "   the canister verified the one-step proof: {}; claim {cheat_claim} {:?}; task {cheat_task} {:?} ({:.1} s of play)",
        report.outcome,
        state.status,
        ct.status,
        secs(play_start)
    ));
    report.phases.push(("dispute".into(), secs(t)));

    // -- 6. summary
    let names = ["requester", "honest worker", "cheater", "challenger"];
    let chains = [&requester.chain, &honest.chain, &liar.chain, &watcher.chain];
    for ((name, c), b) in names.iter().zip(chains).zip(before) {
        let after = c.balance_of(c.principal()).await.map_err(|e| e.to_string())?;
        report.balances.push((name.to_string(), b, after));
        report.ledger.push((name.to_string(), c.ledger_balance().await.map_err(|e| e.to_string())?));
    }
    let totals = operator.chain.totals().await.map_err(|e| e.to_string())?;
    report.burned = totals.burned;
    report.locked = totals.locked;
    for (m, s) in devnet.instruction_counts(canister) {
        report.instructions.insert(m, (s.calls, s.total_instructions, s.max_instructions));
    }
    let play = report.instructions.get("play").copied().unwrap_or_default();
    let open = report.instructions.get("open_dispute").copied().unwrap_or_default();
    report.dispute_instructions = play.1 + open.1;
    report.dispute_cycles = cycles(
        play.0 + open.0,
        report.dispute_instructions,
        report.dispute_bytes_worker + report.dispute_bytes_challenger,
    );
    report.phases.push(("total".into(), secs(total)));
    let _ = task_status_text(ct.status);
    if verbose {
        print_summary(&report);
    }
    Ok(report)
}

fn task_status_text(s: TaskStatus) -> String {
    format!("{s:?}")
}

/// Prints the summary table.
pub fn print_summary(r: &DemoReport) {
    println!("== summary ({})", r.model);
    println!("   honest claim {}: {}", r.honest_claim, r.honest_status);
    println!(
        "   cheating claim {}: invalidated={} by {}; task {} is {}",
        r.cheat_claim, r.cheat_claim_invalidated, r.outcome, r.cheat_task, r.cheat_task_status
    );
    println!(
        "   dispute: {} segment rounds + {} step rounds, {} moves; bytes posted: worker {} B, challenger {} B",
        r.segment_rounds, r.step_rounds, r.moves, r.dispute_bytes_worker, r.dispute_bytes_challenger
    );
    if let Some((segment, step)) = r.proved_step {
        println!("   settled by the one-step proof of step {step} of segment {segment} (of {})", r.cheat_segments);
    }
    println!(
        "   canister: dispute {} instructions (open_dispute + play), ~{} cycles (13-node pricing, incl. ingress)",
        r.dispute_instructions, r.dispute_cycles
    );
    println!("   instructions per method (calls, total, max):");
    for (m, (calls, total, max)) in &r.instructions {
        println!("     {m:<28} {calls:>4} {total:>16} {max:>16}");
    }
    println!("   balances in the canister (before -> after):");
    for (name, b, a) in &r.balances {
        let delta = *a as i128 - *b as i128;
        println!("     {name:<14} {b:>14} -> {a:>14}  ({delta:+})");
    }
    println!("   burned {}, still locked {} (the reopened task's reward)", r.burned, r.locked);
    println!("   time per phase:");
    for (p, s) in &r.phases {
        println!("     {p:<20} {s:>8.2} s");
    }
}

/// The report as JSON.
pub fn report_json(r: &DemoReport) -> serde_json::Value {
    serde_json::json!({
        "model": r.model,
        "phases": r.phases.iter().map(|(p, s)| serde_json::json!({"phase": p, "seconds": s})).collect::<Vec<_>>(),
        "honest_claim": r.honest_claim,
        "honest_status": r.honest_status,
        "cheat_claim": r.cheat_claim,
        "cheat_claim_invalidated": r.cheat_claim_invalidated,
        "cheat_task_status": r.cheat_task_status,
        "outcome": r.outcome,
        "segment_rounds": r.segment_rounds,
        "step_rounds": r.step_rounds,
        "moves": r.moves,
        "proved_step": r.proved_step,
        "bytes_worker": r.dispute_bytes_worker,
        "bytes_challenger": r.dispute_bytes_challenger,
        "dispute_instructions": r.dispute_instructions,
        "dispute_cycles": r.dispute_cycles.to_string(),
        "instructions": r.instructions.iter().map(|(m, (c, t, x))| serde_json::json!({"method": m, "calls": c, "total": t, "max": x})).collect::<Vec<_>>(),
        "balances": r.balances.iter().map(|(n, b, a)| serde_json::json!({"party": n, "before": b, "after": a})).collect::<Vec<_>>(),
        "burned": r.burned.to_string(),
        "locked": r.locked.to_string(),
    })
}
