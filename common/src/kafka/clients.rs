//! Consumer and producer defaults of the runtime's components: the consumer group,
//! bounded queues, exactly-once reading, the instance name behind transactional ids,
//! offsets committed at shutdown and consumer lag from librdkafka's statistics.

use homestream_crds::runtime::ResourceIdentity;
use homestream_crds::topic::{StartFrom, TopicInput};
use prometheus_client::metrics::gauge::Gauge;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

/// Prefetched records per partition are bounded in size so that a slow sink or
/// program holds a few megabytes, not librdkafka's default of 64 MiB per partition.
const CONSUMER_QUEUE_KBYTES: &str = "8192";
/// How long a partition's fetching pauses once that queue is full. librdkafka's default
/// of one second let a consumer drain the queue and then sit idle for most of the
/// second: about 25 000 records per second, whatever the program cost. The queue
/// drains in milliseconds, so fetching resumes after a few.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";
/// A member that died (SIGKILL, a lost node) leaves its group after this long rather
/// than librdkafka's 45 s. Until it has left, a rebalance waits for it and the
/// transform cannot commit offsets, so its open transaction would outlive the
/// transaction timeout (15 s) and the broker would fence it. Heartbeats come from
/// librdkafka's own thread, so a busy program does not make a live member look dead.
const SESSION_TIMEOUT_MS: &str = "10000";
/// The producer queue bound: `send` reports it full and the caller waits, which is
/// the transform's backpressure.
const PRODUCER_QUEUE_KBYTES: &str = "32768";

/// The consumer group: the declared one, else `homestream.<namespace>.<name>`.
pub fn group_id(input: &TopicInput, resource: &ResourceIdentity) -> String {
    input.consumer_group.as_ref().map_or_else(
        || format!("homestream.{}.{}", resource.namespace, resource.name),
        |group| group.as_str().to_owned(),
    )
}

/// Consumer settings: the group, where a new group starts, no automatic offset
/// store (each component stores or commits only what is done), and a bounded queue
/// that is topped up as soon as it has room.
pub fn consumer_config(base: &ClientConfig, group: &str, input: &TopicInput) -> ClientConfig {
    let mut config = base.clone();
    config
        .set("group.id", group)
        .set(
            "auto.offset.reset",
            match input.start_from.unwrap_or_default() {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("enable.auto.offset.store", "false")
        // Read only committed records, so an upstream exactly-once transform's
        // aborted output never flows on.
        .set("isolation.level", "read_committed")
        .set("queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES)
        .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        // Eager rebalancing: every partition is revoked at a rebalance, so the
        // transform aborts its open transaction and restarts from committed offsets.
        .set("partition.assignment.strategy", "range,roundrobin");
    config
}

/// Producer settings: idempotent, `acks=all`, a bounded queue.
pub fn producer_config(base: &ClientConfig) -> ClientConfig {
    let mut config = base.clone();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES);
    config
}

/// Sets `lag` to the consumer lag summed over the partitions this client consumes.
pub fn record_lag(lag: &Gauge, statistics: &Statistics) {
    let total: i64 = statistics
        .topics
        .values()
        .flat_map(|topic| topic.partitions.values())
        .map(|partition| partition.consumer_lag)
        .filter(|lag| *lag >= 0)
        .sum();
    lag.set(total);
}

/// The instance name that makes a transactional id unique per replica and stable
/// across restarts of the same pod: `HOMESTREAM_INSTANCE`, else `POD_NAME`, else
/// `HOSTNAME` (the pod name in Kubernetes).
pub fn instance_name() -> String {
    ["HOMESTREAM_INSTANCE", "POD_NAME", "HOSTNAME"]
        .iter()
        .find_map(|variable| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.is_empty())
        })
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Commits the stored offsets at shutdown. Nothing stored since the last automatic
/// commit is not an error; a failure only means the records are redelivered.
pub fn commit_stored<C: ConsumerContext>(consumer: &impl Consumer<C>) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            tracing::warn!(%error, "Committing offsets at shutdown failed; they will be redelivered.")
        }
    }
}
