//! `opml-scenarios`: end-to-end and adversarial scenarios of opml-ic. Every scenario runs the real verifier
//! canister wasm (`opml_canister_wasm::VERIFIER_WASM`) on an in-process devnet, drives it with the real `opml`
//! agents over `ic-agent` (the typed [`Chain`] API), advances devnet time explicitly (no sleeps racing the
//! canister), and checks every party's balance to the unit plus the conservation invariant at the end.
//!
//! | # | scenario | test (file) |
//! |---|---|---|
//! | 1 | honest worker, no challenge: final after the window, reward paid, stake returned, withdrawn to the ledger | `honest_worker_unchallenged_is_paid_after_the_window` (honest.rs) |
//! | 2 | honest worker, frivolous challenger playing a lying trace: the challenger loses its bond | `frivolous_challenger_loses_its_bond` (honest.rs) |
//! | 3 | worker lies about the output: challenger wins by proof, worker slashed, task reopened and then paid to an honest worker | `lying_worker_is_slashed_and_the_task_reopens` (honest.rs) |
//! | 4 | worker commits one wrong boundary root, right output: the honest agent agrees; a watcher who disputes wins | `inconsistent_trace_with_the_right_output_is_left_alone_and_loses_if_disputed` (adversarial.rs) |
//! | 5 | worker writes one wrong value to memory: bisection ends at that instruction, the challenger's proof wins | `wrong_store_is_found_at_its_instruction_and_the_proof_wins` (adversarial.rs) |
//! | 6 | equivocation: a root contradicting the commitment is refused; step roots contradicting the committed boundary lose | `root_contradicting_the_commitment_is_refused_and_the_liar_times_out`, `step_roots_contradicting_the_committed_boundary_lose_at_the_last_step` (adversarial.rs) |
//! | 7 | a party goes silent mid-dispute: loses on its clock (public `timeout` by a third party, and the sweep timer) | `silent_worker_loses_on_clock`, `silent_challenger_loses_on_clock`, `sweep_timer_ends_silent_disputes` (silence.rs) |
//! | 8 | forged one-step proofs (memory leaf, Merkle sibling, stack value, instruction, other step): each refused, every forger loses | `forged_step_proofs_are_refused_and_every_forger_loses` (adversarial.rs) |
//! | 9 | many challengers (wrong input, malicious, silent) against one honest claim: the worker wins each, paid once | `many_challengers_against_one_honest_claim_all_lose` (crowd.rs) |
//! | 10 | the worker disputes its own claim from a second identity: griefing an honest claim loses the bond's burn (an honest watcher pays nothing); front-running the challenge of its lie loses the stake's burn and the raced honest challenger is refunded | `self_challenge_grief_costs_the_worker_the_burn`, `self_challenge_of_a_lie_costs_the_burn_and_refunds_the_honest_challenger` (crowd.rs) |
//! | 11 | canister upgraded in the middle of several concurrent disputes: all finish correctly | `upgrade_mid_disputes_keeps_every_game` (restart.rs) |
//! | 12 | the worker restarts mid-dispute, resumes from its state file and still wins | `worker_restart_resumes_from_disk_and_wins` (restart.rs) |
//! | 13 | malformed calls at every game method: typed errors, stable memory and game state unchanged | `malformed_calls_are_refused_with_typed_errors_and_change_nothing` (malformed.rs) |
//! | 14 | lying that a trapping / stack-exhausting guest halted loses; an honest claim of a trap (ignored: refused today) | `lying_about_a_trapping_guest_loses`, `honest_claim_of_a_trapping_run_is_accepted` (adversarial.rs) |
//!
//! The harness: [`World`] (devnet + canister + programs + funded parties), [`Snapshot`] (balances, ledger,
//! totals; conservation checked on every snapshot) with exact [`Change`] assertions, [`TraceChallenger`] (a
//! challenger that plays the game's strategy over any trace, true or not), and [`settle`] (polls agents until
//! nothing moves).

pub mod lies;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candid::Principal;
use ic_agent::Identity;
use ic_agent::identity::BasicIdentity;
use opml_bisect::agent::{Trace, challenger_move};
use opml_bisect::{ClaimStatus, Outcome, Role};
use opml_devnet::{Account, Devnet, DevnetConfig};
use opml_prover::agent::{Challenger, Event, Lie, Log, ModelProgram, Run, TaskInput, Worker};
use opml_prover::chain::{Chain, ChainError, IcChain, Network, generate_identity};
use opml_prover::model::Model;
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{Config, Id, PlayArgs, PostTask, TaskStatus, Totals};
use opml_vm::io::Inputs;

pub use opml_prover::demo::{BOND, BURN_BPS, DEPOSIT, REWARD, STAKE, WINDOW_NS};

/// Each party's per-move chess clock in scenario tasks (shorter than the window, so "ran out of clock" and
/// "window passed" are different instants).
pub const CLOCK_NS: u64 = 600_000_000_000;
/// What the faucet gives each party before it deposits [`DEPOSIT`] (the rest pays ledger fees).
pub const MINT: u128 = 2 * DEPOSIT as u128;

/// Blob 0 of the adversarial scenarios' fixture tasks: 2000 pseudo-random bytes.
pub fn fixture_data() -> Vec<u8> {
    (0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// The burnt part of a forfeited amount under the scenarios' configuration.
pub fn burn(amount: u64) -> u64 {
    opml_bisect::burn_share(amount, BURN_BPS)
}

/// How to set up a [`World`].
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// Bisection arity.
    pub arity: u8,
    /// The canister's sweep timer period (0: none; outcomes only by public calls).
    pub sweep_interval_s: u64,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions { arity: 8, sweep_interval_s: 0 }
    }
}

/// A party: a name for the balance tables and an identity that can connect again (after a restart).
#[derive(Clone, Debug)]
pub struct Party {
    /// Name in snapshots and assertions.
    pub name: String,
    /// Its principal.
    pub principal: Principal,
    pem: String,
}

/// A devnet with the verifier canister installed, the digits model and the three-segment fixture registered.
pub struct World {
    /// The devnet (time, upgrades, ledger).
    pub devnet: Devnet,
    /// The verifier canister.
    pub canister: Principal,
    /// The configuration it was installed with.
    pub config: Config,
    /// The operator (a controller; registers programs, upgrades, reads totals).
    pub operator: IcChain,
    /// The digits model (one segment, ~62k steps).
    pub digits: Arc<ModelProgram>,
    /// The three-segment fixture (`opml_guests::fixtures::THREE_SEGMENTS_ABI`).
    pub fixture: Arc<ModelProgram>,
    parties: Mutex<Vec<Party>>,
}

/// The three-segment fixture as a model the agents can serve.
fn fixture_model() -> &'static Model {
    static MODEL: std::sync::OnceLock<&'static Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let wasm = wat::parse_str(opml_guests::fixtures::THREE_SEGMENTS_ABI).expect("the fixture is valid text");
        Box::leak(Box::new(Model { name: "three-segments", wasm: Box::leak(wasm.into_boxed_slice()) }))
    })
}

/// A log that prints agent events with the agent's name (shown by the test harness on failure).
pub fn log(name: &'static str) -> Log {
    Arc::new(move |e: &Event| println!("[{name:<12}] {e}"))
}

fn identity(pem: &str) -> BasicIdentity {
    BasicIdentity::from_pem(pem.as_bytes()).expect("a PEM this harness wrote")
}

impl World {
    /// A world with the default options.
    pub async fn start() -> World {
        World::start_with(WorldOptions::default()).await
    }

    /// Starts a devnet, installs the verifier (the demo's configuration, see [`opml_prover::demo::demo_config`]),
    /// registers the digits model and the three-segment fixture.
    pub async fn start_with(opts: WorldOptions) -> World {
        let devnet = Devnet::start(DevnetConfig::default()).expect("the devnet starts");
        let (op_id, op_pem) = generate_identity().expect("an identity");
        let op_principal = op_id.sender().expect("a principal");
        let mut config = opml_prover::demo::demo_config(devnet.ledger_id(), devnet.ledger_fee() as u64, opts.arity);
        config.sweep_interval_s = opts.sweep_interval_s;
        let canister = devnet
            .install_canister(
                opml_canister_wasm::VERIFIER_WASM,
                candid::encode_one(&config).expect("a Config encodes"),
                vec![op_principal],
            )
            .unwrap_or_else(|e| panic!("installing the verifier: {e:?}"));
        let operator = IcChain::connect(&Network::Url(devnet.url().into()), Box::new(op_id), canister)
            .await
            .expect("the operator connects");
        let digits = Arc::new(ModelProgram::new(opml_prover::model::find("digits").expect("digits")).expect("digits"));
        let fixture = Arc::new(ModelProgram::new(fixture_model()).expect("the fixture is a valid guest"));
        for p in [&digits, &fixture] {
            let hash = operator.register_program(p.model.wasm).await.expect("registration");
            assert_eq!(hash, p.hash, "the canister's program hash of {} is the agents'", p.model.name);
        }
        let parties = Mutex::new(vec![Party { name: "operator".into(), principal: op_principal, pem: op_pem }]);
        World { devnet, canister, config, operator, digits, fixture, parties }
    }

    /// The devnet's URL.
    pub fn url(&self) -> &str {
        self.devnet.url()
    }

    /// A new party: a fresh identity, [`MINT`] from the faucet, [`DEPOSIT`] deposited (ICRC-2). Returns the
    /// party and its client.
    pub async fn party(&self, name: &str) -> (Party, IcChain) {
        let (id, pem) = generate_identity().expect("an identity");
        let party = Party { name: name.into(), principal: id.sender().expect("a principal"), pem };
        {
            let mut ps = self.parties.lock().unwrap_or_else(|p| p.into_inner());
            assert!(ps.iter().all(|p| p.name != name), "party names are unique ({name})");
            ps.push(party.clone());
        }
        let chain = self.connect(&party).await;
        chain.devnet_mint(MINT).await.expect("the faucet");
        let balance = chain.deposit(DEPOSIT).await.expect("the deposit");
        assert_eq!(balance, DEPOSIT, "{name}'s balance after its deposit");
        (party, chain)
    }

    /// New parties named `names` (as [`World::party`]); returns their clients, in order.
    pub async fn chains<const N: usize>(&self, names: [&str; N]) -> [IcChain; N] {
        let mut chains = Vec::with_capacity(N);
        for name in names {
            chains.push(self.party(name).await.1);
        }
        chains.try_into().unwrap_or_else(|_| unreachable!("one client per name"))
    }

    /// A new client for `party` (the same identity: what a restarted process does).
    pub async fn connect(&self, party: &Party) -> IcChain {
        IcChain::connect(&Network::Url(self.url().into()), Box::new(identity(&party.pem)), self.canister)
            .await
            .expect("connects")
    }

    /// A worker agent over `chain` for `program` (honest if `lie` is `None`).
    pub fn worker(
        &self,
        name: &'static str,
        chain: IcChain,
        program: &Arc<ModelProgram>,
        lie: Option<Lie>,
    ) -> Worker<IcChain> {
        Worker::new(chain, program.clone(), lie, log(name))
    }

    /// An honest challenger agent over `chain` for `program`.
    pub fn challenger(&self, name: &'static str, chain: IcChain, program: &Arc<ModelProgram>) -> Challenger<IcChain> {
        Challenger::new(chain, program.clone(), log(name))
    }

    /// The digits task input of held-out image `n`.
    pub fn digits_input(&self, n: usize) -> TaskInput {
        TaskInput::new(self.digits.model, &format!("heldout:{n}")).expect("a held-out image")
    }

    /// A three-segment fixture input: blob 0 is `data`, blob 1 selects no misbehaviour.
    pub fn fixture_input(&self, data: &[u8]) -> TaskInput {
        TaskInput { model: self.fixture.model, inputs: Arc::new(Inputs::new(vec![data.to_vec(), vec![0]])) }
    }

    /// `requester` posts a task for `program` on `input` ([`REWARD`], [`STAKE`], [`WINDOW_NS`], [`CLOCK_NS`]).
    pub async fn post_task(&self, requester: &IcChain, program: &ModelProgram, input: &TaskInput) -> Id {
        let spec = PostTask {
            program: program.hash,
            input_root: input.root(),
            reward: REWARD,
            challenge_window_ns: WINDOW_NS,
            clock_ns: CLOCK_NS,
            worker_stake: STAKE,
        };
        requester.post_task(spec).await.expect("post_task")
    }

    /// `requester` posts a task for `program` on `input` and worker agent `name` over `chain` (honest if `lie` is
    /// `None`) serves it. Returns the task, the worker and its claim.
    pub async fn post_and_serve(
        &self,
        requester: &IcChain,
        (name, chain): (&'static str, IcChain),
        program: &Arc<ModelProgram>,
        input: &TaskInput,
        lie: Option<Lie>,
    ) -> (Id, Worker<IcChain>, Id) {
        let task = self.post_task(requester, program, input).await;
        let mut worker = self.worker(name, chain, program, lie);
        let claim = worker.serve(task, input).await.expect("the worker's claim passes submission");
        (task, worker, claim)
    }

    /// The true run of the digits model on held-out image `n`: what a challenger that re-ran the wrong input
    /// believes.
    pub fn digits_run(&self, n: usize) -> Arc<Run> {
        Arc::new(Run::new(&self.digits, &self.digits_input(n)).expect("the digits model runs"))
    }

    /// Advances devnet time (due timers run).
    pub fn advance(&self, d: Duration) {
        self.devnet.advance_time(d);
    }

    /// Advances devnet time past a challenge window.
    pub fn pass_window(&self) {
        self.advance(Duration::from_nanos(WINDOW_NS + 1_000_000_000));
    }

    /// Advances devnet time past a party's whole clock.
    pub fn run_out_clock(&self) {
        self.advance(Duration::from_nanos(CLOCK_NS + 1_000_000_000));
    }

    /// Passes the challenge window, has `worker` finalize `claim` on its next poll, and asserts the claim is final.
    pub async fn finalize_after_window(&self, worker: &mut Worker<IcChain>, claim: Id) {
        self.pass_window();
        worker.finalize_next_poll();
        worker.poll().await.expect("the worker polls");
        assert!(matches!(self.claim_status(claim).await, ClaimStatus::Final { .. }), "claim {claim} is final");
    }

    /// Ends dispute `d` on `claim` by `by`'s public `timeout` once the mover's clock has run out: asserts that the
    /// same call is refused (a typed game error) while the clock still runs, runs the clock out, times the dispute
    /// out and returns its outcome.
    pub async fn timeout_after_clock(&self, by: &IcChain, claim: Id, d: u32) -> Option<Outcome> {
        let early = by.timeout(claim, d).await.expect_err("no timeout while the mover's clock runs");
        assert!(matches!(early.canister(), Some(CanisterError::Game(_))), "{early}");
        self.run_out_clock();
        by.timeout(claim, d).await.expect("the timeout once the clock has run out");
        self.outcome(claim, d).await
    }

    /// Upgrades the verifier canister to the same wasm through the management canister (gzipped, as dfx does),
    /// with the operator's identity and the installed configuration.
    pub async fn upgrade(&self) {
        let gz = opml_prover::chain::gzip(opml_canister_wasm::VERIFIER_WASM).expect("gzip");
        let id = opml_prover::chain::deploy(self.operator.agent(), self.url(), &gz, &self.config, Some(self.canister))
            .await
            .expect("the upgrade");
        assert_eq!(id, self.canister);
    }

    /// The resolution of dispute `d` on `claim` (`None` while it is played).
    pub async fn outcome(&self, claim: Id, d: u32) -> Option<Outcome> {
        self.operator.get_dispute(claim, d).await.expect("get_dispute").resolution.map(|r| r.outcome)
    }

    /// The status of `claim`.
    pub async fn claim_status(&self, claim: Id) -> ClaimStatus {
        self.operator.get_claim(claim).await.expect("get_claim").status
    }

    /// The status of `task`.
    pub async fn task_status(&self, task: Id) -> TaskStatus {
        self.operator.get_task(task).await.expect("get_task").status
    }

    /// Every party's internal and ledger balance and the canister's totals; checks conservation: the canister's
    /// `balances + locked + pending + burned == deposited - withdrawn`, its ledger account holds exactly
    /// `deposited - withdrawn`, and the parties' balances add up to the canister's `balances` (no one else holds
    /// any).
    pub async fn snapshot(&self) -> Snapshot {
        let parties = self.parties.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut balances = BTreeMap::new();
        let mut ledger = BTreeMap::new();
        for p in &parties {
            balances.insert(p.name.clone(), self.operator.balance_of(p.principal).await.expect("balance_of"));
            ledger.insert(p.name.clone(), self.devnet.balance(&Account::of(p.principal)));
        }
        let totals = self.operator.totals().await.expect("totals");
        let t = &totals;
        assert_eq!(
            t.balances + t.locked + t.pending_withdrawals + t.burned,
            t.deposited - t.withdrawn,
            "conservation inside the canister: {t:?}"
        );
        assert_eq!(
            self.devnet.balance(&Account::of(self.canister)),
            t.deposited - t.withdrawn,
            "the canister's ledger account holds every deposit not withdrawn: {t:?}"
        );
        assert_eq!(
            balances.values().map(|&b| u128::from(b)).sum::<u128>(),
            t.balances,
            "the parties hold every balance"
        );
        Snapshot { balances, ledger, totals }
    }
}

/// Balances at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Internal (canister) balance per party.
    pub balances: BTreeMap<String, u64>,
    /// Ledger balance per party.
    pub ledger: BTreeMap<String, u128>,
    /// The canister's totals.
    pub totals: Totals,
}

/// The expected change between two snapshots; anything not listed must not have changed.
#[derive(Clone, Debug, Default)]
pub struct Change<'a> {
    /// Internal balance deltas by party name.
    pub balances: &'a [(&'a str, i128)],
    /// Ledger balance deltas by party name.
    pub ledger: &'a [(&'a str, i128)],
    /// Change of the canister's `locked`.
    pub locked: i128,
    /// Change of the canister's `burned`.
    pub burned: i128,
    /// Change of the canister's `withdrawn` (amount + fee of completed withdrawals).
    pub withdrawn: i128,
}

fn delta(after: u128, before: u128) -> i128 {
    after as i128 - before as i128
}

impl Snapshot {
    /// Asserts that `after` differs from `self` by exactly `change`, to the unit.
    pub fn assert_change(&self, after: &Snapshot, change: Change<'_>) {
        let want = |list: &[(&str, i128)], name: &str| list.iter().find(|(n, _)| *n == name).map_or(0, |(_, d)| *d);
        for (name, &a) in &after.balances {
            let b = self.balances.get(name).copied().unwrap_or(0);
            assert_eq!(
                delta(a.into(), b.into()),
                want(change.balances, name),
                "{name}'s internal balance ({b} -> {a})"
            );
        }
        for (name, &a) in &after.ledger {
            let b = self.ledger.get(name).copied().unwrap_or(0);
            assert_eq!(delta(a, b), want(change.ledger, name), "{name}'s ledger balance ({b} -> {a})");
        }
        for (name, _) in change.balances.iter().chain(change.ledger) {
            assert!(after.balances.contains_key(*name), "no party named {name}");
        }
        let (b, a) = (&self.totals, &after.totals);
        assert_eq!(delta(a.locked, b.locked), change.locked, "locked ({} -> {})", b.locked, a.locked);
        assert_eq!(delta(a.burned, b.burned), change.burned, "burned ({} -> {})", b.burned, a.burned);
        assert_eq!(delta(a.withdrawn, b.withdrawn), change.withdrawn, "withdrawn");
        assert_eq!(a.deposited, b.deposited, "no deposit in between");
        assert_eq!(a.pending_withdrawals, 0, "no withdrawal left pending");
    }
}

impl Snapshot {
    /// Asserts how an honest claim's end moved balances since `self`: the worker was paid the reward and won
    /// every challenger's bond less the burn; each of `losers` lost its bond. `requester` names the task's
    /// requester if `self` was taken before the task was posted (the reward then left its balance and nothing
    /// stays locked); `None` if after (the locked reward was paid out).
    pub fn assert_worker_paid(&self, after: &Snapshot, requester: Option<&str>, worker: &str, losers: &[&str]) {
        let n = losers.len() as u64;
        let mut balances = vec![(worker, (REWARD + n * (BOND - burn(BOND))) as i128)];
        balances.extend(losers.iter().map(|&l| (l, -(BOND as i128))));
        balances.extend(requester.map(|r| (r, -(REWARD as i128))));
        let locked = if requester.is_some() { 0 } else { -(REWARD as i128) };
        self.assert_change(
            after,
            Change { balances: &balances, locked, burned: (n * burn(BOND)) as i128, ..Change::default() },
        );
    }

    /// Asserts how a lying worker's loss moved balances since `self`: `liar` lost its stake, `challenger` won it
    /// less the burn, and the task reopened with its reward still locked. `requester` as in
    /// [`Snapshot::assert_worker_paid`] (if named, its reward is locked since `self`).
    pub fn assert_worker_slashed(&self, after: &Snapshot, requester: Option<&str>, liar: &str, challenger: &str) {
        let mut balances = vec![(liar, -(STAKE as i128)), (challenger, (STAKE - burn(STAKE)) as i128)];
        balances.extend(requester.map(|r| (r, -(REWARD as i128))));
        let locked = if requester.is_some() { REWARD as i128 } else { 0 };
        self.assert_change(
            after,
            Change { balances: &balances, locked, burned: burn(STAKE) as i128, ..Change::default() },
        );
    }
}

/// A challenger that opens a dispute and plays `opml_bisect::agent::challenger_move` over any trace: the true
/// one, a run on another input (an honest watcher given the wrong input), or a lie. A move the canister refuses
/// (a proof that does not verify from the agreed root, say) is recorded and the challenger falls silent, so it
/// then loses on its clock.
pub struct TraceChallenger {
    /// Its client.
    pub chain: IcChain,
    trace: Arc<dyn Trace + Send + Sync>,
    dispute: Option<(Id, u32)>,
    refused: Option<CanisterError>,
    /// Moves the canister accepted.
    pub moves: u32,
}

impl TraceChallenger {
    /// A challenger believing `trace`.
    pub fn new(chain: IcChain, trace: Arc<dyn Trace + Send + Sync>) -> TraceChallenger {
        TraceChallenger { chain, trace, dispute: None, refused: None, moves: 0 }
    }

    /// Opens a dispute on `claim` (locks the bond); returns its id.
    pub async fn open(&mut self, claim: Id) -> Result<u32, ChainError> {
        let d = self.chain.open_dispute(claim).await?;
        self.dispute = Some((claim, d));
        Ok(d)
    }

    /// The dispute it opened.
    pub fn dispute(&self) -> Option<(Id, u32)> {
        self.dispute
    }

    /// The canister's answer to the move it refused, if one was.
    pub fn refused(&self) -> Option<&CanisterError> {
        self.refused.as_ref()
    }

    /// Plays its move if it is its turn; returns the number of moves made (0 or 1).
    pub async fn poll(&mut self) -> Result<u32, ChainError> {
        let Some((claim, id)) = self.dispute else { return Ok(0) };
        if self.refused.is_some() {
            return Ok(0);
        }
        let state = self.chain.get_claim_state(claim).await?;
        let Some(d) = state.disputes.get(id as usize) else { return Ok(0) };
        if d.mover() != Some(Role::Challenger) {
            return Ok(0);
        }
        let Some(mv) = challenger_move(d, &state.config, &Dyn(&*self.trace)) else { return Ok(0) };
        match self.chain.play(PlayArgs { claim, dispute: id, seq: d.seq, mv }).await {
            Ok(()) => {
                self.moves += 1;
                Ok(1)
            }
            Err(ChainError::Canister { error, .. }) => {
                println!("[trace-chal  ] claim {claim} dispute {id}: the canister refused the move: {error:?}");
                self.refused = Some(error);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
}

/// A sized `Trace` over an unsized one (the game's strategies take sized traces).
struct Dyn<'a, T: ?Sized>(&'a T);

impl<T: Trace + ?Sized> Trace for Dyn<'_, T> {
    fn boundary_root(&self, i: u64) -> opml_bisect::Hash {
        self.0.boundary_root(i)
    }
    fn step_count(&self, s: u64) -> u64 {
        self.0.step_count(s)
    }
    fn step_root(&self, s: u64, j: u64) -> opml_bisect::Hash {
        self.0.step_root(s, j)
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.0.step_proof(s, j)
    }
}

/// Something [`settle`] polls.
pub enum Actor<'a> {
    /// A worker agent (defends its claims; `finalize` is left to the scenario).
    Worker(&'a mut Worker<IcChain>),
    /// An honest challenger agent.
    Challenger(&'a mut Challenger<IcChain>),
    /// A challenger over a chosen trace.
    Trace(&'a mut TraceChallenger),
    /// A dishonest worker over a chosen trace ([`lies::LyingWorker`]).
    Liar(&'a mut dyn lies::Dishonest),
}

impl Actor<'_> {
    async fn poll(&mut self) -> u32 {
        match self {
            Actor::Worker(w) => w.poll().await.unwrap_or_else(|e| panic!("worker: {e}")),
            Actor::Challenger(c) => c.poll().await.unwrap_or_else(|e| panic!("challenger: {e}")),
            Actor::Trace(t) => t.poll().await.unwrap_or_else(|e| panic!("trace challenger: {e}")),
            Actor::Liar(l) => l.poll_moves().await.unwrap_or_else(|e| panic!("lying worker: {e}")),
        }
    }
}

/// Upper bound on polling passes: a digits dispute at arity 2 needs ~35 moves; anything near this is a stall.
const MAX_PASSES: u32 = 500;

/// Polls every actor in order, pass after pass, until a whole pass makes no move (nothing is left that any of
/// them will do without time passing). Returns the moves made.
pub async fn settle(actors: &mut [Actor<'_>]) -> u32 {
    play(actors, u32::MAX).await
}

/// Like [`settle`], but stops after the first pass that brings the moves made to at least `moves`.
pub async fn play(actors: &mut [Actor<'_>], moves: u32) -> u32 {
    let mut total = 0;
    for _ in 0..MAX_PASSES {
        let mut made = 0;
        for a in actors.iter_mut() {
            made += a.poll().await;
        }
        total += made;
        if made == 0 || total >= moves {
            return total;
        }
    }
    panic!("the agents were still moving after {MAX_PASSES} passes");
}
