//! Outages: with resources in place, Kafka (then Cassandra) is stopped; the resources
//! turn Degraded with the reason, and Ready conditions come back after the server
//! returns, without restarting the operator. One test in a binary of its own, so the
//! outages never overlap another test.

#[allow(
    dead_code,
    reason = "shared with the integration binary, each using a part"
)]
#[path = "integration/support/mod.rs"]
mod support;

use anyhow::Result;
use homestream_crds::CassandraSink;
use homestream_tests::stack::{self, Service};
use homestream_tests::{StackEnv, kafka, kubernetes, random_name};
use kube::Api;
use serde_json::json;
use support::{Operator, apply, wait_condition};

#[tokio::test]
async fn kafka_and_cassandra_outages_are_reported_and_recovered_from() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let keyspace = random_name("outage").replace('-', "_");
    let outcome = kubernetes::with_temp_ns(&client.clone(), |ns| {
        let (env, client, keyspace) = (env.clone(), client.clone(), keyspace.clone());
        async move {
            let _operator = Operator::start(&env, &ns)?;
            let input = random_name("outage-in");
            kafka::create_topic(&env, &input, 1).await?;
            let sinks: Api<CassandraSink> = Api::namespaced(client.clone(), &ns);
            let sink: CassandraSink = serde_json::from_value(json!({
                "apiVersion": "homestream.io/v1alpha1", "kind": "CassandraSink",
                "metadata": { "name": "rows" },
                "spec": {
                    "input": { "topic": input },
                    "keyspace": { "name": keyspace, "replication": { "simpleStrategy": { "replicationFactor": 1 } } },
                    "table": { "name": "t", "columns": [ { "name": "id", "type": "text" } ], "partitionKey": ["id"] }
                }
            }))?;
            apply(&sinks, &sink).await?;
            wait_condition(&sinks, "rows", "InputTopicReady", "True", "Exists").await?;
            wait_condition(&sinks, "rows", "SchemaReady", "True", "SchemaReady").await?;

            stack::stop(Service::Kafka)?;
            let degraded = wait_condition(&sinks, "rows", "InputTopicReady", "False", "KafkaUnavailable").await;
            let seen = wait_condition(&sinks, "rows", "Degraded", "True", "KafkaUnavailable").await;
            stack::start(Service::Kafka)?;
            degraded?;
            seen?;
            wait_condition(&sinks, "rows", "InputTopicReady", "True", "Exists").await?;

            stack::stop(Service::Cassandra)?;
            let degraded = wait_condition(&sinks, "rows", "SchemaReady", "False", "CassandraUnavailable").await;
            stack::start(Service::Cassandra)?;
            let down = degraded?;
            assert!(down.message.contains("unreachable"), "{}", down.message);
            wait_condition(&sinks, "rows", "SchemaReady", "True", "SchemaReady").await?;
            Ok(())
        }
    })
    .await;
    // Whatever happened, leave both servers running for the tests after this one.
    stack::start(Service::Kafka)?;
    stack::start(Service::Cassandra)?;
    outcome
}
