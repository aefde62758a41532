//! Progress display for long work: the fast engine's segments, the bisection rounds of every dispute, and the
//! stepper work behind a move (counting a segment's steps, step roots, the one-step proof).
//!
//! Bars are drawn on stderr, and only when stderr is a terminal and the caller did not ask for machine output
//! (`--json`) or silence (`--quiet`): scripts and tests see exactly the lines on stdout. Lines printed through
//! [`Progress::println`] go to stdout above the bars, so the two never tear each other.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use opml_bisect::bisection::rounds_needed;
use opml_bisect::{Dispute, Phase, Role};
use opml_verifier_canister::types::Id;

/// How often spinners redraw while the thread that owns them computes.
const TICK: Duration = Duration::from_millis(120);

/// The progress display of one process (or none: [`Progress::hidden`]).
pub struct Progress {
    /// `None`: nothing is drawn and no bar is ever created.
    multi: Option<MultiProgress>,
    /// One bar per live dispute (claim, dispute), showing its rounds.
    rounds: Mutex<BTreeMap<(Id, u32), ProgressBar>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("visible", &self.is_visible()).finish()
    }
}

/// Where a bisection is: `round` of about `total` rounds of its current phase (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Round {
    /// The current round.
    pub round: u32,
    /// Rounds the phase needs at most.
    pub total: u32,
}

/// The round a bisection over `0..=n` is in once narrowed to `[lo, hi]` with arity `k`: each round shrinks the
/// interval to at most `ceil(len / k)`, so the rounds left are those an interval of `hi - lo` needs.
pub fn round_of(lo: u64, hi: u64, n: u64, k: u8) -> Round {
    let total = rounds_needed(n, k);
    let left = rounds_needed(hi.saturating_sub(lo), k);
    Round { round: (total.saturating_sub(left) + 1).min(total.max(1)), total }
}

/// A dispute's phase in words, its round and the interval still disputed (`None` for the one-move phases).
pub fn describe_phase(d: &Dispute, segments: u64, k: u8) -> (String, Option<Round>) {
    match &d.phase {
        Phase::Segments(b) => {
            let r = round_of(b.lo, b.hi, segments, k);
            (format!("segment round {}/{}: segments [{}, {}] of {segments}", r.round, r.total, b.lo, b.hi), Some(r))
        }
        Phase::CommitSteps { segment, .. } => (format!("segment {segment} found; worker commits its steps"), None),
        Phase::Steps { segment, steps, bisection: b } => {
            let r = round_of(b.lo, b.hi, *steps, k);
            let text = format!(
                "step round {}/{}: steps [{}, {}] of {steps} in segment {segment}",
                r.round, r.total, b.lo, b.hi
            );
            (text, Some(r))
        }
        Phase::ProveStep { segment, step, .. } => (format!("one-step proof of step {step} in segment {segment}"), None),
    }
}

/// What computing `role`'s next move in `d` costs, when it needs the stepper (`None`: it only reads roots the
/// fast engine already computed, which is instant).
pub fn stepper_work(d: &Dispute, role: Role) -> Option<String> {
    match (&d.phase, role) {
        (Phase::CommitSteps { segment, .. }, Role::Worker) => {
            Some(format!("stepping segment {segment} to count its steps"))
        }
        (Phase::Steps { segment, bisection: b, .. }, _) => {
            Some(format!("step roots of segment {segment} in [{}, {}]", b.lo, b.hi))
        }
        (Phase::ProveStep { segment, step, .. }, Role::Challenger) => {
            Some(format!("building the one-step proof of step {step} in segment {segment}"))
        }
        _ => None,
    }
}

impl Progress {
    /// No display at all (library callers, `--json`, `--quiet`, tests).
    pub fn hidden() -> Arc<Progress> {
        Arc::new(Progress { multi: None, rounds: Mutex::new(BTreeMap::new()) })
    }

    /// Bars on stderr if `wanted` and stderr is a terminal; otherwise [`Progress::hidden`].
    pub fn stderr(wanted: bool) -> Arc<Progress> {
        if !(wanted && std::io::stderr().is_terminal()) {
            return Progress::hidden();
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        Arc::new(Progress { multi: Some(multi), rounds: Mutex::new(BTreeMap::new()) })
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        self.multi.is_some()
    }

    /// Prints `line` on stdout, above the bars.
    pub fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// A ticking spinner showing `text` in `template`'s `{msg}`.
    fn spinner(&self, template: &str, text: String) -> ProgressBar {
        let Some(m) = &self.multi else { return ProgressBar::hidden() };
        let style = ProgressStyle::with_template(template).expect("a valid template");
        let bar = m.add(ProgressBar::new_spinner().with_style(style).with_message(text));
        bar.enable_steady_tick(TICK);
        bar
    }

    /// A spinner for one run of the fast engine, counting its segments ([`Working::segment`]); it disappears
    /// when dropped.
    pub fn inference(&self, what: &str) -> Working {
        Working(self.spinner("{spinner} {msg}: segments done {pos} ({elapsed})", what.to_string()))
    }

    /// A spinner for stepper work that blocks this thread; it disappears when the returned bar is dropped
    /// (through [`Working`]).
    pub fn working(&self, what: String) -> Working {
        Working(self.spinner("{spinner} {msg} ({elapsed})", what))
    }

    /// Shows where dispute `dispute` on `claim` stands before `role` moves (claims have `segments` segments; the
    /// game's arity is `k`).
    pub fn round(&self, claim: Id, dispute: u32, d: &Dispute, segments: u64, k: u8) {
        let Some(m) = &self.multi else { return };
        let mut bars = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry((claim, dispute)).or_insert_with(|| {
            let style = ProgressStyle::with_template("{prefix} [{bar:24}] {msg}")
                .expect("a valid template")
                .progress_chars("=> ");
            m.add(ProgressBar::new(1).with_style(style).with_prefix(format!("claim {claim} dispute {dispute}")))
        });
        let (text, round) = describe_phase(d, segments, k);
        // The bar fills with the rounds completed in this phase; a one-move phase shows it full.
        match round {
            Some(r) => {
                bar.set_length(u64::from(r.total.max(1)));
                bar.set_position(u64::from(r.round - 1));
            }
            None => bar.set_position(bar.length().unwrap_or(1)),
        }
        bar.set_message(text);
    }

    /// Removes the bar of a resolved dispute.
    pub fn resolved(&self, claim: Id, dispute: u32) {
        let bar = self.rounds.lock().unwrap_or_else(|p| p.into_inner()).remove(&(claim, dispute));
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    }
}

/// How a command prints: text or JSON lines on stdout, per-event lines unless quiet, bars on a terminal.
#[derive(Clone, Debug)]
pub struct Output {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// No per-event lines (runs, moves) and no bars: only results, warnings and errors.
    pub quiet: bool,
    /// The bars (hidden with `json` or `quiet`, or when stderr is not a terminal).
    pub progress: Arc<Progress>,
}

impl Output {
    /// The output of a process run with `--json` and/or `--quiet`.
    pub fn new(json: bool, quiet: bool) -> Output {
        Output { json, quiet, progress: Progress::stderr(!json && !quiet) }
    }

    /// Prints a result: `text`, or with `--json` the object `json`.
    pub fn result(&self, text: &str, json: serde_json::Value) {
        if self.json {
            println!("{json}");
        } else {
            self.progress.println(text);
        }
    }

    /// Prints a warning on stderr (above the bars): something failed and will be retried.
    pub fn warn(&self, text: &str) {
        match &self.progress.multi {
            Some(m) => m.suspend(|| eprintln!("warning: {text}")),
            None => eprintln!("warning: {text}"),
        }
    }

    /// A log that prints every agent event as a line (text or JSON), unless quiet.
    pub fn log(&self) -> crate::agent::Log {
        let out = self.clone();
        Arc::new(move |e: &crate::agent::Event| {
            if !out.quiet {
                out.result(&e.to_string(), e.to_json());
            }
        })
    }
}

/// A spinner that disappears when dropped (also on an early return with an error).
pub struct Working(ProgressBar);

impl Working {
    /// Records that the run behind this spinner completed its `n`-th segment.
    pub fn segment(&self, n: u64) {
        self.0.set_position(n);
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_count_up_to_the_worst_case() {
        // 62,000 steps at k = 8: 8^5 < 62,000 <= 8^6, so six rounds; the first round is round 1.
        assert_eq!(round_of(0, 62_000, 62_000, 8), Round { round: 1, total: 6 });
        // After one round the interval is at most ceil(62,000 / 8) = 7,750 wide: five rounds left.
        assert_eq!(round_of(7_750, 15_500, 62_000, 8), Round { round: 2, total: 6 });
        // Two indices left: the last round.
        assert_eq!(round_of(100, 102, 62_000, 8), Round { round: 6, total: 6 });
        // 8 segments at k = 8: one round.
        assert_eq!(round_of(0, 8, 8, 8), Round { round: 1, total: 1 });
        // Binary: 1024 -> 10 rounds; after 3 rounds 128 wide, the 4th round.
        assert_eq!(round_of(0, 1024, 1024, 2), Round { round: 1, total: 10 });
        assert_eq!(round_of(256, 384, 1024, 2), Round { round: 4, total: 10 });
    }

    #[test]
    fn hidden_progress_draws_nothing() {
        let p = Progress::hidden();
        assert!(!p.is_visible());
        let bar = p.inference("task 0");
        bar.segment(3);
        assert!(bar.0.is_hidden());
        assert!(p.working("x".into()).0.is_hidden());
    }

    #[test]
    fn the_fast_engine_reports_every_segment() {
        let m = crate::model::find("digits").unwrap();
        let program = opml_vm::guest::GuestProgram::new(m.wasm).unwrap();
        let inputs = std::sync::Arc::new(opml_vm::io::Inputs::new(crate::model::blobs(m, "heldout:0").unwrap()));
        let mut seen = Vec::new();
        let trace = opml_vm::trace::GuestTrace::new_observed(program, inputs, opml_vm::Limits::default(), &mut |n| {
            seen.push(n)
        })
        .unwrap();
        assert!(trace.segments() >= 1);
        assert_eq!(seen, (1..=trace.segments()).collect::<Vec<_>>());
    }
}
