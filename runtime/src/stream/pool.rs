//! Runs a [`Program`] over a chunk of records on several threads at once.
//!
//! The program is the transform's CPU work, so a chunk is cut into contiguous parts,
//! one per thread, each run by that thread's own [`Runner`] (a SQL program runs its part
//! as one batch); the outcomes come back in input order. The caller then produces them in that order, so the order within
//! each partition, and the offsets a transaction commits, are those of a single
//! thread.

use std::num::NonZeroUsize;

use homestream_common::program::{Input, Outcome, Program, Runner};

/// Fewer records than this per thread are not worth a thread: below it the chunk
/// runs on the calling thread alone (a thread costs tens of microseconds to start, a
/// record a few).
const MIN_RECORDS_PER_THREAD: usize = 32;

/// A runner per thread.
pub struct Pool<'p> {
    runners: Vec<Runner<'p>>,
}

impl<'p> Pool<'p> {
    /// A pool of `threads` runners of `program`; the calling thread is one of them.
    pub fn new(program: &'p Program, threads: NonZeroUsize) -> Self {
        Self {
            runners: (0..threads.get()).map(|_| program.runner()).collect(),
        }
    }

    /// The threads the transform should use: as many as the CPUs it may use (which
    /// the standard library reads from the container's CPU quota).
    pub fn default_threads() -> NonZeroUsize {
        std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
    }

    /// The outcome of each input, in input order.
    pub fn run(&mut self, inputs: &[Input<'_>]) -> Vec<Outcome> {
        let threads = inputs
            .len()
            .div_ceil(MIN_RECORDS_PER_THREAD)
            .clamp(1, self.runners.len());
        if threads == 1 {
            return self.runners[0].run(inputs);
        }
        let part = inputs.len().div_ceil(threads);
        let mut parts = inputs.chunks(part).zip(self.runners.iter_mut());
        let Some((first, own_runner)) = parts.next() else {
            return Vec::new();
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = parts
                .map(|(part, runner)| scope.spawn(move || runner.run(part)))
                .collect();
            let mut outcomes = Vec::with_capacity(inputs.len());
            outcomes.extend(own_runner.run(first));
            for other in others {
                match other.join() {
                    Ok(part) => outcomes.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            outcomes
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use homestream_common::program::Origin;
    use homestream_crds::streamtransform::TransformProgram;

    #[test]
    fn outcomes_come_back_in_input_order() {
        let program = Program::compile(&TransformProgram::Vrl(".n = %offset".to_owned())).unwrap();
        let mut pool = Pool::new(&program, NonZeroUsize::new(3).unwrap());
        for count in [0, 1, 31, 100, 1000] {
            let inputs: Vec<Input<'_>> = (0..count)
                .map(|offset| {
                    let origin = Origin {
                        key: None,
                        topic: "in",
                        partition: 0,
                        offset,
                        timestamp: None,
                    };
                    (&b"{}"[..], origin)
                })
                .collect();
            let offsets: Vec<i64> = pool
                .run(&inputs)
                .into_iter()
                .map(|outcome| match outcome {
                    Outcome::Records(records) => {
                        let value: serde_json::Value =
                            serde_json::from_slice(&records[0].value).unwrap();
                        value["n"].as_i64().unwrap()
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(offsets, (0..count).collect::<Vec<_>>());
        }
    }
}
