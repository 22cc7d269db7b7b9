//! Least privilege: the operator runs with a ServiceAccount token bound only to the
//! rules of `manifests/install/homestream-operator.yaml`, converges a StreamTransform
//! with leader election on, and cannot read Secrets.

use crate::support;

use crate::support::{Operator, apply, wait_condition};
use anyhow::{Context, Result, ensure};
use homestream_crds::StreamTransform;
use homestream_tests::crds::repo_path;
use homestream_tests::{StackEnv, kafka, kubernetes, random_name};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The documents of the install manifest.
fn install_documents() -> Result<Vec<serde_yaml::Value>> {
    let text = std::fs::read_to_string(repo_path("manifests/install/homestream-operator.yaml"))?;
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Ok(serde::Deserialize::deserialize(document)?))
        .collect()
}

fn of_kind(documents: &[serde_yaml::Value], kind: &str) -> Result<serde_yaml::Value> {
    documents
        .iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .cloned()
        .with_context(|| format!("no {kind}"))
}

/// Grants the install manifest's ClusterRole and leader-election Role to a
/// ServiceAccount of `ns`, and returns a kubeconfig with that account's token.
async fn service_account_kubeconfig(
    env: &StackEnv,
    client: &Client,
    ns: &str,
) -> Result<std::path::PathBuf> {
    let documents = install_documents()?;
    let apply_params = PatchParams::apply("homestream-tests").force();
    let cluster_role: ClusterRole = serde_yaml::from_value(of_kind(&documents, "ClusterRole")?)?;
    Api::<ClusterRole>::all(client.clone())
        .patch(
            "homestream-operator",
            &apply_params,
            &Patch::Apply(&cluster_role),
        )
        .await?;
    let mut role: Role = serde_yaml::from_value(of_kind(&documents, "Role")?)?;
    role.metadata.namespace = Some(ns.to_owned());
    let role_name = role.metadata.name.clone().context("role name")?;
    Api::<Role>::namespaced(client.clone(), ns)
        .patch(&role_name, &apply_params, &Patch::Apply(&role))
        .await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("homestream-operator".to_owned()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    accounts.create(&PostParams::default(), &account).await?;
    let subject = Subject {
        kind: "ServiceAccount".to_owned(),
        name: "homestream-operator".to_owned(),
        namespace: Some(ns.to_owned()),
        ..Subject::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("homestream-operator-{ns}")),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "homestream-operator".into(),
        },
        subjects: Some(vec![subject.clone()]),
    };
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await?;
    let role_binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(role_name.clone()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: role_name,
        },
        subjects: Some(vec![subject]),
    };
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role_binding)
        .await?;

    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource(
            "token",
            "homestream-operator",
            &PostParams::default(),
            &request,
        )
        .await
        .context("requesting a ServiceAccount token")?;
    let token = issued
        .status
        .and_then(|status| status.token)
        .context("token request without a token")?;
    // The stack's kubeconfig with the admin token swapped for the account's.
    let mut kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&env.kubeconfig)?)?;
    for user in kubeconfig["users"]
        .as_sequence_mut()
        .context("kubeconfig without users")?
    {
        user["user"]["token"] = serde_yaml::Value::String(token.clone());
    }
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", random_name("sa")));
    std::fs::write(&path, serde_yaml::to_string(&kubeconfig)?)?;
    Ok(path)
}

#[tokio::test]
async fn the_operator_works_with_the_install_manifests_rbac_and_reads_no_secrets() -> Result<()> {
    let env = StackEnv::load()?;
    let client = support::client(&env).await?;
    let admin = client.clone();
    let outcome = kubernetes::with_temp_ns(&client.clone(), |ns| async move {
        let kubeconfig = service_account_kubeconfig(&env, &client, &ns).await?;
        let scoped = kubernetes::client(&StackEnv { kubeconfig: kubeconfig.clone(), ..env.clone() }).await?;
        let secrets = Api::<Secret>::namespaced(scoped, &ns).list(&ListParams::default()).await;
        ensure!(
            matches!(&secrets, Err(kube::Error::Api(status)) if status.code == 403),
            "the operator's account can read Secrets: {secrets:?}"
        );
        let args = ["--leader-election", "--leader-election-namespace", ns.as_str()];
        let _operator = Operator::start_with(&env, &ns, &args, "rbac", Some(&kubeconfig))?;
        let input = random_name("rbac-in");
        kafka::create_topic(&env, &input, 1).await?;
        let transforms: Api<StreamTransform> = Api::namespaced(client.clone(), &ns);
        let transform: StreamTransform = serde_json::from_value(json!({
            "apiVersion": "homestream.io/v1alpha1", "kind": "StreamTransform",
            "metadata": { "name": "least" },
            "spec": { "input": { "topic": input }, "output": { "topic": { "name": random_name("rbac-out") } },
                      "program": ".x = 1\n", "deletionPolicy": "Delete" }
        }))?;
        apply(&transforms, &transform).await?;
        wait_condition(&transforms, "least", "TopicReady", "True", "TopicsReady").await?;
        wait_condition(&transforms, "least", "InputTopicReady", "True", "Exists").await?;
        homestream_tests::wait::until("the Deployment", support::CONVERGE, || async {
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), &ns);
            Ok(deployments.get_opt("least-transform").await?.map(|_| ()).ok_or_else(|| "none".to_owned()))
        })
        .await?;
        // The finalizer (deletionPolicy Delete) works with these rights too.
        support::delete_and_wait(&transforms, "least").await?;
        std::fs::remove_file(kubeconfig)?;
        Ok(())
    })
    .await;
    let bindings: Api<ClusterRoleBinding> = Api::all(admin);
    for binding in bindings.list(&ListParams::default()).await? {
        let name = binding.metadata.name.unwrap_or_default();
        if name.starts_with("homestream-operator-hs-test-") {
            let _ = bindings.delete(&name, &Default::default()).await;
        }
    }
    outcome
}
