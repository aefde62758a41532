//! End-to-end flows of the core on the toy VM: registration, tasks, claims, disputes, payouts, withdrawals, and
//! "no state change on error" for every rejected call.

mod common;

use common::*;
use opml_bisect::{ClaimStatus, Hash, Move, Outcome, Reason, Role};
use opml_verifier_canister::Error;
use opml_verifier_canister::core::MAX_CHUNK;
use opml_verifier_canister::ledger::{TransferError, classify_transfer};
use opml_verifier_canister::types::*;
use opml_verifier_canister::vm::ToyProgramVm;

const LENGTHS: [u64; 5] = [3, 2, 4, 1, 6];

/// Asserts that `f` fails with `expected` and leaves the state unchanged.
fn rejects<T: std::fmt::Debug>(c: &mut C, expected: Error, f: impl FnOnce(&mut C) -> Result<T, Error>) {
    let before = c.digest();
    let got = f(c);
    assert_eq!(got.unwrap_err(), expected);
    assert_eq!(c.digest(), before, "a rejected call changed the state");
}

fn rejects_game<T: std::fmt::Debug>(c: &mut C, f: impl FnOnce(&mut C) -> Result<T, Error>) -> opml_bisect::Error {
    let before = c.digest();
    let got = f(c).unwrap_err();
    assert_eq!(c.digest(), before, "a rejected call changed the state");
    match got {
        Error::Game(e) => e,
        other => panic!("expected a game error, got {other:?}"),
    }
}

#[test]
fn registration_is_chunked_resumable_checked_and_operator_only() {
    let mut c = core();
    let wasm = ToyProgramVm::module(&LENGTHS);
    let op = operator();
    let args = BeginUpload { wasm_sha3: sha3(&wasm), size: wasm.len() as u64 };
    rejects(&mut c, Error::NotOperator, |c| c.begin_upload(&user(1), args.clone(), 0));
    rejects(&mut c, Error::ProgramSize { size: 0, max: 1 << 20 }, |c| {
        c.begin_upload(&op, BeginUpload { size: 0, ..args.clone() }, 0)
    });
    rejects(&mut c, Error::ProgramSize { size: (1 << 20) + 1, max: 1 << 20 }, |c| {
        c.begin_upload(&op, BeginUpload { size: (1 << 20) + 1, ..args.clone() }, 0)
    });
    let id = c.begin_upload(&op, args.clone(), 5).unwrap();
    // Chunks must be contiguous, bounded, within the declared size, and from the upload's owner.
    rejects(&mut c, Error::NotOwner, |c| c.upload_chunk(&operator_b(), id, 0, &wasm[..10]));
    rejects(&mut c, Error::WrongOffset { expected: 0, got: 3 }, |c| c.upload_chunk(&op, id, 3, &wasm[..10]));
    rejects(&mut c, Error::ChunkSize { len: 0, max: MAX_CHUNK }, |c| c.upload_chunk(&op, id, 0, &[]));
    assert_eq!(c.upload_chunk(&op, id, 0, &wasm[..10]).unwrap(), 10);
    rejects(&mut c, Error::UploadIncomplete { received: 10, size: wasm.len() as u64 }, |c| c.finish_upload(&op, id, 9));
    // Resume from what the canister says it has.
    let resume = c.upload(id).unwrap().received;
    rejects(&mut c, Error::ChunkPastEnd { size: wasm.len() as u64 }, |c| {
        let mut too_long = wasm[10..].to_vec();
        too_long.push(0);
        c.upload_chunk(&op, id, resume, &too_long)
    });
    c.upload_chunk(&op, id, resume, &wasm[10..30]).unwrap();
    c.upload_chunk(&op, id, 30, &wasm[30..]).unwrap();
    let program = c.finish_upload(&op, id, 9).unwrap().registered().unwrap();
    let mut toy = opml_bisect::toy::ToyVm::new();
    assert_eq!(program, toy.register(&LENGTHS));
    assert!(matches!(c.upload(id).unwrap().status, UploadStatus::Registered { .. }));
    rejects(&mut c, Error::UploadFinished, |c| c.finish_upload(&op, id, 9));
    // The module reads back exactly, across chunk boundaries.
    let p = c.program(&program).unwrap();
    assert_eq!((p.size, p.wasm_sha3, p.registered_by), (wasm.len() as u64, sha3(&wasm), op.id));
    assert_eq!(c.program_wasm(&program, 0, 1 << 20).unwrap(), wasm);
    assert_eq!(c.program_wasm(&program, 7, 25).unwrap(), wasm[7..32]);
    assert!(c.program_wasm(&program, 1_000, 5).unwrap().is_empty());
    assert_eq!(c.list_programs(None, 10).len(), 1);
    assert!(c.list_programs(Some(program), 10).is_empty());
    // The same program twice, a wrong hash, an invalid module: rejected at finish.
    let again = c.begin_upload(&op, args.clone(), 0).unwrap();
    c.upload_chunk(&op, again, 0, &wasm).unwrap();
    rejects(&mut c, Error::ProgramExists { program }, |c| c.finish_upload(&op, again, 0));
    c.abort_upload(&op, again).unwrap();
    rejects(&mut c, Error::UnknownUpload { upload: again }, |c| c.upload_chunk(&op, again, 0, &wasm));
    let bad = c.begin_upload(&op, BeginUpload { wasm_sha3: Hash::ZERO, size: wasm.len() as u64 }, 0).unwrap();
    c.upload_chunk(&op, bad, 0, &wasm).unwrap();
    rejects(&mut c, Error::WasmHashMismatch { got: sha3(&wasm) }, |c| c.finish_upload(&op, bad, 0));
    let junk = b"not a module".to_vec();
    let inv = c.begin_upload(&op, BeginUpload { wasm_sha3: sha3(&junk), size: junk.len() as u64 }, 0).unwrap();
    c.upload_chunk(&op, inv, 0, &junk).unwrap();
    rejects(&mut c, Error::InvalidProgram { reason: "not a toy module".into() }, |c| c.finish_upload(&op, inv, 0));
    // A controller that is not in the allow-list may register too.
    c.begin_upload(&controller(), args, 0).unwrap();
}

/// Uploads `wasm` whole and returns the upload.
fn upload(c: &mut C, wasm: &[u8]) -> Id {
    let op = operator();
    let id = c.begin_upload(&op, BeginUpload { wasm_sha3: sha3(wasm), size: wasm.len() as u64 }, 0).unwrap();
    c.upload_chunk(&op, id, 0, wasm).unwrap();
    id
}

#[test]
fn registration_spreads_over_calls_and_starts_over_when_interrupted() {
    // A toy derivation counts one unit per segment: with 2 units per call, 7 segments take several calls.
    let lengths = [1, 2, 3, 4, 5, 6, 7];
    let wasm = ToyProgramVm::module(&lengths);
    let want = opml_bisect::toy::ToyVm::new().register(&lengths);
    let op = operator();
    let mem = ic_stable_structures::DefaultMemoryImpl::default();
    let mut c = C::init(mem.clone(), ToyProgramVm, config()).unwrap();
    c.set_finish_upload_budget(2);
    let id = upload(&mut c, &wasm);
    // The validating call spends its budget on the module's 7 units: nothing is hashed yet.
    let step = |c: &mut C, id| c.finish_upload(&op, id, 0).unwrap();
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 0, total: 7 });
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 2, total: 7 });
    // Committing changes no stable state: the upload is still receiving, no program exists, and other calls go
    // on as usual.
    assert_eq!(c.upload(id).unwrap().status, UploadStatus::Receiving);
    assert!(c.list_programs(None, 10).is_empty());
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 4, total: 7 });
    // An upgrade drops the work in progress: the next call validates again and starts over.
    drop(c);
    let mut c = C::load(mem.clone(), ToyProgramVm, None).unwrap();
    c.set_finish_upload_budget(2);
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 0, total: 7 });
    // So does another upload's registration (one in progress at a time); a rejected one leaves it alone.
    let other = upload(&mut c, &ToyProgramVm::module(&[9, 9]));
    let bad = c.begin_upload(&op, BeginUpload { wasm_sha3: Hash::ZERO, size: 3 }, 0).unwrap();
    c.upload_chunk(&op, bad, 0, b"abc").unwrap();
    assert!(matches!(c.finish_upload(&op, bad, 0), Err(Error::WasmHashMismatch { .. })));
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 2, total: 7 });
    assert_eq!(step(&mut c, other), RegistrationStep::Committing { done: 0, total: 2 });
    assert_eq!(step(&mut c, id), RegistrationStep::Committing { done: 0, total: 7 });
    // Only the owner moves it; the rest of the calls finish it.
    assert_eq!(c.finish_upload(&operator_b(), id, 0), Err(Error::NotOwner));
    let mut calls = 0;
    let program = loop {
        calls += 1;
        match step(&mut c, id) {
            RegistrationStep::Registered { program } => break program,
            other => assert!(matches!(other, RegistrationStep::Committing { done, total } if done < total)),
        }
    };
    assert_eq!((program, calls), (want, 4), "2 + 2 + 2 + 1 units, then registered");
    assert_eq!(c.upload(id).unwrap().status, UploadStatus::Registered { program });
    assert_eq!(c.finish_upload(&op, id, 0), Err(Error::UploadFinished));
    // Aborting an upload drops its work in progress with it.
    assert_eq!(step(&mut c, other), RegistrationStep::Committing { done: 0, total: 2 });
    c.abort_upload(&op, other).unwrap();
    assert_eq!(c.finish_upload(&op, other, 0), Err(Error::UnknownUpload { upload: other }));
    // A large budget registers in one call, as before.
    c.set_finish_upload_budget(1_000);
    let again = upload(&mut c, &ToyProgramVm::module(&[9, 9]));
    assert!(step(&mut c, again).registered().is_some());
}

fn operator_b() -> Caller {
    Caller { id: principal(202), is_controller: false }
}

#[test]
fn tasks_lock_rewards_within_bounds_and_cancel_refunds() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 16);
    fund(&mut c, 1, 500);
    let spec = task_spec(program, 400);
    rejects(&mut c, Error::UnknownProgram { program: Hash([9; 32]) }, |c| {
        c.post_task(&user(1), PostTask { program: Hash([9; 32]), ..spec.clone() }, 0)
    });
    rejects(
        &mut c,
        Error::OutOfBounds { field: "challenge_window_ns".into(), value: 99, min: 100, max: 100_000 },
        |c| c.post_task(&user(1), PostTask { challenge_window_ns: 99, ..spec.clone() }, 0),
    );
    rejects(&mut c, Error::OutOfBounds { field: "clock_ns".into(), value: 20_000, min: 50, max: 10_000 }, |c| {
        c.post_task(&user(1), PostTask { clock_ns: 20_000, ..spec.clone() }, 0)
    });
    rejects(&mut c, Error::OutOfBounds { field: "worker_stake".into(), value: 5, min: STAKE, max: u64::MAX }, |c| {
        c.post_task(&user(1), PostTask { worker_stake: 5, ..spec.clone() }, 0)
    });
    rejects(&mut c, Error::InsufficientBalance { needed: 600, available: 500 }, |c| {
        c.post_task(&user(1), PostTask { reward: 600, ..spec.clone() }, 0)
    });
    let anon = Caller { id: candid::Principal::anonymous(), is_controller: false };
    rejects(&mut c, Error::AnonymousCaller, |c| c.post_task(&anon, spec.clone(), 0));
    let t = c.post_task(&user(1), spec.clone(), 0).unwrap();
    assert_eq!(c.balance(&principal(1)), 100);
    assert_eq!(c.totals().locked, 400);
    check_conservation(&c);
    rejects(&mut c, Error::NotOwner, |c| c.cancel_task(&user(2), t));
    c.cancel_task(&user(1), t).unwrap();
    assert_eq!(c.balance(&principal(1)), 500);
    assert_eq!(c.task(t).unwrap().status, TaskStatus::Cancelled);
    rejects(&mut c, Error::TaskNotOpen, |c| c.cancel_task(&user(1), t));
    check_conservation(&c);
    // Listing pages.
    for _ in 0..5 {
        c.post_task(&user(1), PostTask { reward: 1, ..spec.clone() }, 0).unwrap();
    }
    let p1 = c.list_tasks(0, 4);
    assert_eq!((p1.items.len(), p1.next), (4, Some(4)));
    let p2 = c.list_tasks(4, 4);
    assert_eq!((p2.items.len(), p2.next), (2, None));
}

#[test]
fn unchallenged_claim_finalizes_and_pays_reward() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 64);
    fund(&mut c, 1, 400);
    fund(&mut c, 2, STAKE);
    let t = c.post_task(&user(1), task_spec(program, 400), 0).unwrap();
    let honest = run(&LENGTHS, true);
    let (args, _) = claim_args(t, &honest);
    // Bad claims: wrong task program/input, wrong output, no stake.
    let mut wrong = args.clone();
    wrong.claim.input_root = Hash([1; 32]);
    rejects(&mut c, Error::ClaimDoesNotMatchTask, |c| c.submit_claim(&user(2), wrong, 10));
    let mut wrong = args.clone();
    wrong.output = vec![0; 32];
    rejects(&mut c, Error::OutputMismatch { got: Hash::ZERO }, |c| c.submit_claim(&user(2), wrong, 10));
    rejects(&mut c, Error::InsufficientBalance { needed: STAKE, available: 0 }, |c| {
        c.submit_claim(&user(3), args.clone(), 10)
    });
    let mut wrong = args.clone();
    wrong.claim.final_root = Hash([3; 32]);
    let e = rejects_game(&mut c, |c| c.submit_claim(&user(2), wrong, 10));
    assert!(matches!(e, opml_bisect::Error::FinalOpeningRejected(_)), "{e:?}");
    let claim = c.submit_claim(&user(2), args.clone(), 10).unwrap();
    assert_eq!(c.balance(&principal(2)), 0);
    assert_eq!(c.task(t).unwrap().status, TaskStatus::Claimed { claim });
    // One live claim per task.
    rejects(&mut c, Error::TaskNotOpen, |c| c.submit_claim(&user(2), args.clone(), 11));
    rejects(&mut c, Error::TaskNotOpen, |c| c.cancel_task(&user(1), t));
    // Not before the window ends.
    let e = rejects_game(&mut c, |c| c.finalize(claim, 10 + WINDOW));
    assert_eq!(e, opml_bisect::Error::ChallengeWindowOpen { ends_at_ns: 10 + WINDOW });
    let view = c.claim(claim).unwrap();
    assert_eq!((view.window_end_ns, view.escrow, view.worker), (10 + WINDOW, STAKE, principal(2)));
    c.finalize(claim, 11 + WINDOW).unwrap();
    assert_eq!(c.balance(&principal(2)), STAKE + 400);
    assert_eq!(c.task(t).unwrap().status, TaskStatus::Done { claim });
    assert!(matches!(c.claim(claim).unwrap().status, ClaimStatus::Final { .. }));
    assert_eq!(c.totals().locked, 0);
    check_conservation(&c);
    let e = rejects_game(&mut c, |c| c.finalize(claim, 12 + WINDOW));
    assert_eq!(e, opml_bisect::Error::ClaimNotPending);
}

/// Plays dispute `d` of `claim` with the agents until it ends; returns the number of moves.
fn play_out(
    c: &mut C,
    claim: u64,
    d: u32,
    worker: (&opml_bisect::toy::ToyRun, &opml_bisect::MerkleTree),
    truth: &opml_bisect::toy::ToyRun,
    now: &mut u64,
) -> u32 {
    let mut moves = 0;
    while let Some((role, args)) = agent_move(c, claim, d, worker, truth) {
        *now += 10;
        let who = if role == Role::Worker { user(2) } else { user(3) };
        // The other party, or anyone else, cannot move; a stale sequence number is rejected.
        let other = if role == Role::Worker { user(3) } else { user(2) };
        let e = rejects_game(c, |c| c.play(&other, args.clone(), *now));
        assert!(matches!(e, opml_bisect::Error::NotYourTurn { .. }), "{e:?}");
        let e = rejects_game(c, |c| c.play(&user(9), args.clone(), *now));
        assert_eq!(e, opml_bisect::Error::NotAParty);
        let stale = PlayArgs { seq: args.seq + 1, ..args.clone() };
        let e = rejects_game(c, |c| c.play(&who, stale, *now));
        assert!(matches!(e, opml_bisect::Error::StaleMove { .. }), "{e:?}");
        c.play(&who, args, *now).unwrap();
        check_conservation(c);
        moves += 1;
    }
    moves
}

#[test]
fn lying_worker_loses_stake_and_task_reopens() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 64);
    fund(&mut c, 1, 400);
    fund(&mut c, 2, STAKE);
    fund(&mut c, 3, BOND);
    let t = c.post_task(&user(1), task_spec(program, 400), 0).unwrap();
    let truth = run(&LENGTHS, true);
    let liar = run(&LENGTHS, false);
    let (args, tree) = claim_args(t, &liar);
    let claim = c.submit_claim(&user(2), args, 10).unwrap();
    let e = rejects_game(&mut c, |c| c.open_dispute(&user(2), claim, 20));
    assert_eq!(e, opml_bisect::Error::SelfChallenge);
    let e = rejects_game(&mut c, |c| c.open_dispute(&user(3), claim, 11 + WINDOW));
    assert!(matches!(e, opml_bisect::Error::ChallengeWindowClosed { .. }));
    rejects(&mut c, Error::InsufficientBalance { needed: BOND, available: 0 }, |c| c.open_dispute(&user(4), claim, 20));
    let d = c.open_dispute(&user(3), claim, 20).unwrap();
    assert_eq!(c.balance(&principal(3)), 0);
    let view = c.dispute(claim, d).unwrap();
    assert_eq!((view.mover, view.interval, view.deadline_ns), (Some(Role::Worker), (0, 5), Some(20 + CLOCK)));
    assert_eq!(view.points_to_post, vec![1, 2, 3]);
    // The claim cannot be finalized while the dispute is open, even after the window.
    let mut now = 20;
    let moves = play_out(&mut c, claim, d, (&liar, &tree), &truth, &mut now);
    assert!(moves >= 4);
    let view = c.dispute(claim, d).unwrap();
    assert_eq!(view.resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::StepProof));
    assert_eq!((view.mover, view.deadline_ns), (None, None));
    // Challenger: bond back + stake less 20% burnt; the task is open again with its reward still locked.
    assert_eq!(c.balance(&principal(3)), BOND + STAKE - STAKE / 5);
    assert_eq!(c.totals().burned, u128::from(STAKE / 5));
    assert_eq!(c.task(t).unwrap().status, TaskStatus::Open);
    assert_eq!(c.totals().locked, 400);
    assert!(matches!(c.claim(claim).unwrap().status, ClaimStatus::Invalidated { .. }));
    check_conservation(&c);
    // An honest worker now claims and gets the reward.
    fund(&mut c, 4, STAKE);
    let (args, _) = claim_args(t, &truth);
    let claim2 = c.submit_claim(&user(4), args, now).unwrap();
    c.finalize(claim2, now + WINDOW + 1).unwrap();
    assert_eq!(c.balance(&principal(4)), STAKE + 400);
    assert_eq!(c.task(t).unwrap().claims, vec![claim, claim2]);
    check_conservation(&c);
}

#[test]
fn honest_worker_wins_bond_and_finalizes() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 64);
    fund(&mut c, 1, 400);
    fund(&mut c, 2, STAKE);
    fund(&mut c, 3, BOND);
    let t = c.post_task(&user(1), task_spec(program, 400), 0).unwrap();
    let truth = run(&LENGTHS, true);
    let liar = run(&LENGTHS, false);
    let (args, tree) = claim_args(t, &truth);
    let claim = c.submit_claim(&user(2), args, 10).unwrap();
    let d = c.open_dispute(&user(3), claim, 20).unwrap();
    let e = rejects_game(&mut c, |c| c.finalize(claim, 11 + WINDOW));
    assert_eq!(e, opml_bisect::Error::DisputesOpen { count: 1 });
    let mut now = 20;
    // A lying challenger (it believes the faulty trace) plays against the honest worker.
    play_out(&mut c, claim, d, (&truth, &tree), &liar, &mut now);
    let view = c.dispute(claim, d).unwrap();
    assert!(matches!(view.resolution.unwrap().outcome, Outcome::WorkerWon(_)));
    assert_eq!(c.balance(&principal(2)), BOND - BOND / 5);
    c.finalize(claim, now.max(11 + WINDOW)).unwrap();
    assert_eq!(c.balance(&principal(2)), BOND - BOND / 5 + STAKE + 400);
    check_conservation(&c);
}

#[test]
fn timeouts_are_public_and_the_sweep_reaches_the_same_outcomes() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 64);
    fund(&mut c, 1, 1_000);
    for w in [2, 4] {
        fund(&mut c, w, STAKE);
    }
    fund(&mut c, 3, 2 * BOND);
    let truth = run(&LENGTHS, true);
    let t1 = c.post_task(&user(1), task_spec(program, 300), 0).unwrap();
    let t2 = c.post_task(&user(1), task_spec(program, 300), 0).unwrap();
    let (a1, _) = claim_args(t1, &truth);
    let (a2, _) = claim_args(t2, &truth);
    let c1 = c.submit_claim(&user(2), a1, 10).unwrap();
    let c2 = c.submit_claim(&user(4), a2, 10).unwrap();
    // A dispute on c1 where the worker never answers; anyone can time it out once the clock has run out.
    let d = c.open_dispute(&user(3), c1, 20).unwrap();
    let e = rejects_game(&mut c, |c| c.timeout(c1, d, 20 + CLOCK));
    assert_eq!(e, opml_bisect::Error::NotTimedOut { deadline_ns: 20 + CLOCK });
    let mv = PlayArgs { claim: c1, dispute: d, seq: 0, mv: Move::Choose { index: 0 } };
    let e = rejects_game(&mut c, |c| c.play(&user(2), mv, 21 + CLOCK));
    assert!(matches!(e, opml_bisect::Error::MoveTooLate { .. }));
    // A dispute on c2 where the worker is the one that stalls too; the sweep handles both, and finalizes nothing
    // early.
    let d2 = c.open_dispute(&user(3), c2, 30).unwrap();
    let r = c.sweep(25, 10);
    assert_eq!((r.visited, r.finalized, r.timeouts), (2, 0, 0));
    let r = c.sweep(31 + CLOCK, 10);
    assert_eq!((r.visited, r.finalized, r.timeouts), (2, 0, 2));
    for (claim, d) in [(c1, d), (c2, d2)] {
        let v = c.dispute(claim, d).unwrap();
        assert_eq!(v.resolution.unwrap().outcome, Outcome::ChallengerWon(Reason::Timeout));
    }
    assert_eq!(c.balance(&principal(3)), 2 * (BOND + STAKE - STAKE / 5));
    check_conservation(&c);
    // Reclaimed by honest workers; the sweep finalizes them after the window, in bounded batches.
    let (a1, _) = claim_args(t1, &truth);
    let (a2, _) = claim_args(t2, &truth);
    fund(&mut c, 5, 2 * STAKE);
    let n1 = c.submit_claim(&user(5), a1, 1_000).unwrap();
    let n2 = c.submit_claim(&user(5), a2, 1_000).unwrap();
    let r = c.sweep(1_001 + WINDOW, 1);
    assert_eq!((r.visited, r.finalized), (1, 1));
    let r = c.sweep(1_001 + WINDOW, 1);
    assert_eq!((r.visited, r.finalized), (1, 1));
    assert_eq!(c.sweep(1_002 + WINDOW, 5).visited, 0);
    assert_eq!(c.task(t1).unwrap().status, TaskStatus::Done { claim: n1 });
    assert_eq!(c.task(t2).unwrap().status, TaskStatus::Done { claim: n2 });
    assert_eq!(c.balance(&principal(5)), 2 * (STAKE + 300));
    check_conservation(&c);
}

#[test]
fn parallel_disputes_a_winner_cancels_the_others() {
    let mut c = core();
    let program = register(&mut c, &LENGTHS, 64);
    fund(&mut c, 1, 400);
    fund(&mut c, 2, STAKE);
    for ch in [3, 5, 6] {
        fund(&mut c, ch, BOND);
    }
    let t = c.post_task(&user(1), task_spec(program, 400), 0).unwrap();
    let liar = run(&LENGTHS, false);
    let (args, _) = claim_args(t, &liar);
    let claim = c.submit_claim(&user(2), args, 10).unwrap();
    let d0 = c.open_dispute(&user(3), claim, 20).unwrap();
    let d1 = c.open_dispute(&user(5), claim, 21).unwrap();
    let e = rejects_game(&mut c, |c| c.open_dispute(&user(5), claim, 22));
    assert_eq!(e, opml_bisect::Error::AlreadyDisputing { dispute: d1 });
    c.open_dispute(&user(6), claim, 22).unwrap();
    assert_eq!(c.list_disputes(claim, 1, 10).unwrap().len(), 2);
    // The silent worker times out in d0 first: the others are cancelled and refunded.
    c.timeout(claim, d0, 21 + CLOCK).unwrap();
    assert_eq!(c.balance(&principal(5)), BOND);
    assert_eq!(c.balance(&principal(6)), BOND);
    assert_eq!(c.dispute(claim, d1).unwrap().resolution.unwrap().outcome, Outcome::Cancelled);
    assert_eq!(c.claim(claim).unwrap().escrow, 0);
    check_conservation(&c);
}

#[test]
fn withdrawals_are_journaled_and_never_lose_or_double() {
    let mut c = core();
    fund(&mut c, 1, 1_000);
    let w = user(1);
    let args = WithdrawArgs { amount: 500, to: None };
    rejects(&mut c, Error::InvalidAmount, |c| c.begin_withdrawal(&w, WithdrawArgs { amount: 0, to: None }, 0));
    rejects(&mut c, Error::InsufficientBalance { needed: 1_001, available: 1_000 }, |c| {
        c.begin_withdrawal(&w, WithdrawArgs { amount: 991, to: None }, 0)
    });
    let bad_to = Some(Account { owner: principal(1), subaccount: Some(vec![1, 2]) });
    rejects(&mut c, Error::InvalidSubaccount, |c| c.begin_withdrawal(&w, WithdrawArgs { amount: 1, to: bad_to }, 0));
    // 1. Executed.
    let a = c.begin_withdrawal(&w, args.clone(), 100).unwrap();
    assert_eq!(c.balance(&principal(1)), 490);
    let arg = C::transfer_arg(&a);
    assert_eq!((arg.memo.clone(), arg.created_at_time), (Some(a.id.to_le_bytes().to_vec()), Some(100)));
    check_conservation(&c);
    let done = c.withdrawal_outcome(a.id, 1, executed(7)).unwrap();
    assert_eq!(done.status, WithdrawalStatus::Completed { block: 7u64.into() });
    // A late or repeated answer changes nothing.
    rejects(&mut c, Error::WithdrawalNotRetryable, |c| c.withdrawal_outcome(a.id, 1, executed(8)));
    assert_eq!(c.totals().withdrawn, 510);
    check_conservation(&c);
    // 2. Not executed: refunded in full.
    let b = c.begin_withdrawal(&w, WithdrawArgs { amount: 100, to: None }, 200).unwrap();
    assert_eq!(c.balance(&principal(1)), 380);
    c.withdrawal_outcome(b.id, 1, LedgerOutcome::NotExecuted("InsufficientFunds".into())).unwrap();
    assert_eq!(c.balance(&principal(1)), 490);
    check_conservation(&c);
    // 3. Unknown, then retried (same transfer; the ledger answers Duplicate): completed once.
    let d = c.begin_withdrawal(&w, WithdrawArgs { amount: 100, to: None }, 300).unwrap();
    rejects(&mut c, Error::WithdrawalNotRetryable, |c| c.retry_withdrawal(&w, d.id, 301));
    c.withdrawal_outcome(d.id, 1, LedgerOutcome::Unknown("SysUnknown".into())).unwrap();
    assert_eq!(c.balance(&principal(1)), 380);
    check_conservation(&c);
    rejects(&mut c, Error::NotOwner, |c| c.retry_withdrawal(&user(2), d.id, 302));
    let d2 = c.retry_withdrawal(&w, d.id, 302).unwrap();
    assert_eq!(d2.status, WithdrawalStatus::InFlight { attempt: 2, since_ns: 302 });
    assert_eq!(C::transfer_arg(&d2), C::transfer_arg(&d));
    let dup = classify_transfer(&Err(TransferError::Duplicate { duplicate_of: 9u64.into() }), 2);
    c.withdrawal_outcome(d.id, 2, dup).unwrap();
    assert_eq!(c.withdrawal(d.id).unwrap().status, WithdrawalStatus::Completed { block: 9u64.into() });
    assert_eq!(c.balance(&principal(1)), 380);
    check_conservation(&c);
    // 4. Unknown for good (TooOld on a retry): only a controller resolves it, after checking the ledger.
    let e = c.begin_withdrawal(&w, WithdrawArgs { amount: 50, to: None }, 400).unwrap();
    c.withdrawal_outcome(e.id, 1, LedgerOutcome::Unknown("timeout".into())).unwrap();
    c.retry_withdrawal(&w, e.id, 500).unwrap();
    let too_old = classify_transfer(&Err(TransferError::TooOld), 2);
    assert!(matches!(too_old, LedgerOutcome::Unknown(_)));
    c.withdrawal_outcome(e.id, 2, too_old).unwrap();
    rejects(&mut c, Error::NotController, |c| c.resolve_withdrawal(&w, e.id, None));
    c.resolve_withdrawal(&controller(), e.id, None).unwrap();
    assert_eq!(c.balance(&principal(1)), 380);
    rejects(&mut c, Error::WithdrawalNotRetryable, |c| c.resolve_withdrawal(&controller(), e.id, None));
    check_conservation(&c);
    // First-attempt errors other than Duplicate are definite.
    assert!(matches!(classify_transfer(&Err(TransferError::TooOld), 1), LedgerOutcome::NotExecuted(_)));
    assert!(matches!(classify_transfer(&Ok(3u64.into()), 1), LedgerOutcome::Executed(_)));
    let page = c.list_withdrawals(principal(1), 0, 2);
    assert_eq!((page.items.len(), page.next), (2, Some(2)));
    assert!(c.list_withdrawals(principal(2), 0, 10).items.is_empty());
}

#[test]
fn deposits_are_checked_before_the_ledger_call() {
    let mut c = core();
    let anon = Caller { id: candid::Principal::anonymous(), is_controller: false };
    let ok = DepositArgs { amount: 5, from_subaccount: None };
    assert_eq!(c.check_deposit(&anon, &ok), Err(Error::AnonymousCaller));
    assert_eq!(c.check_deposit(&user(1), &DepositArgs { amount: 0, from_subaccount: None }), Err(Error::InvalidAmount));
    assert_eq!(
        c.check_deposit(&user(1), &DepositArgs { amount: 1, from_subaccount: Some(vec![0; 31]) }),
        Err(Error::InvalidSubaccount)
    );
    c.check_deposit(&user(1), &ok).unwrap();
    assert_eq!(c.credit_deposit(&principal(1), 5).unwrap(), 5);
    assert_eq!(c.totals().deposited, 5);
    check_conservation(&c);
}

#[test]
fn config_is_validated_and_survives_reload() {
    use ic_stable_structures::{DefaultMemoryImpl, Memory};
    let mut bad = config();
    bad.min_clock_ns = 20_000;
    assert!(matches!(
        C::init(DefaultMemoryImpl::default(), ToyProgramVm, bad.clone()),
        Err(Error::InvalidConfig { .. })
    ));
    bad = config();
    bad.arity = 1;
    assert!(matches!(
        C::init(DefaultMemoryImpl::default(), ToyProgramVm, bad),
        Err(Error::Game(opml_bisect::Error::ArityOutOfRange { arity: 1 }))
    ));
    // Everything lives in the memory: a reload (an upgrade) sees the same state.
    let mem = DefaultMemoryImpl::default();
    let mut c = C::init(mem.clone(), ToyProgramVm, config()).unwrap();
    let program = register(&mut c, &LENGTHS, 8);
    fund(&mut c, 1, 700);
    c.post_task(&user(1), task_spec(program, 100), 0).unwrap();
    let digest = c.digest();
    drop(c);
    assert!(mem.size() > 0);
    let c = C::load(mem.clone(), ToyProgramVm, None).unwrap();
    assert_eq!(c.digest(), digest);
    assert_eq!(c.config(), config());
    let mut changed = config();
    changed.min_stake = 5;
    let c = C::load(mem, ToyProgramVm, Some(changed.clone())).unwrap();
    assert_eq!(c.config(), changed);
    assert!(C::load(DefaultMemoryImpl::default(), ToyProgramVm, None).is_err());
}
