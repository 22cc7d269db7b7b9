//! The transform and the sink against the stack's secured listeners, the two ways a
//! secured cluster (Strimzi's, say) is reached: SCRAM-SHA-512 credentials from the
//! environment (which the pod gets from a Secret) over TLS checked against the
//! cluster's CA, and mutual TLS with a client certificate. A wrong password, a broker
//! the client cannot trust, or a missing client certificate stops the process with the
//! reason.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::stream_support::{
    CLEAN_LISTING, cleaned, command, create_table, listing, produce, read_all, rows_within,
    sink_spec, terminate, write_config_with_kafka,
};
use anyhow::{Context, Result};
use homestream_crds::runtime::{KAFKA_PASSWORD_ENV, KAFKA_USERNAME_ENV};
use homestream_tests::secure_kafka::{self, Refusal};
use homestream_tests::{StackEnv, kafka, random_name};
use serde_json::{Value, json};

/// `homestream-runtime <subcommand>` with the SCRAM user and `password` in its
/// environment, as the operator's pod template puts them.
fn runtime(env: &StackEnv, subcommand: &str, config: &PathBuf, password: &str) -> Command {
    let mut command = command(subcommand, config, &random_name("instance"), "127.0.0.1:0");
    command
        .env(KAFKA_USERNAME_ENV, &env.kafka_secure.username)
        .env(KAFKA_PASSWORD_ENV, password);
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_and_sink_work_over_tls_with_scram() -> Result<()> {
    let env = StackEnv::load()?;
    let trusted = serde_json::to_value(secure_kafka::sasl_ssl(&env, true))?;
    transform_and_sink_work_over(&env, trusted, "SASL_SSL").await
}

/// As Strimzi's `authentication: tls` users connect: a client certificate, no SASL.
#[tokio::test(flavor = "multi_thread")]
async fn transform_and_sink_work_over_mutual_tls() -> Result<()> {
    let env = StackEnv::load()?;
    let certified = serde_json::to_value(secure_kafka::mutual_tls(&env, true))?;
    transform_and_sink_work_over(&env, certified, "mutual TLS").await
}

/// Proves: a transform and a sink connected through `trusted` (`over` names it) each
/// process every record of their input once.
async fn transform_and_sink_work_over(env: &StackEnv, trusted: Value, over: &str) -> Result<()> {
    let (input, output, rows_topic, dead) = (
        random_name("sec-in"),
        random_name("sec-out"),
        random_name("sec-rows"),
        random_name("sec-dlq"),
    );
    for topic in [&input, &output, &rows_topic, &dead] {
        kafka::create_topic(env, topic, 2).await?;
    }
    const N: usize = 300;
    produce(
        env,
        &input,
        (0..N).map(|n| (format!("raw-{n}"), serde_json::to_vec(&listing(n)).unwrap())),
    )
    .await?;
    produce(
        env,
        &rows_topic,
        (0..N).map(|n| (format!("row-{n}"), serde_json::to_vec(&cleaned(n)).unwrap())),
    )
    .await?;

    let transform_config = write_config_with_kafka(
        env,
        "StreamTransform",
        &json!({
            "input": {"topic": input, "startFrom": "Earliest"},
            "output": {"topic": {"name": output}},
            "program": CLEAN_LISTING,
        }),
        trusted.clone(),
    )?;
    let (session, keyspace) = create_table(env).await?;
    let sink_config = write_config_with_kafka(
        env,
        "CassandraSink",
        &sink_spec(&rows_topic, &keyspace, &dead),
        trusted,
    )?;
    let password = &env.kafka_secure.password;
    let mut transform = runtime(env, "transform", &transform_config, password).spawn()?;
    let mut sink = runtime(env, "sink", &sink_config, password).spawn()?;

    let out = read_all(
        env,
        &output,
        N,
        Duration::from_secs(90),
        Duration::from_secs(2),
    )
    .await?;
    let keys: BTreeSet<_> = out.iter().filter_map(|read| read.key.clone()).collect();
    assert_eq!(
        (out.len(), keys.len()),
        (N, N),
        "every record out once, over {over}"
    );

    assert_eq!(
        rows_within(&session, &keyspace, N, Duration::from_secs(90)).await?,
        i64::try_from(N)?,
        "every record read over {over} is a row"
    );
    terminate(&mut transform)?;
    terminate(&mut sink)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_or_an_untrusted_broker_stops_the_transform_and_the_sink_with_the_reason()
-> Result<()> {
    let env = StackEnv::load()?;
    let input = random_name("sec-refused");
    kafka::create_topic(&env, &input, 1).await?;
    let (_session, keyspace) = create_table(&env).await?;
    let components = [
        (
            "transform",
            "StreamTransform",
            json!({
                "input": {"topic": input},
                "output": {"topic": {"name": input}},
                "program": ".",
            }),
        ),
        (
            "sink",
            "CassandraSink",
            sink_spec(&input, &keyspace, &input),
        ),
    ];
    let refusals = secure_kafka::refusals(&env);
    for (subcommand, kind, spec) in &components {
        for Refusal {
            case,
            kafka,
            password,
            reason,
        } in &refusals
        {
            let kafka = serde_json::to_value(kafka)?;
            let config = write_config_with_kafka(&env, kind, spec, kafka)?;
            let child = runtime(&env, subcommand, &config, password)
                .stderr(Stdio::piped())
                .spawn()?;
            // librdkafka retries both for ever: without the check the sink would wait,
            // ready, and the transform would give up only after its 30 s bound.
            let (succeeded, stderr) = exit_within(child, Duration::from_secs(20))
                .with_context(|| format!("the {subcommand} with {case}"))?;
            assert!(
                !succeeded,
                "with {case} the {subcommand} must fail: {stderr}"
            );
            assert!(
                stderr.contains("Kafka refused the connection: ") && stderr.contains(reason),
                "with {case} the {subcommand} says why ({reason}): {stderr}"
            );
        }
    }
    Ok(())
}

/// Waits for `child` to exit: whether it succeeded, and its standard error (read on a
/// thread of its own, so that a chatty child never blocks on a full pipe).
fn exit_within(mut child: Child, timeout: Duration) -> Result<(bool, String)> {
    let mut stderr = child.stderr.take().context("stderr is not piped")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the stderr reader panicked"))?;
    let status = status.with_context(|| format!("still running after {timeout:?}: {text}"))?;
    Ok((status.success(), text))
}
