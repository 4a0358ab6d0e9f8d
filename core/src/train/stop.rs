//! Stop rules (`--stop-when`): end a run early when D has won or lost for good (the balance rules of the anime
//! DCGAN thesis and the KTH paper), or when the measured quality has stopped improving.
//!
//! Written `NAME<VALUE@STEPS`, `NAME>VALUE@STEPS` or `kid-plateau@EVALS`:
//! - `d-real` / `d-fake`: D's mean score on real / generated images (`D(x)`, `D(G(z))` in the log) beyond the
//!   value for STEPS consecutive steps, e.g. `d-fake<0.05@300` (D rejects every sample: G has collapsed).
//! - `d-loss` / `g-loss`: the logged losses, likewise.
//! - `kid-plateau@N`: the kernel distance of `--eval-every` has not reached a new best in N evaluations.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A logged number a rule can watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Watched {
    DReal,
    DFake,
    DLoss,
    GLoss,
}

crate::named_values!(Watched { DReal => "d-real", DFake => "d-fake", DLoss => "d-loss", GLoss => "g-loss" });

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StopRule {
    /// `watched` below (`below`) or above `value` for `steps` consecutive steps.
    Threshold { watched: Watched, below: bool, value: f64, steps: u64 },
    /// No new best kernel distance in `evaluations` consecutive evaluations.
    KidPlateau { evaluations: usize },
}

impl std::fmt::Display for StopRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopRule::Threshold { watched, below, value, steps } => write!(f, "{watched}{}{value}@{steps}", if *below { '<' } else { '>' }),
            StopRule::KidPlateau { evaluations } => write!(f, "kid-plateau@{evaluations}"),
        }
    }
}

impl std::str::FromStr for StopRule {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let usage = "a stop rule is NAME<VALUE@STEPS or NAME>VALUE@STEPS (NAME: d-real, d-fake, d-loss, g-loss) or kid-plateau@EVALUATIONS";
        let (head, count) = text.rsplit_once('@').with_context(|| format!("--stop-when `{text}`: no @; {usage}"))?;
        let count: u64 =
            count.trim().parse().ok().filter(|n| *n > 0).with_context(|| format!("--stop-when `{text}`: `{count}` is not a positive count"))?;
        if head.trim() == "kid-plateau" {
            return Ok(StopRule::KidPlateau { evaluations: count as usize });
        }
        let (name, below, value) = match (head.split_once('<'), head.split_once('>')) {
            (Some((n, v)), None) => (n, true, v),
            (None, Some((n, v))) => (n, false, v),
            _ => bail!("--stop-when `{text}`: {usage}"),
        };
        let watched: Watched = name.trim().parse().map_err(|e| anyhow::anyhow!("--stop-when `{text}`: {e}"))?;
        let value: f64 =
            value.trim().parse().ok().filter(|v: &f64| v.is_finite()).with_context(|| format!("--stop-when `{text}`: `{value}` is not a number"))?;
        Ok(StopRule::Threshold { watched, below, value, steps: count })
    }
}

/// The numbers of one step the rules watch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed {
    pub d_real: f64,
    pub d_fake: f64,
    pub d_loss: f64,
    pub g_loss: f64,
}

/// Tracks the rules through a run. Consecutive-step counts start again at a resume; the plateau rule reads the
/// whole evaluation history (which `metrics.csv` keeps across resumes).
pub struct StopRules {
    rules: Vec<StopRule>,
    streaks: Vec<u64>,
}

impl StopRules {
    pub fn new(rules: &[StopRule]) -> Self {
        Self { rules: rules.to_vec(), streaks: vec![0; rules.len()] }
    }

    pub fn needs_evaluations(&self) -> bool {
        self.rules.iter().any(|r| matches!(r, StopRule::KidPlateau { .. }))
    }

    /// After a step: the first rule that fires, with why.
    pub fn after_step(&mut self, seen: Observed) -> Option<String> {
        for (rule, streak) in self.rules.iter().zip(self.streaks.iter_mut()) {
            if let StopRule::Threshold { watched, below, value, steps } = rule {
                let x = match watched {
                    Watched::DReal => seen.d_real,
                    Watched::DFake => seen.d_fake,
                    Watched::DLoss => seen.d_loss,
                    Watched::GLoss => seen.g_loss,
                };
                let holds = if *below { x < *value } else { x > *value };
                *streak = if holds { *streak + 1 } else { 0 };
                if *streak >= *steps {
                    return Some(format!(
                        "{watched} {} {value} for {steps} consecutive steps (last {x:.4}): rule {rule}",
                        if *below { "<" } else { ">" }
                    ));
                }
            }
        }
        None
    }

    /// After an evaluation: `history` is every kernel distance measured so far in the run, oldest first.
    pub fn after_evaluation(&self, history: &[f64]) -> Option<String> {
        for rule in &self.rules {
            if let StopRule::KidPlateau { evaluations } = rule {
                let Some(best_at) = history.iter().enumerate().filter(|(_, v)| v.is_finite()).min_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
                else {
                    continue;
                };
                let since = history.len() - 1 - best_at;
                if since >= *evaluations {
                    return Some(format!(
                        "kernel distance has not improved in {since} evaluations (best {:.4e} at evaluation {} of {}): rule {rule}",
                        history[best_at],
                        best_at + 1,
                        history.len()
                    ));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_round_trip_and_bad_ones_are_named() {
        for text in ["d-fake<0.05@300", "d-real>0.99@50", "g-loss>8@10", "kid-plateau@3"] {
            let rule: StopRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
        for bad in ["d-fake<0.05", "dx<0.1@5", "d-fake<x@5", "d-fake<0.1@0", "kid-plateau@-1", "d-fake=0.1@3"] {
            let err = bad.parse::<StopRule>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn threshold_fires_after_consecutive_steps_only() {
        let mut rules = StopRules::new(&["d-fake<0.1@3".parse().unwrap()]);
        let at = |d_fake| Observed { d_fake, ..Default::default() };
        assert!(rules.after_step(at(0.05)).is_none());
        assert!(rules.after_step(at(0.05)).is_none());
        assert!(rules.after_step(at(0.5)).is_none(), "the streak is broken");
        assert!(rules.after_step(at(0.05)).is_none());
        assert!(rules.after_step(at(0.05)).is_none());
        let why = rules.after_step(at(0.05)).expect("fires on the third step in a row");
        assert!(why.contains("d-fake<0.1@3"), "{why}");
    }

    #[test]
    fn plateau_fires_when_no_new_best_in_n_evaluations() {
        let rules = StopRules::new(&["kid-plateau@2".parse().unwrap()]);
        assert!(rules.needs_evaluations());
        assert!(rules.after_evaluation(&[5.0, 4.0, 3.0]).is_none());
        assert!(rules.after_evaluation(&[5.0, 3.0, 3.5]).is_none());
        assert!(rules.after_evaluation(&[5.0, 3.0, 3.5, 3.2]).is_some());
    }
}
