//! A process and all its descendants measured from outside through `/proc`, sampled every
//! 100 ms on a thread of this process: their CPU time together (children they reaped
//! included) and each one's peak resident memory. The Spark baseline is such a tree: the
//! Python driver starts the JVM, which starts Python workers for a UDF.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Often enough that interpolating between samples misses little of a window of
/// seconds; each sample reads the `stat` of every process on the machine.
const INTERVAL: Duration = Duration::from_millis(100);
/// `/proc`'s clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
const TICKS: f64 = 100.0;

/// One process of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Peak {
    pub(crate) pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub(crate) name: String,
    pub(crate) peak_rss_mib: f64,
}

/// What the sampling saw, until the tree's root exited or sampling stopped.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// Seconds since the epoch, and the tree's CPU seconds then.
    cpu: Vec<(f64, f64)>,
    peaks: HashMap<u32, Peak>,
}

impl Samples {
    /// The tree's CPU seconds at `at` (seconds since the epoch), interpolated between
    /// the samples around it.
    pub(crate) fn cpu_at(&self, at: f64) -> f64 {
        let after = self.cpu.partition_point(|(time, _)| *time <= at);
        match (
            after.checked_sub(1).map(|i| self.cpu[i]),
            self.cpu.get(after).copied(),
        ) {
            (Some((t0, c0)), Some((t1, c1))) => c0 + (c1 - c0) * (at - t0) / (t1 - t0),
            (Some((_, cpu)), None) | (None, Some((_, cpu))) => cpu,
            (None, None) => 0.0,
        }
    }

    /// Every process seen, with its highest resident memory (VmHWM).
    pub(crate) fn peaks(&self) -> Vec<Peak> {
        let mut peaks: Vec<Peak> = self.peaks.values().cloned().collect();
        peaks.sort_by_key(|peak| peak.pid);
        peaks
    }
}

/// A running sampler.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Samples>,
}

impl Sampler {
    /// Starts sampling `root` and its descendants.
    pub(crate) fn start(root: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Samples::default();
            while !stopped.load(Ordering::Relaxed) && sample(root, &mut samples) {
                std::thread::sleep(INTERVAL);
            }
            samples
        });
        Self { stop, thread }
    }

    /// Stops sampling (if the root still runs) and returns what was seen.
    pub(crate) fn finish(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

pub(crate) fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// A process's `stat` fields after its command name, and the name.
fn stat(pid: u32) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    Some((name, rest.split_whitespace().map(str::to_owned).collect()))
}

fn field(fields: &[String], index: usize) -> f64 {
    fields
        .get(index)
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Adds one sample of the tree under `root`; false once the root is gone.
fn sample(root: u32, samples: &mut Samples) -> bool {
    let at = epoch_seconds(SystemTime::now());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    // Every process's parent, to find the root's descendants.
    let mut processes: HashMap<u32, (u32, String, Vec<String>)> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        if let Some((name, fields)) = stat(pid) {
            // After the name: state, ppid, ... (`man proc`, fields 3 and 4).
            let parent = field(&fields, 1) as u32;
            processes.insert(pid, (parent, name, fields));
        }
    }
    if !processes.contains_key(&root) {
        return false;
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, (parent, ..)) in &processes {
        children.entry(*parent).or_default().push(*pid);
    }
    let (mut cpu, mut todo) = (0.0, vec![root]);
    while let Some(pid) = todo.pop() {
        let Some((_, name, fields)) = processes.get(&pid) else {
            continue;
        };
        // utime, stime, cutime, cstime (fields 14 to 17): its own and its reaped
        // children's, so a worker that exited still counts.
        cpu += (11..15).map(|index| field(fields, index)).sum::<f64>() / TICKS;
        if let Some(peak_rss_mib) = peak_rss_mib(pid) {
            let peak = samples.peaks.entry(pid).or_insert_with(|| Peak {
                pid,
                name: name.clone(),
                peak_rss_mib,
            });
            peak.peak_rss_mib = peak.peak_rss_mib.max(peak_rss_mib);
            peak.name.clone_from(name);
        }
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    samples.cpu.push((at, cpu));
    true
}
