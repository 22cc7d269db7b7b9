//! The side-by-side table: every row's medians over the rounds, what the rows are made of
//! (each process's memory, the programs' cost alone), the ratios of homestream to Spark
//! and to its own parts, and the notes of the run (the output check). Figures are
//! reported against the targets, never asserted.

use crate::program::ProgramCost;
use crate::{Measured, PARTITIONS};

/// A row's measurement in each round, or why it could not be made.
struct Row {
    name: &'static str,
    /// The row the "vs ref" column compares it with, per core.
    reference: Option<&'static str>,
    runs: Vec<Result<Measured, String>>,
}

/// A homestream row against a Spark row.
struct Comparison {
    homestream: &'static str,
    spark: &'static str,
    /// The targets: at least this many times Spark's records per core, with at
    /// most this fraction of its memory.
    target: Option<(f64, f64)>,
}

/// A component's CPU per record against its parts': the program alone plus a bare loop.
struct Sum {
    component: &'static str,
    program: &'static str,
    bare: &'static str,
    /// The target: at most this much above the parts, in percent.
    target: Option<f64>,
}

#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
    programs: Vec<(&'static str, Vec<ProgramCost>)>,
    comparisons: Vec<Comparison>,
    sums: Vec<Sum>,
    notes: Vec<String>,
}

impl Table {
    pub(crate) fn record(
        &mut self,
        name: &'static str,
        measured: Measured,
        reference: Option<&'static str>,
    ) {
        self.row(name, reference).runs.push(Ok(measured));
    }

    /// A row that could not be measured this round, and why: printed in its place.
    pub(crate) fn fail(&mut self, name: &'static str, reason: String) {
        eprintln!("  {name}: not measured: {reason}");
        self.row(name, None).runs.push(Err(reason));
    }

    fn row(&mut self, name: &'static str, reference: Option<&'static str>) -> &mut Row {
        let index = match self.rows.iter().position(|row| row.name == name) {
            Some(index) => index,
            None => {
                self.rows.push(Row {
                    name,
                    reference,
                    runs: Vec::new(),
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[index]
    }

    pub(crate) fn record_program(&mut self, name: &'static str, cost: ProgramCost) {
        match self.programs.iter_mut().find(|(row, _)| *row == name) {
            Some((_, costs)) => costs.push(cost),
            None => self.programs.push((name, vec![cost])),
        }
    }

    /// Prints `homestream` against `spark`, with the issue's `target` when it sets one.
    pub(crate) fn compare(
        &mut self,
        homestream: &'static str,
        spark: &'static str,
        target: Option<(f64, f64)>,
    ) {
        self.comparisons.push(Comparison {
            homestream,
            spark,
            target,
        });
    }

    /// Prints `component`'s CPU per record against `program`'s alone plus `bare`'s.
    pub(crate) fn sum(
        &mut self,
        component: &'static str,
        program: &'static str,
        bare: &'static str,
        target: Option<f64>,
    ) {
        self.sums.push(Sum {
            component,
            program,
            bare,
            target,
        });
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// A note that every round would make alike.
    pub(crate) fn note_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// The row's successful runs, one per round that measured it.
    fn runs(&self, name: &str) -> Vec<&Measured> {
        self.rows
            .iter()
            .find(|row| row.name == name)
            .map(|row| {
                row.runs
                    .iter()
                    .filter_map(|run| run.as_ref().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Per round in which both rows were measured, `value` of the pair.
    fn paired(&self, a: &str, b: &str, value: impl Fn(&Measured, &Measured) -> f64) -> Vec<f64> {
        let find = |name: &str| self.rows.iter().find(|row| row.name == name);
        let (Some(a), Some(b)) = (find(a), find(b)) else {
            return Vec::new();
        };
        a.runs
            .iter()
            .zip(&b.runs)
            .filter_map(|pair| match pair {
                (Ok(a), Ok(b)) => Some(value(a, b)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn print(&self, records: usize, rounds: usize) {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        println!(
            "\n{records} records, {PARTITIONS} partitions, {cores} cores (shared), median of {rounds} round(s); latency: receipt to commit/acknowledgement; start: process start to first output seen downstream"
        );
        println!(
            "{:<40} {:>10} {:>14} {:>8} {:>8} {:>9} {:>7} {:>16}",
            "",
            "records/s",
            "records/s/core",
            "p50 ms",
            "p99 ms",
            "peak MiB",
            "start s",
            "vs ref (range)"
        );
        for row in &self.rows {
            self.print_row(row);
        }
        self.print_processes();
        self.print_programs();
        self.print_comparisons();
        self.print_sums();
        for note in &self.notes {
            println!("{note}");
        }
    }

    fn print_row(&self, row: &Row) {
        let runs: Vec<&Measured> = row
            .runs
            .iter()
            .filter_map(|run| run.as_ref().ok())
            .collect();
        let failures: Vec<&String> = row
            .runs
            .iter()
            .filter_map(|run| run.as_ref().err())
            .collect();
        if runs.is_empty() {
            let reason = failures.last().map_or("", |reason| reason.as_str());
            println!("{:<40} not measured: {}", row.name, first_line(reason));
            return;
        }
        let column = |value: fn(&Measured) -> Option<f64>| {
            let values: Vec<f64> = runs.iter().filter_map(|run| value(run)).collect();
            if values.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.1}", median(values))
            }
        };
        // Each round's ratio to the reference measured in that round, next to it in
        // time, so that a machine busier in one round than another cancels out.
        let ratio = row.reference.map_or_else(String::new, |reference| {
            let ratios = self.paired(row.name, reference, |run, bare| {
                100.0 * per_core(run) / per_core(bare)
            });
            spread(&ratios, "%", 0)
        });
        println!(
            "{:<40} {:>10.0} {:>14.0} {:>8} {:>8} {:>9.1} {:>7} {:>16}{}",
            row.name,
            median(
                runs.iter()
                    .map(|m| m.records as f64 / m.wall_seconds)
                    .collect()
            ),
            median(runs.iter().map(|m| per_core(m)).collect()),
            column(|m| m.p50_ms),
            column(|m| m.p99_ms),
            median(runs.iter().map(|m| m.peak_rss_mib).collect()),
            column(|m| m.startup_seconds),
            ratio,
            if failures.is_empty() {
                String::new()
            } else {
                format!("  (not measured in {} round(s))", failures.len())
            }
        );
    }

    /// Rows of several processes: each one's peak memory, in the last round.
    fn print_processes(&self) {
        let mut heading = false;
        for row in &self.rows {
            let Some(Ok(last)) = row.runs.iter().rev().find(|run| run.is_ok()) else {
                continue;
            };
            if last.processes.is_empty() {
                continue;
            }
            if !heading {
                println!("\npeak MiB by process (last round):");
                heading = true;
            }
            let parts: Vec<String> = last
                .processes
                .iter()
                .map(|(name, mib)| format!("{name} {mib:.0}"))
                .collect();
            println!("  {:<38} {}", row.name, parts.join(" + "));
        }
    }

    fn print_programs(&self) {
        if self.programs.is_empty() {
            return;
        }
        println!("\nthe cleaning program alone, in process, no Kafka (CPU per record, median):");
        for (name, costs) in &self.programs {
            let micros = median(costs.iter().map(ProgramCost::micros_per_record).collect());
            println!(
                "  {name:<38} {micros:>6.2} us = {:>8.0} records/s/core",
                1e6 / micros
            );
        }
    }

    fn print_comparisons(&self) {
        if self.comparisons.is_empty() {
            return;
        }
        println!(
            "\n{:<58} {:>16} {:>16} {:>16} {:>16}",
            "homestream / Spark (median, range over rounds)",
            "per core",
            "records/s",
            "Spark MiB / hs",
            "Spark start / hs"
        );
        for comparison in &self.comparisons {
            let (homestream, spark) = (comparison.homestream, comparison.spark);
            let name = format!("{homestream} / {spark}");
            let per_core = self.paired(homestream, spark, |h, s| per_core(h) / per_core(s));
            if per_core.is_empty() {
                println!("{name:<58} not measured");
                continue;
            }
            let rate = self.paired(homestream, spark, |h, s| {
                (h.records as f64 / h.wall_seconds) / (s.records as f64 / s.wall_seconds)
            });
            let memory = self.paired(homestream, spark, |h, s| s.peak_rss_mib / h.peak_rss_mib);
            let startup = self.paired(homestream, spark, |h, s| {
                s.startup_seconds.unwrap_or(f64::NAN) / h.startup_seconds.unwrap_or(f64::NAN)
            });
            println!(
                "{name:<58} {:>16} {:>16} {:>16} {:>16}",
                spread(&per_core, "x", 1),
                spread(&rate, "x", 1),
                spread(&memory, "x", 1),
                spread(&startup, "x", 1),
            );
            if let Some((per_core_target, memory_target)) = comparison.target {
                println!(
                    "  target: per core >= {per_core_target}x ({}), memory <= 1/{memory_target} of Spark's ({})",
                    met(median(per_core) >= per_core_target),
                    met(median(memory) >= memory_target)
                );
            }
        }
    }

    fn print_sums(&self) {
        for sum in &self.sums {
            let program = self
                .programs
                .iter()
                .find(|(name, _)| *name == sum.program)
                .map(|(_, costs)| {
                    median(costs.iter().map(ProgramCost::micros_per_record).collect())
                });
            let component = self.runs(sum.component);
            let bare = self.runs(sum.bare);
            let (Some(program), false, false) = (program, component.is_empty(), bare.is_empty())
            else {
                continue;
            };
            let micros = |runs: &[&Measured]| {
                median(
                    runs.iter()
                        .map(|m| m.cpu_seconds * 1e6 / m.records as f64)
                        .collect(),
                )
            };
            let (component, bare) = (micros(&component), micros(&bare));
            let over = 100.0 * (component / (program + bare) - 1.0);
            println!(
                "\n{}: {component:.2} us CPU per record; its program alone {program:.2} + {} {bare:.2} = {:.2} us: {over:+.0}%{}",
                sum.component,
                sum.bare,
                program + bare,
                sum.target.map_or_else(String::new, |target| format!(
                    " (target <= +{target}%: {})",
                    met(over <= target)
                ))
            );
        }
    }
}

fn met(reached: bool) -> &'static str {
    if reached { "met" } else { "NOT met" }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The median of `values` with `unit`, and their range when there are several.
fn spread(values: &[f64], unit: &str, decimals: usize) -> String {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return "-".to_owned();
    }
    let (low, high) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(low, high), value| {
            (low.min(*value), high.max(*value))
        });
    let middle = median(values.clone());
    if values.len() == 1 {
        format!("{middle:.decimals$}{unit}")
    } else {
        format!("{middle:.decimals$}{unit} ({low:.decimals$}-{high:.decimals$})")
    }
}

pub(crate) fn per_core(measured: &Measured) -> f64 {
    measured.records as f64 / measured.cpu_seconds
}

pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}
