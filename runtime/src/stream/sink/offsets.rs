//! Which offsets the sink may commit: per partition, the records in flight in offset
//! order; everything below the lowest one still in flight is done (written or
//! dead-lettered), so that is the offset to commit.
//!
//! Records of a partition arrive in offset order, so a record starts at the back of
//! its partition's window and the done prefix leaves from the front: no allocation
//! per record. A redelivery after a rebalance may start lower; it is inserted in
//! order.

use std::collections::{BTreeMap, VecDeque};

use rdkafka::{Offset, TopicPartitionList};

/// The records in flight of each partition, and the offsets to store next.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: BTreeMap<i32, Window>,
}

/// One partition's records in flight, in offset order, each with whether it is done.
#[derive(Debug, Default)]
struct Window {
    in_flight: VecDeque<(i64, bool)>,
    /// The offset to store, when it moved since the last [`OffsetTracker::take`].
    to_store: Option<i64>,
}

impl OffsetTracker {
    /// A record of `partition` at `offset` is in flight.
    pub fn start(&mut self, partition: i32, offset: i64) {
        let in_flight = &mut self.partitions.entry(partition).or_default().in_flight;
        if in_flight.back().is_none_or(|(last, _)| *last < offset) {
            in_flight.push_back((offset, false));
        } else {
            let at = in_flight.partition_point(|(other, _)| *other < offset);
            in_flight.insert(at, (offset, false));
        }
    }

    /// The record of `partition` at `offset` is done.
    pub fn finish(&mut self, partition: i32, offset: i64) {
        let Some(window) = self.partitions.get_mut(&partition) else {
            return;
        };
        let from = window
            .in_flight
            .partition_point(|(other, _)| *other < offset);
        if let Some((_, done)) = window
            .in_flight
            .range_mut(from..)
            .take_while(|(other, _)| *other == offset)
            .find(|(_, done)| !*done)
        {
            *done = true;
        }
        while let Some(&(done_offset, true)) = window.in_flight.front() {
            window.in_flight.pop_front();
            window.to_store = Some(
                window
                    .in_flight
                    .front()
                    .map_or(done_offset + 1, |(next, _)| *next),
            );
        }
    }

    /// The offsets to store for `topic` (the next record to read per partition)
    /// that moved since the last call, if any did.
    pub fn take(&mut self, topic: &str) -> Option<TopicPartitionList> {
        let mut offsets = TopicPartitionList::new();
        for (partition, window) in &mut self.partitions {
            if let Some(next) = window.to_store.take() {
                // Cannot fail: the offset is a plain number.
                let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(next));
            }
        }
        (offsets.count() > 0).then_some(offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(tracker: &mut OffsetTracker) -> Vec<(i32, i64)> {
        tracker.take("t").map_or_else(Vec::new, |offsets| {
            offsets
                .elements()
                .iter()
                .map(|element| (element.partition(), element.offset().to_raw().unwrap()))
                .collect()
        })
    }

    #[test]
    fn stores_only_below_the_lowest_in_flight() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..14 {
            tracker.start(0, offset);
        }
        tracker.start(1, 5);
        tracker.finish(0, 11);
        tracker.finish(0, 12);
        assert_eq!(stored(&mut tracker), vec![]);
        tracker.finish(0, 10);
        tracker.finish(1, 5);
        assert_eq!(stored(&mut tracker), vec![(0, 13), (1, 6)]);
        assert_eq!(stored(&mut tracker), vec![]);
        tracker.finish(0, 13);
        assert_eq!(stored(&mut tracker), vec![(0, 14)]);
    }

    #[test]
    fn a_redelivery_from_lower_offsets_holds_the_commit_back() {
        let mut tracker = OffsetTracker::default();
        tracker.start(0, 20);
        tracker.start(0, 21);
        // After a rebalance the partition is read again from its committed offset.
        tracker.start(0, 15);
        tracker.start(0, 20);
        tracker.finish(0, 20);
        tracker.finish(0, 21);
        assert_eq!(stored(&mut tracker), vec![]);
        tracker.finish(0, 15);
        assert_eq!(stored(&mut tracker), vec![(0, 20)]);
        tracker.finish(0, 20);
        assert_eq!(stored(&mut tracker), vec![(0, 22)]);
    }

    #[test]
    fn an_unknown_record_changes_nothing() {
        let mut tracker = OffsetTracker::default();
        tracker.finish(3, 1);
        tracker.start(0, 1);
        tracker.finish(0, 2);
        assert_eq!(stored(&mut tracker), vec![]);
    }
}
