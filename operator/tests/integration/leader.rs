//! Leader election: two operator replicas, one active. Killing the leader (SIGKILL, so
//! it cannot release the lease) hands over to the other, which then does the work.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::{Operator, apply};
use anyhow::{Context, Result};
use homestream_crds::StreamTransform;
use homestream_tests::{StackEnv, kafka, kubernetes, random_name, wait};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

fn transform(name: &str, input: &str) -> Result<StreamTransform> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
        "metadata": { "name": name },
        "spec": {
            "input": { "topic": input },
            "output": { "topic": { "name": random_name("leader-out") } },
            "program": ".seen = true\n"
        }
    }))?)
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    Ok(leases
        .get_opt("homestream-operator")
        .await?
        .and_then(|l| l.spec?.holder_identity))
}

#[tokio::test]
async fn one_replica_acts_and_the_other_takes_over_when_it_dies() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let args = [
            "--leader-election",
            "--leader-election-namespace",
            ns.as_str(),
        ];
        let mut first = Operator::start_with(&env, &ns, &args, "replica-a", None)?;
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        wait::until("replica-a to lead", support::CONVERGE, || async {
            Ok(holder(&leases)
                .await?
                .filter(|h| h == "replica-a")
                .ok_or_else(|| "not yet".to_owned()))
        })
        .await?;
        let second = Operator::start_with(&env, &ns, &args, "replica-b", None)?;

        let input = random_name("leader-in");
        kafka::create_topic(&env, &input, 1).await?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        apply(&transforms, &transform("before", &input)?).await?;
        wait::until(
            "the leader to roll out 'before'",
            support::CONVERGE,
            || async {
                Ok(deployments
                    .get_opt("before-transform")
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| "none".to_owned()))
            },
        )
        .await?;
        let standby = support::metrics(&second).await?;
        assert!(
            !standby.contains("homestream_reconciles_total{"),
            "the standby reconciled:\n{standby}"
        );
        assert_eq!(holder(&leases).await?.as_deref(), Some("replica-a"));

        first.kill().await?;
        let killed = Instant::now();
        wait::until(
            "replica-b to take over",
            Duration::from_secs(45),
            || async {
                Ok(holder(&leases)
                    .await?
                    .filter(|h| h == "replica-b")
                    .ok_or_else(|| "not yet".to_owned()))
            },
        )
        .await?;
        println!(
            "leader handover after SIGKILL: {:.1}s",
            killed.elapsed().as_secs_f64()
        );
        apply(&transforms, &transform("after", &input)?).await?;
        wait::until(
            "the new leader to roll out 'after'",
            support::CONVERGE,
            || async {
                Ok(deployments
                    .get_opt("after-transform")
                    .await?
                    .map(|_| ())
                    .ok_or_else(|| "none".to_owned()))
            },
        )
        .await?;
        // A reconcile is counted when it ends, after the Deployment it applied appears.
        wait::until(
            "the new leader to count its reconciles",
            support::CONVERGE,
            || async {
                let active = support::metrics(&second).await?;
                Ok(
                    if active.contains("homestream_reconciles_total{kind=\"StreamTransform\"}") {
                        Ok(())
                    } else {
                        Err(active)
                    },
                )
            },
        )
        .await?;
        drop(second);
        Ok(())
    })
    .await
    .context("leader election")
}
