//! The rules that give each test of a run its state from its previous runs: new failure,
//! failing, fixed, flaky, slower. Pure functions over a test's rolling state, so each rule is
//! tested on its own and documented in `docs/history.md`.

use std::time::Duration;

use crate::config::HistoryConfig;
use crate::model::Outcome;

/// A test's state after a run. One per test and run; `Slower` only for a test that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Passed,
    Skipped,
    /// Fails now, passed in its previous run.
    NewFailure,
    /// Fails now and failed in its previous run (or has no previous run).
    Failing,
    /// Passes now, failed in its previous run.
    Fixed,
    /// Passed on a retry in this run, or flipped between passing and failing often in its
    /// last runs.
    Flaky,
    /// Passes, but its median duration grew past the configured share and minimum.
    Slower,
    /// Marked with `testmeter quarantine add`: recorded, but apart from the others.
    Quarantined,
}

impl State {
    pub const ALL: [State; 8] = [
        State::Passed,
        State::Skipped,
        State::NewFailure,
        State::Failing,
        State::Fixed,
        State::Flaky,
        State::Slower,
        State::Quarantined,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Passed => "passed",
            State::Skipped => "skipped",
            State::NewFailure => "new_failure",
            State::Failing => "failing",
            State::Fixed => "fixed",
            State::Flaky => "flaky",
            State::Slower => "slower",
            State::Quarantined => "quarantined",
        }
    }

    pub fn code(self) -> i64 {
        match self {
            State::Passed => 0,
            State::Skipped => 1,
            State::NewFailure => 2,
            State::Failing => 3,
            State::Fixed => 4,
            State::Flaky => 5,
            State::Slower => 6,
            State::Quarantined => 7,
        }
    }

    pub fn from_code(code: i64) -> Option<State> {
        State::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// The rule settings, from `[history]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Runs looked at for flips (W).
    pub flaky_window: usize,
    /// Flips between passing and failing within the window that make a test flaky (K).
    pub flaky_flips: usize,
    /// Runs a test needs before a flip count or a duration trend gives a verdict.
    pub min_runs: usize,
    /// Runs in each of the two duration windows compared.
    pub slower_window: usize,
    /// Growth of the median duration, as a share of the window before, that makes it slower.
    pub slower_share: f64,
    /// And the least growth, so a 2 ms test taking 3 ms is not news.
    pub slower_min: Duration,
}

impl From<&HistoryConfig> for Rules {
    fn from(config: &HistoryConfig) -> Self {
        Rules {
            flaky_window: config.flaky_window,
            flaky_flips: config.flaky_flips,
            min_runs: config.min_runs,
            slower_window: config.slower_window,
            slower_share: config.slower_share,
            slower_min: config.slower_min,
        }
    }
}

/// What is kept of a test between runs: enough to apply every rule without reading its past
/// results again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// Runs recorded with this test.
    pub runs: u64,
    /// Its outcome in its previous run; `None` before its first.
    pub last: Option<Outcome>,
    /// Consecutive runs it failed, up to and including its previous run.
    pub fail_streak: u64,
    /// Its last outcomes, oldest first, at most `flaky_window`; skips are not kept.
    pub recent: Vec<Outcome>,
    /// Its last durations in seconds, oldest first, at most twice `slower_window`.
    pub durations: Vec<f32>,
}

/// A test's verdict on one run, and its track for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub state: State,
    /// Consecutive failed runs including this one (0 when it did not fail).
    pub fail_streak: u64,
    /// Flips between passing and failing in its recent runs, this one included.
    pub flips: usize,
    pub track: Track,
}

/// Applies the rules to a test's result in a run, given its track so far (which becomes its
/// track for the next run). `quarantined` tests
/// keep their track (so their state is right when the quarantine ends) but are given
/// [`State::Quarantined`] when they fail.
pub fn classify(
    rules: &Rules,
    mut track: Track,
    outcome: Outcome,
    flaky_now: bool,
    duration: Option<Duration>,
    quarantined: bool,
) -> Verdict {
    let previous = track.last;
    track.runs += 1;
    let failed = outcome.is_failure();
    let fail_streak = if failed { track.fail_streak + 1 } else { 0 };
    track.fail_streak = fail_streak;
    if outcome != Outcome::Skipped {
        track.last = Some(outcome);
        track.recent.push(outcome);
        let excess = track.recent.len().saturating_sub(rules.flaky_window.max(1));
        track.recent.drain(..excess);
    }
    if let (Some(duration), Outcome::Passed) = (duration, outcome) {
        track.durations.push(duration.as_secs_f32());
        let excess = track
            .durations
            .len()
            .saturating_sub(2 * rules.slower_window.max(1));
        track.durations.drain(..excess);
    }
    let flips = flips(&track.recent);
    let enough = track.runs >= rules.min_runs as u64;
    let flipping = enough && rules.flaky_flips > 0 && flips >= rules.flaky_flips;
    let state = match outcome {
        _ if quarantined && failed => State::Quarantined,
        Outcome::Skipped => State::Skipped,
        _ if flaky_now || flipping => State::Flaky,
        _ if failed && previous == Some(Outcome::Passed) => State::NewFailure,
        _ if failed => State::Failing,
        _ if previous.is_some_and(Outcome::is_failure) => State::Fixed,
        _ if enough && slower(rules, &track.durations) => State::Slower,
        _ => State::Passed,
    };
    Verdict {
        state,
        fail_streak,
        flips,
        track,
    }
}

/// Changes between passing and failing along `recent`.
fn flips(recent: &[Outcome]) -> usize {
    recent
        .windows(2)
        .filter(|pair| pair[0].is_failure() != pair[1].is_failure())
        .count()
}

/// The median of the newer `slower_window` durations against the median of the older ones.
fn slower(rules: &Rules, durations: &[f32]) -> bool {
    let window = rules.slower_window.max(1);
    if durations.len() < 2 * window {
        return false;
    }
    let (older, newer) = durations.split_at(durations.len() - window);
    let older = &older[older.len() - window..];
    let (before, now) = (f64::from(median(older)), f64::from(median(newer)));
    now - before >= rules.slower_min.as_secs_f64() && now >= before * (1.0 + rules.slower_share)
}

fn median(values: &[f32]) -> f32 {
    // Called for most tests of every run: no allocation for the windows people use.
    let mut stack = [0f32; 32];
    let mut heap = Vec::new();
    let sorted = if values.len() <= stack.len() {
        stack[..values.len()].copy_from_slice(values);
        &mut stack[..values.len()]
    } else {
        heap.extend_from_slice(values);
        &mut heap[..]
    };
    sorted.sort_unstable_by(f32::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        flaky_window: 10,
        flaky_flips: 3,
        min_runs: 4,
        slower_window: 3,
        slower_share: 0.2,
        slower_min: Duration::from_millis(100),
    };

    /// Runs `outcomes` through the rules; the states given, in order.
    fn states(outcomes: &[(Outcome, f32)]) -> Vec<State> {
        let mut track = Track::default();
        let mut states = Vec::new();
        for &(outcome, seconds) in outcomes {
            let verdict = classify(
                &RULES,
                track,
                outcome,
                false,
                Some(Duration::from_secs_f32(seconds)),
                false,
            );
            states.push(verdict.state);
            track = verdict.track;
        }
        states
    }

    use Outcome::{Failed as F, Passed as P, Skipped as S};

    #[test]
    fn a_failure_after_a_pass_is_new_then_failing_then_fixed() {
        assert_eq!(
            states(&[(P, 1.0), (F, 1.0), (F, 1.0), (P, 1.0), (P, 1.0)]),
            [
                State::Passed,
                State::NewFailure,
                State::Failing,
                State::Fixed,
                State::Passed
            ]
        );
    }

    #[test]
    fn a_test_failing_from_its_first_run_is_failing_not_new() {
        assert_eq!(states(&[(F, 1.0)]), [State::Failing]);
    }

    #[test]
    fn a_skip_keeps_the_previous_outcome() {
        assert_eq!(
            states(&[(P, 1.0), (S, 0.0), (F, 1.0)]),
            [State::Passed, State::Skipped, State::NewFailure]
        );
    }

    #[test]
    fn flips_make_a_test_flaky_once_it_has_enough_runs() {
        // Flips: P→F, F→P, P→F: three by the fourth run, which is also min_runs.
        assert_eq!(
            states(&[(P, 1.0), (F, 1.0), (P, 1.0), (F, 1.0), (P, 1.0)]),
            [
                State::Passed,
                State::NewFailure,
                State::Fixed,
                State::Flaky,
                State::Flaky
            ]
        );
    }

    #[test]
    fn a_pass_on_retry_is_flaky_at_once() {
        let verdict = classify(&RULES, Track::default(), P, true, None, false);
        assert_eq!(verdict.state, State::Flaky);
    }

    #[test]
    fn slower_needs_both_the_share_and_the_minimum() {
        // 1 s → 1.5 s: +50% and +500 ms.
        let slow = [(P, 1.0), (P, 1.0), (P, 1.0), (P, 1.5), (P, 1.5), (P, 1.5)];
        assert_eq!(states(&slow).last(), Some(&State::Slower));
        // 10 ms → 50 ms: +400% but only +40 ms.
        let tiny = [
            (P, 0.01),
            (P, 0.01),
            (P, 0.01),
            (P, 0.05),
            (P, 0.05),
            (P, 0.05),
        ];
        assert_eq!(states(&tiny).last(), Some(&State::Passed));
        // 10 s → 11 s: +1 s but only +10%.
        let steady = [
            (P, 10.0),
            (P, 10.0),
            (P, 10.0),
            (P, 11.0),
            (P, 11.0),
            (P, 11.0),
        ];
        assert_eq!(states(&steady).last(), Some(&State::Passed));
    }

    #[test]
    fn a_quarantined_failure_is_apart_and_the_track_goes_on() {
        let mut track = Track::default();
        track = classify(&RULES, track, P, false, None, false).track;
        let verdict = classify(&RULES, track, F, false, None, true);
        assert_eq!(verdict.state, State::Quarantined);
        assert_eq!(verdict.fail_streak, 1);
        let after = classify(&RULES, verdict.track, F, false, None, false);
        assert_eq!(after.state, State::Failing);
        assert_eq!(after.fail_streak, 2);
    }

    #[test]
    fn states_round_trip_through_their_codes() {
        for state in State::ALL {
            assert_eq!(State::from_code(state.code()), Some(state));
        }
    }
}
