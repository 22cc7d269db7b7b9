//! A kube-rs client for the local apiserver, and temporary namespaces for tests.

use std::future::Future;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::{StackEnv, random_name};

/// The labels of a namespace that enforces the `restricted` Pod Security Standard.
pub const RESTRICTED: [(&str, &str); 2] = [
    ("pod-security.kubernetes.io/enforce", "restricted"),
    ("pod-security.kubernetes.io/enforce-version", "latest"),
];

/// A client for the stack's apiserver, from the kubeconfig `stack up` wrote.
///
/// # Errors
/// When the kubeconfig cannot be read or the client cannot be built.
pub async fn client(env: &StackEnv) -> Result<Client> {
    // A test binary that links deltalake (through the operator or the runtime) has
    // rustls's aws-lc-rs beside kube's ring: with two providers rustls picks neither,
    // as in the operator's main. An error only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&env.kubeconfig)
        .with_context(|| format!("reading kubeconfig {}", env.kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("building a client config from the kubeconfig")?;
    Client::try_from(config).context("building the kube client")
}

/// Runs `test` with a fresh namespace, then deletes the namespace whatever the outcome.
/// The namespace enforces the `restricted` Pod Security Standard, as the demo's does:
/// every pod the operator builds must pass it.
///
/// # Errors
/// The test's error, or a failure to create the namespace.
pub async fn with_temp_ns<F, Fut>(client: &Client, test: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let name = random_name("hs-test");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            labels: Some(RESTRICTED.map(|(k, v)| (k.to_owned(), v.to_owned())).into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    let outcome = test(name.clone()).await;
    namespaces
        .delete(&name, &DeleteParams::background())
        .await
        .with_context(|| format!("deleting namespace {name}"))?;
    outcome
}
