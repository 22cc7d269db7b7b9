//! The committed CRDs against the real apiserver of the local stack: they install,
//! every example in `manifests/examples/` is accepted by server-side apply, and every
//! file in `manifests/examples/invalid/` is refused with the message of the rule it
//! breaks, including updates that only transition rules (`oldSelf`) catch. With
//! kubectl on PATH (or in the stack's bin directory), `kubectl explain` shows the field
//! docs and `kubectl get homestream` lists all three kinds with their columns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use homestream_tests::crds::{self, repo_path};
use homestream_tests::manifests::{apply, documents, yaml_files};
use homestream_tests::{StackEnv, kubernetes};
use kube::Client;

/// Field manager of everything these tests apply.
const MANAGER: &str = "homestream-crd-tests";

async fn setup() -> Result<(StackEnv, Client)> {
    let env = StackEnv::load()?;
    let client = kubernetes::client(&env).await?;
    crds::install(&client).await?;
    Ok((env, client))
}

#[tokio::test]
async fn every_valid_example_is_accepted() -> Result<()> {
    let (_env, client) = setup().await?;
    let mut files = yaml_files(&repo_path("manifests/examples/pipeline"))?;
    files.extend(yaml_files(&repo_path("manifests/examples/demo"))?);
    ensure!(
        files.len() >= 8,
        "expected the pipeline examples, found {files:?}"
    );
    let inner = client.clone();
    kubernetes::with_temp_ns(&client, |namespace| async move {
        let client = inner;
        for path in &files {
            for object in documents(path)? {
                if let Err(message) = apply(&client, &namespace, MANAGER, &object).await? {
                    bail!("{} was refused: {message}", path.display());
                }
                // Applying the same document again is a no-op, as it is for Argo CD.
                if let Err(message) = apply(&client, &namespace, MANAGER, &object).await? {
                    bail!("{} was refused on re-apply: {message}", path.display());
                }
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn every_invalid_example_is_refused_with_its_rule() -> Result<()> {
    let (_env, client) = setup().await?;
    let files = yaml_files(&repo_path("manifests/examples/invalid"))?;
    ensure!(
        files.len() >= 40,
        "expected the invalid examples, found {}",
        files.len()
    );
    let inner = client.clone();
    kubernetes::with_temp_ns(&client, |namespace| async move {
        let client = inner;
        let mut failures = Vec::new();
        let mut updates = 0;
        for path in &files {
            let file = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path)?;
            let expected = text
                .lines()
                .find_map(|line| line.strip_prefix("# expect: "))
                .with_context(|| format!("{file} has no '# expect: ' line"))?
                .trim()
                .to_owned();
            let mut documents = documents(path)?;
            let refused = documents
                .pop()
                .with_context(|| format!("{file} is empty"))?;
            // Update cases: the first document is a valid "before" that must be accepted.
            for before in &documents {
                updates += 1;
                if let Err(message) = apply(&client, &namespace, MANAGER, before).await? {
                    failures.push(format!("{file}: the valid 'before' was refused: {message}"));
                }
            }
            match apply(&client, &namespace, MANAGER, &refused).await? {
                Ok(()) => failures.push(format!(
                    "{file}: accepted, expected a refusal with {expected:?}"
                )),
                Err(message) if !message.contains(&expected) => {
                    failures.push(format!(
                        "{file}: refused with {message:?}, expected {expected:?}"
                    ));
                }
                Err(_) => {}
            }
        }
        ensure!(
            updates >= 5,
            "expected update cases (before/after pairs), found {updates}"
        );
        ensure!(
            failures.is_empty(),
            "{} of {} invalid examples misbehaved:\n{}",
            failures.len(),
            files.len(),
            failures.join("\n")
        );
        Ok(())
    })
    .await
}

/// kubectl from PATH or the stack's bin directory, if there is one.
fn kubectl() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cache/homestream/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join("kubectl"))
        .find(|path| path.is_file())
}

/// Runs kubectl against the stack with a private discovery cache, retrying while the
/// apiserver's discovery has not caught up with freshly installed CRDs.
async fn run_kubectl(
    kubectl: &Path,
    env: &StackEnv,
    cache: &Path,
    args: &[&str],
) -> Result<String> {
    let mut last_error = String::new();
    for _ in 0..30 {
        let output = std::process::Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&env.kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(args)
            .output()
            .with_context(|| format!("running {}", kubectl.display()))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        last_error = String::from_utf8_lossy(&output.stderr).into_owned();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("kubectl {} failed: {last_error}", args.join(" "))
}

#[tokio::test]
async fn kubectl_explains_fields_and_lists_the_category() -> Result<()> {
    let Some(kubectl) = kubectl() else {
        eprintln!("skipped: kubectl is neither on PATH nor in ~/.cache/homestream/bin");
        return Ok(());
    };
    let (env, client) = setup().await?;
    let cache = std::env::temp_dir().join(homestream_tests::random_name("kubectl-cache"));
    let outcome = kubernetes::with_temp_ns(&client, |namespace| {
        let (env, cache, kubectl, client) =
            (env.clone(), cache.clone(), kubectl.clone(), client.clone());
        async move {
            let explain = run_kubectl(
                &kubectl,
                &env,
                &cache,
                &["explain", "scrapejob.spec.source.browser"],
            )
            .await?;
            for expected in [
                "startUrls",
                "Load pages in headless Chromium",
                "allowedHosts",
                "captureResponses",
            ] {
                ensure!(
                    explain.contains(expected),
                    "kubectl explain lacks {expected:?}:\n{explain}"
                );
            }
            let explain = run_kubectl(
                &kubectl,
                &env,
                &cache,
                &["explain", "cassandrasink.spec.table.partitionKey"],
            )
            .await?;
            ensure!(
                explain.contains("Immutable"),
                "kubectl explain lacks the field doc:\n{explain}"
            );

            for path in yaml_files(&repo_path("manifests/examples/pipeline"))? {
                for object in documents(&path)? {
                    if let Err(message) = apply(&client, &namespace, MANAGER, &object).await? {
                        bail!("{} was refused: {message}", path.display());
                    }
                }
            }
            let listed = run_kubectl(
                &kubectl,
                &env,
                &cache,
                &["get", "homestream", "-n", &namespace],
            )
            .await?;
            for expected in [
                "scrapejob.homestream.io/zoopla-rentals",
                "streamtransform.homestream.io/normalise-listings",
                "cassandrasink.homestream.io/listings",
                "SCHEDULE",
                "TOPIC",
                "LAST SUCCESS",
                "INPUT",
                "OUTPUT",
                "KEYSPACE",
                "TABLE",
                "LAG",
                "READY",
                "AGE",
            ] {
                ensure!(
                    listed.contains(expected),
                    "kubectl get homestream lacks {expected:?}:\n{listed}"
                );
            }
            // `cs` is shadowed by the built-in ComponentStatus while the apiserver serves it.
            let short = run_kubectl(
                &kubectl,
                &env,
                &cache,
                &["get", "sj,st,csink", "-n", &namespace, "-o", "name"],
            )
            .await?;
            ensure!(
                short.lines().count() == 7,
                "short names sj, st, csink list the 7 resources:\n{short}"
            );
            Ok(())
        }
    })
    .await;
    let _ = std::fs::remove_dir_all(&cache);
    outcome
}
