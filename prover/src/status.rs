//! `opml status`: claims and disputes as text, or as JSON (`--json`).

use std::fmt::Write;

use opml_bisect::Phase;
use opml_verifier_canister::types::Id;

use crate::agent::{short, status_text};
use crate::chain::{Chain, ChainError};

fn secs(ns: u64) -> String {
    format!("{:.0} s", ns as f64 / 1e9)
}

/// A claim with its disputes: status, turn, clocks, range under dispute, rounds.
pub async fn claim_text<C: Chain>(chain: &C, claim: Id) -> Result<String, ChainError> {
    let v = chain.get_claim(claim).await?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "claim {claim} on task {}: {:?}, worker {}, stake {} (escrow {}), {} segments, run {}, output hash {}, window ends at {} ns",
        v.task,
        v.status,
        v.worker,
        v.stake,
        v.escrow,
        v.claim.segments,
        status_text(&v.claim.final_status),
        short(&v.claim.output_hash),
        v.window_end_ns
    );
    let state = chain.get_claim_state(claim).await?;
    for (i, d) in state.disputes.iter().enumerate() {
        let view = chain.get_dispute(claim, i as u32).await?;
        let phase = phase_text(&d.phase);
        let _ = writeln!(
            s,
            "  dispute {i}: challenger {}, bond {}, {} moves ({} segment rounds, {} step rounds); {phase}",
            view.challenger, d.bond, d.seq, d.segment_rounds, d.step_rounds
        );
        match &d.resolution {
            Some(r) => {
                let _ = writeln!(s, "    resolved at {} ns: {:?}", r.at_ns, r.outcome);
            }
            None => {
                let _ = writeln!(
                    s,
                    "    to move: {:?} ({:?}), deadline {:?} ns; clocks: worker {}, challenger {}",
                    view.mover,
                    view.expected,
                    view.deadline_ns,
                    secs(d.clock.worker_ns),
                    secs(d.clock.challenger_ns)
                );
            }
        }
    }
    Ok(s)
}

/// What a dispute is at, in words.
fn phase_text(phase: &Phase) -> String {
    match phase {
        Phase::Segments(b) => format!("segment bisection over [{}, {}]", b.lo, b.hi),
        Phase::CommitSteps { segment, .. } => format!("segment {segment} found; worker to commit its steps"),
        Phase::Steps { segment, steps, bisection } => {
            format!("step bisection in segment {segment} ({steps} steps) over [{}, {}]", bisection.lo, bisection.hi)
        }
        Phase::ProveStep { segment, step, .. } => format!("one-step proof of step {step} of segment {segment}"),
    }
}

/// The same as [`claim_text`], as one JSON object (for scripts).
pub async fn claim_json<C: Chain>(chain: &C, claim: Id) -> Result<serde_json::Value, ChainError> {
    let hex = |h: &opml_bisect::Hash| h.0.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let v = chain.get_claim(claim).await?;
    let state = chain.get_claim_state(claim).await?;
    let mut disputes = Vec::new();
    for (i, d) in state.disputes.iter().enumerate() {
        let view = chain.get_dispute(claim, i as u32).await?;
        disputes.push(serde_json::json!({
            "dispute": i,
            "challenger": view.challenger.to_text(),
            "bond": d.bond,
            "moves": d.seq,
            "segment_rounds": d.segment_rounds,
            "step_rounds": d.step_rounds,
            "phase": phase_text(&d.phase),
            "resolved": d.resolution.as_ref().map(|r| serde_json::json!({
                "at_ns": r.at_ns,
                "outcome": format!("{:?}", r.outcome),
            })),
            "to_move": d.resolution.is_none().then(|| format!("{:?}", view.mover)),
            "expected": d.resolution.is_none().then(|| format!("{:?}", view.expected)),
            "deadline_ns": view.deadline_ns,
            "clock_ns": { "worker": d.clock.worker_ns, "challenger": d.clock.challenger_ns },
        }));
    }
    Ok(serde_json::json!({
        "claim": claim,
        "task": v.task,
        "status": format!("{:?}", v.status),
        "worker": v.worker.to_text(),
        "stake": v.stake,
        "escrow": v.escrow,
        "segments": v.claim.segments,
        "final_status": status_text(&v.claim.final_status),
        "trap_code": match v.claim.final_status {
            opml_bisect::FinalStatus::Halted => None,
            opml_bisect::FinalStatus::Trapped { code } => Some(code),
        },
        "output_hash": hex(&v.claim.output_hash),
        "final_root": hex(&v.claim.final_root),
        "window_end_ns": v.window_end_ns,
        "disputes": disputes,
    }))
}
