//! `opml status`: claims and disputes as text.

use std::fmt::Write;

use opml_bisect::Phase;
use opml_verifier_canister::types::Id;

use crate::agent::short;
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
        "claim {claim} on task {}: {:?}, worker {}, stake {} (escrow {}), {} segments, output hash {}, window ends at {} ns",
        v.task,
        v.status,
        v.worker,
        v.stake,
        v.escrow,
        v.claim.segments,
        short(&v.claim.output_hash),
        v.window_end_ns
    );
    let state = chain.get_claim_state(claim).await?;
    for (i, d) in state.disputes.iter().enumerate() {
        let view = chain.get_dispute(claim, i as u32).await?;
        let phase = match &d.phase {
            Phase::Segments(b) => format!("segment bisection over [{}, {}]", b.lo, b.hi),
            Phase::CommitSteps { segment, .. } => format!("segment {segment} found; worker to commit its steps"),
            Phase::Steps { segment, steps, bisection } => {
                format!("step bisection in segment {segment} ({steps} steps) over [{}, {}]", bisection.lo, bisection.hi)
            }
            Phase::ProveStep { segment, step, .. } => format!("one-step proof of step {step} of segment {segment}"),
        };
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
