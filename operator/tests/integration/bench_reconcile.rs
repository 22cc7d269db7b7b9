//! Benchmark (ignored by `cargo test`; run with `make bench-operator`): 200
//! StreamTransforms applied at once to one operator; prints the time until every one
//! has converged (topics created, program compiled, Deployment applied, status written
//! for its generation), the reconciles per second, and the operator's peak RSS.
//!
//! Without a node that runs pods, `WorkloadReady` stays False (no pod becomes ready), so
//! "converged" is every condition but `WorkloadReady` True.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{Operator, apply, condition};
use anyhow::Result;
use futures::{StreamExt, TryStreamExt};
use homestream_crds::StreamTransform;
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use kube::Api;
use kube::api::ListParams;
use serde_json::json;

const RESOURCES: usize = 200;

fn converged(transform: &StreamTransform) -> bool {
    let current = transform
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        == transform.metadata.generation;
    let holds = |type_: &str| condition(transform, type_).is_some_and(|c| c.status == "True");
    current
        && ["ProgramValid", "InputTopicReady", "TopicReady"]
            .iter()
            .all(|t| holds(t))
}

#[tokio::test]
#[ignore = "benchmark: run with make bench-operator"]
async fn reconcile_200_stream_transforms() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let input = random_name("bench-in");
        kafka::create_topic(&env, &input, 4).await?;
        // The default resync (30 s), so reconciles count what the changes cause.
        let operator = Operator::start_with(&env, &ns, &["--resync-seconds", "30"], "bench", None)?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let started = Instant::now();
        let manifests: Vec<StreamTransform> = (0..RESOURCES)
            .map(|i| {
                serde_json::from_value(json!({
                    "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
                    "metadata": { "name": format!("t{i:03}") },
                    "spec": {
                        "input": { "topic": input },
                        "output": { "topic": { "name": format!("{ns}.out.{i:03}"), "partitions": 1 } },
                        "program": ".n = 1\n",
                        "deletionPolicy": "Delete"
                    }
                }))
            })
            .collect::<Result<_, _>>()?;
        // Applied 16 at a time, as `kubectl apply -f dir/` of a GitOps sync would.
        futures::stream::iter(manifests.iter().map(|t| apply(&transforms, t)))
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        let applied = started.elapsed();
        wait::until("all resources to converge", Duration::from_secs(600), || async {
            let list = transforms.list(&ListParams::default()).await?;
            let done = list.items.iter().filter(|t| converged(t)).count();
            Ok(if done == RESOURCES { Ok(()) } else { Err(format!("{done} of {RESOURCES}")) })
        })
        .await?;
        let elapsed = started.elapsed();
        let metrics = support::metrics(&operator).await?;
        let reconciles: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("homestream_reconciles_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let peak = operator.peak_rss_kib().unwrap_or_default();
        println!("| resources | applied in | all converged after | reconciles | reconciles/s | operator peak RSS |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {RESOURCES} StreamTransforms | {:.1} s | {:.1} s | {reconciles} | {:.1} | {:.1} MiB |",
            applied.as_secs_f64(),
            elapsed.as_secs_f64(),
            reconciles / elapsed.as_secs_f64(),
            peak as f64 / 1024.0
        );
        // Deletion with deletionPolicy Delete removes the 200 output topics.
        transforms.delete_collection(&Default::default(), &ListParams::default()).await?;
        wait::until("all resources to be deleted", Duration::from_secs(600), || async {
            let left = transforms.list(&ListParams::default()).await?.items.len();
            Ok(if left == 0 { Ok(()) } else { Err(format!("{left} left")) })
        })
        .await?;
        Ok(())
    })
    .await
}
