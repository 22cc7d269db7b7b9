//! The Helm chart `charts/homestream`: its CRDs are the generated ones, its RBAC is the
//! install manifest's, `helm lint --strict` passes, and what `helm template` renders is
//! accepted by the local stack's apiserver (`kubectl apply --dry-run=server`), with the
//! default values and with those of the Argo CD Application in `manifests/argocd/`; its
//! PodMonitor selects the runtime pods the operator builds, and it ships the dashboard.
//! Helm is installed by `tests/env/install-helm.sh` (run by `tests/env/stack up`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use homestream_operator::build::labels::{Component, Owner};
use homestream_operator::build::pod::{PodInputs, pod_template};
use homestream_tests::crds::repo_path;
use homestream_tests::{StackEnv, cache_tool, kubernetes};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

const CHART: &str = "charts/homestream";

/// Runs `command` with `stdin`, returning its stdout; fails with its stderr.
fn run(mut command: Command, stdin: Option<&str>) -> Result<String> {
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {described}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        bail!(
            "{described} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

fn helm(args: &[&str]) -> Result<Command> {
    let mut command = Command::new(cache_tool("helm")?);
    command.args(args).current_dir(repo_path(""));
    Ok(command)
}

/// `helm template` of the chart into `namespace` with `--set` values.
fn render(namespace: &str, set: &[&str]) -> Result<String> {
    let mut command = helm(&[
        "template",
        "homestream",
        CHART,
        "--include-crds",
        "--namespace",
        namespace,
    ])?;
    for value in set {
        command.args(["--set", value]);
    }
    run(command, None)
}

/// `kubectl apply --dry-run=server` of `yaml` on the stack's apiserver: its output.
fn server_dry_run(env: &StackEnv, yaml: &str) -> Result<String> {
    let mut command = Command::new(cache_tool("kubectl")?);
    command
        .args(["apply", "--dry-run=server", "-f", "-"])
        .env("KUBECONFIG", &env.kubeconfig);
    run(command, Some(yaml))
}

fn documents(yaml: &str) -> Result<Vec<serde_yaml::Value>> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Ok(serde::Deserialize::deserialize(document)?))
        .filter(|d: &Result<serde_yaml::Value>| d.as_ref().map_or(true, |d| !d.is_null()))
        .collect()
}

fn of_kind<'a>(documents: &'a [serde_yaml::Value], kind: &str) -> Result<&'a serde_yaml::Value> {
    documents
        .iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .with_context(|| format!("no {kind}"))
}

fn install_manifest() -> Result<Vec<serde_yaml::Value>> {
    documents(&std::fs::read_to_string(repo_path(
        "manifests/install/homestream-operator.yaml",
    ))?)
}

/// The YAML files of a directory by name.
fn yaml_files(dir: &str) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(repo_path(dir))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .file_name()
                .context("file name")?
                .to_string_lossy()
                .into_owned();
            files.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}

/// Proves: the chart's `crds/` holds exactly the generated CRDs of `manifests/crds/`,
/// byte for byte (the generator's own test keeps those equal to the Rust types).
#[test]
fn the_chart_crds_are_the_generated_ones() -> Result<()> {
    let generated = yaml_files("manifests/crds")?;
    let chart = yaml_files(&format!("{CHART}/crds"))?;
    ensure!(!generated.is_empty(), "no generated CRDs");
    ensure!(
        chart == generated,
        "charts/homestream/crds/ differs from manifests/crds/: run \
         `rm charts/homestream/crds/*.yaml && cp manifests/crds/*.yaml charts/homestream/crds/`"
    );
    Ok(())
}

/// Proves: `helm lint --strict` passes with the default values and with a watched
/// namespace; the default render has the two-replica Deployment with leader election
/// and the install manifest's ClusterRole and leader-election Role rules exactly;
/// a watched namespace turns the cluster-wide binding into a RoleBinding there; the
/// metrics Service, the PodDisruptionBudget (more than one replica only) and, on
/// request, a ServiceMonitor select the operator's pods and port; more than one
/// replica without leader election is refused; and the apiserver of the stack accepts
/// both renders (server-side dry run: schemas, CRDs, RBAC objects).
#[tokio::test]
async fn the_chart_lints_renders_the_install_rbac_and_the_apiserver_accepts_it() -> Result<()> {
    let env = StackEnv::load()?;
    let client = homestream_tests::kubernetes::client(&env).await?;
    kubernetes::with_temp_ns(&client, |ns| async move {
        run(helm(&["lint", "--strict", CHART])?, None)?;
        run(
            helm(&[
                "lint",
                "--strict",
                CHART,
                "--set",
                &format!("watchNamespace={ns}"),
            ])?,
            None,
        )?;

        let rendered = render(&ns, &[])?;
        let objects = documents(&rendered)?;
        let mut kinds: Vec<&str> = objects.iter().filter_map(|d| d["kind"].as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "ClusterRole",
                "ClusterRoleBinding",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "CustomResourceDefinition",
                "Deployment",
                "PodDisruptionBudget",
                "Role",
                "RoleBinding",
                "Service",
                "ServiceAccount"
            ]
        );
        let install = install_manifest()?;
        for kind in ["ClusterRole", "Role"] {
            assert_eq!(
                of_kind(&objects, kind)?["rules"],
                of_kind(&install, kind)?["rules"],
                "{kind} rules differ from manifests/install/homestream-operator.yaml"
            );
        }
        let deployment = of_kind(&objects, "Deployment")?;
        assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_sequence()
            .context("args")?
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(
            args,
            ["--leader-election", "--leader-election-lease=homestream"]
        );
        let kubectl_apply = |yaml: String| server_dry_run(&env, &yaml);
        let accepted = kubectl_apply(rendered)?;
        assert_eq!(
            accepted.matches("(server dry run)").count(),
            objects.len(),
            "{accepted}"
        );

        let scoped = render(&ns, &[&format!("watchNamespace={ns}")])?;
        let scoped_objects = documents(&scoped)?;
        assert!(
            !scoped_objects
                .iter()
                .any(|d| d["kind"].as_str() == Some("ClusterRoleBinding")),
            "a watched namespace needs no cluster-wide grant"
        );
        let binding = scoped_objects
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("RoleBinding")
                    && d["roleRef"]["kind"].as_str() == Some("ClusterRole")
            })
            .context("no RoleBinding to the ClusterRole")?;
        assert_eq!(binding["metadata"]["namespace"].as_str(), Some(ns.as_str()));
        assert!(
            scoped.contains(&format!(
                "name: HOMESTREAM_WATCH_NAMESPACE\n              value: \"{ns}\""
            )),
            "{scoped}"
        );
        kubectl_apply(scoped)?;

        // The metrics Service and the disruption budget select the operator's pods,
        // and the Service reaches the port the probes use.
        let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
        let service = of_kind(&objects, "Service")?;
        assert_eq!(
            service["spec"]["selector"],
            deployment["spec"]["selector"]["matchLabels"]
        );
        assert_eq!(
            service["spec"]["ports"][0]["targetPort"],
            container["ports"][0]["name"]
        );
        let budget = of_kind(&objects, "PodDisruptionBudget")?;
        assert_eq!(
            budget["spec"]["selector"]["matchLabels"],
            deployment["spec"]["selector"]["matchLabels"]
        );
        assert_eq!(budget["spec"]["maxUnavailable"].as_u64(), Some(1));
        for (key, value) in service["spec"]["selector"]
            .as_mapping()
            .context("selector")?
        {
            assert_eq!(&pod_labels[key], value, "the pods lack the label {key:?}");
        }
        // One replica: no budget, which would block every drain.
        let single = documents(&render(&ns, &["replicas=1", "leaderElection=false"])?)?;
        assert!(of_kind(&single, "PodDisruptionBudget").is_err());
        // A ServiceMonitor on request, selecting the metrics Service by its labels.
        let monitored = documents(&render(
            &ns,
            &[
                "metrics.serviceMonitor.enabled=true",
                "metrics.serviceMonitor.labels.release=prometheus",
            ],
        )?)?;
        let monitor = of_kind(&monitored, "ServiceMonitor")?;
        for (key, value) in monitor["spec"]["selector"]["matchLabels"]
            .as_mapping()
            .context("matchLabels")?
        {
            assert_eq!(
                &service["metadata"]["labels"][key], value,
                "the Service lacks the label {key:?}"
            );
        }
        assert_eq!(
            monitor["spec"]["endpoints"][0]["port"],
            service["spec"]["ports"][0]["name"]
        );
        assert_eq!(
            monitor["metadata"]["labels"]["release"].as_str(),
            Some("prometheus")
        );
        let refused = render(
            &ns,
            &[
                "metrics.serviceMonitor.enabled=true",
                "metrics.service.enabled=false",
            ],
        )
        .unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("needs metrics.service.enabled"),
            "{refused}"
        );

        let refused = render(&ns, &["leaderElection=false"]).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("replicas > 1 needs leaderElection: true"),
            "{refused}"
        );
        Ok(())
    })
    .await
}

/// The values of a Strimzi-like cluster: TLS with the cluster's CA and SCRAM, the
/// runtime pods' Secrets in each resource's namespace, the operator's own in the
/// release namespace.
const KAFKA_SECURITY: &[&str] = &[
    "kafka.bootstrapServers=my-cluster-kafka-bootstrap.kafka:9093",
    "kafka.tls.enabled=true",
    "kafka.sasl.mechanism=ScramSha512",
    "kafka.runtimeSecrets.tlsCa.name=my-cluster-cluster-ca-cert",
    "kafka.runtimeSecrets.saslUsername.name=homestream-kafka",
    "kafka.runtimeSecrets.saslPassword.name=homestream-kafka",
    "kafka.operatorSecrets.tlsCa.name=my-cluster-cluster-ca-cert",
    "kafka.operatorSecrets.saslUsername.name=homestream-operator-kafka",
    "kafka.operatorSecrets.saslPassword.name=homestream-operator-kafka",
    "kafka.operatorSecrets.saslPassword.key=sasl.password",
];

/// Proves: the Kafka security values become the operator's flags (every variable the
/// chart sets is one the operator binary reads, per its `--help`): the runtime pods'
/// Secret keys as `secret/key`, the operator's own Secret keys mounted read-only as
/// files (a projected volume, group-readable through `fsGroup` only) whose paths its
/// flags name; no credential is a plain value; values the operator would refuse fail
/// the render with the reason; and the apiserver accepts the render.
#[tokio::test]
async fn the_chart_hands_kafka_security_over_as_secret_references_and_mounted_files() -> Result<()>
{
    let env = StackEnv::load()?;
    let client = homestream_tests::kubernetes::client(&env).await?;
    kubernetes::with_temp_ns(&client, |ns| async move {
        let rendered = render(&ns, KAFKA_SECURITY)?;
        let objects = documents(&rendered)?;
        let pod = &of_kind(&objects, "Deployment")?["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let variables: BTreeMap<String, Option<String>> = container["env"]
            .as_sequence()
            .context("env")?
            .iter()
            .filter_map(|var| {
                let name = var["name"].as_str()?.to_owned();
                Some((name, var["value"].as_str().map(str::to_owned)))
            })
            .collect();
        let expected = [
            ("HOMESTREAM_KAFKA_TLS", "true"),
            ("HOMESTREAM_KAFKA_SASL_MECHANISM", "ScramSha512"),
            (
                "HOMESTREAM_KAFKA_TLS_CA",
                "my-cluster-cluster-ca-cert/ca.crt",
            ),
            (
                "HOMESTREAM_KAFKA_SASL_USERNAME",
                "homestream-kafka/username",
            ),
            (
                "HOMESTREAM_KAFKA_SASL_PASSWORD",
                "homestream-kafka/password",
            ),
            (
                "HOMESTREAM_KAFKA_ADMIN_CA_FILE",
                "/etc/homestream/kafka/ca.crt",
            ),
            (
                "HOMESTREAM_KAFKA_ADMIN_SASL_USERNAME_FILE",
                "/etc/homestream/kafka/username",
            ),
            (
                "HOMESTREAM_KAFKA_ADMIN_SASL_PASSWORD_FILE",
                "/etc/homestream/kafka/password",
            ),
        ];
        for (name, value) in expected {
            assert_eq!(
                variables.get(name).cloned().flatten().as_deref(),
                Some(value),
                "{name}"
            );
        }
        let mut operator = Command::new(env!("CARGO_BIN_EXE_homestream-operator"));
        operator.arg("--help");
        let help = run(operator, None)?;
        for name in variables.keys() {
            let read = name.starts_with("POD_") || help.contains(&format!("[env: {name}="));
            assert!(
                read,
                "the chart sets {name}, which the operator does not read"
            );
        }
        assert_eq!(
            container["volumeMounts"],
            serde_yaml::from_str::<serde_yaml::Value>(
                "[{ name: kafka-credentials, mountPath: /etc/homestream/kafka, readOnly: true }]"
            )?
        );
        let volume = &pod["volumes"][0];
        assert_eq!(volume["projected"]["defaultMode"].as_u64(), Some(0o400));
        assert_eq!(pod["securityContext"]["fsGroup"].as_u64(), Some(65532));
        let mut items: Vec<(String, String, String)> = volume["projected"]["sources"]
            .as_sequence()
            .context("sources")?
            .iter()
            .map(|source| {
                let secret = &source["secret"];
                let item = &secret["items"][0];
                let text = |v: &serde_yaml::Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&secret["name"]),
                    text(&item["key"]),
                    text(&item["path"]),
                )
            })
            .collect();
        items.sort();
        let owned = |(a, b, c): (&str, &str, &str)| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            items,
            [
                ("homestream-operator-kafka", "sasl.password", "password"),
                ("homestream-operator-kafka", "username", "username"),
                ("my-cluster-cluster-ca-cert", "ca.crt", "ca.crt"),
            ]
            .map(owned)
        );

        let refused = |set: &[&str], reason: &str| -> Result<()> {
            let error = render(&ns, set).unwrap_err().to_string();
            ensure!(error.contains(reason), "expected {reason:?}: {error}");
            Ok(())
        };
        refused(
            &[
                "kafka.sasl.mechanism=ScramSha512",
                "kafka.runtimeSecrets.saslUsername.name=u",
                "kafka.runtimeSecrets.saslPassword.name=u",
            ],
            "kafka.sasl.mechanism needs kafka.operatorSecrets.saslUsername.name",
        )?;
        refused(
            &["kafka.runtimeSecrets.tlsCertificate.name=user"],
            "kafka.runtimeSecrets.tlsCertificate and kafka.runtimeSecrets.tlsKey go together",
        )?;
        refused(
            &["kafka.sasl.mechanism=SCRAM-SHA-512"],
            "value must be one of",
        )?;

        let mut command = Command::new(cache_tool("kubectl")?);
        command
            .args(["apply", "--dry-run=server", "-f", "-"])
            .env("KUBECONFIG", &env.kubeconfig);
        let accepted = run(command, Some(&rendered))?;
        assert_eq!(
            accepted.matches("(server dry run)").count(),
            objects.len(),
            "{accepted}"
        );
        Ok(())
    })
    .await
}

/// The values of a cluster whose lake is an in-cluster S3-compatible service: the
/// runtime pods' key in each DeltaSink's namespace, the operator's own in the release
/// namespace.
const S3_DEFAULTS: &[&str] = &[
    "s3.endpoint=http://minio.lake:9000",
    "s3.region=eu-west-2",
    "s3.pathStyle=true",
    "s3.runtimeSecrets.accessKeyId.name=lake-writer",
    "s3.runtimeSecrets.secretAccessKey.name=lake-writer",
    "s3.operatorSecrets.accessKeyId.name=homestream-operator-lake",
    "s3.operatorSecrets.secretAccessKey.name=homestream-operator-lake",
    "s3.operatorSecrets.secretAccessKey.key=secret",
];

/// Proves: the S3 values become the operator's flags (each a variable the operator
/// binary reads, per its `--help`): the endpoint, region and path style as values, the
/// runtime pods' Secret keys as `secret/key`, the operator's own key mounted read-only
/// as files (beside no Kafka credentials) whose paths its flags name; half a key fails
/// the render with the reason; and the apiserver accepts the render.
#[tokio::test]
async fn the_chart_hands_the_s3_defaults_over_as_secret_references_and_mounted_files() -> Result<()>
{
    let env = StackEnv::load()?;
    let client = homestream_tests::kubernetes::client(&env).await?;
    kubernetes::with_temp_ns(&client, |ns| async move {
        let rendered = render(&ns, S3_DEFAULTS)?;
        let objects = documents(&rendered)?;
        let pod = &of_kind(&objects, "Deployment")?["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let variables: BTreeMap<String, Option<String>> = container["env"]
            .as_sequence()
            .context("env")?
            .iter()
            .filter_map(|var| {
                let name = var["name"].as_str()?.to_owned();
                Some((name, var["value"].as_str().map(str::to_owned)))
            })
            .collect();
        for (name, value) in [
            ("HOMESTREAM_S3_ENDPOINT", "http://minio.lake:9000"),
            ("HOMESTREAM_S3_REGION", "eu-west-2"),
            ("HOMESTREAM_S3_PATH_STYLE", "true"),
            (
                "HOMESTREAM_S3_ACCESS_KEY_ID_REF",
                "lake-writer/access-key-id",
            ),
            (
                "HOMESTREAM_S3_SECRET_ACCESS_KEY_REF",
                "lake-writer/secret-access-key",
            ),
            (
                "HOMESTREAM_S3_ADMIN_ACCESS_KEY_ID_FILE",
                "/etc/homestream/s3/access-key-id",
            ),
            (
                "HOMESTREAM_S3_ADMIN_SECRET_ACCESS_KEY_FILE",
                "/etc/homestream/s3/secret-access-key",
            ),
        ] {
            assert_eq!(
                variables.get(name).cloned().flatten().as_deref(),
                Some(value),
                "{name}"
            );
        }
        let mut operator = Command::new(env!("CARGO_BIN_EXE_homestream-operator"));
        operator.arg("--help");
        let help = run(operator, None)?;
        for name in variables.keys() {
            let read = name.starts_with("POD_") || help.contains(&format!("[env: {name}="));
            assert!(
                read,
                "the chart sets {name}, which the operator does not read"
            );
        }
        assert_eq!(
            container["volumeMounts"],
            serde_yaml::from_str::<serde_yaml::Value>(
                "[{ name: s3-credentials, mountPath: /etc/homestream/s3, readOnly: true }]"
            )?
        );
        let volume = &pod["volumes"][0];
        assert_eq!(volume["projected"]["defaultMode"].as_u64(), Some(0o400));
        let items: Vec<(String, String, String)> = volume["projected"]["sources"]
            .as_sequence()
            .context("sources")?
            .iter()
            .map(|source| {
                let secret = &source["secret"];
                let item = &secret["items"][0];
                let text = |v: &serde_yaml::Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&secret["name"]),
                    text(&item["key"]),
                    text(&item["path"]),
                )
            })
            .collect();
        let owned = |(a, b, c): (&str, &str, &str)| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            items,
            [
                ("homestream-operator-lake", "access-key-id", "access-key-id"),
                ("homestream-operator-lake", "secret", "secret-access-key"),
            ]
            .map(owned)
        );
        let error = render(&ns, &["s3.runtimeSecrets.accessKeyId.name=lake-writer"])
            .unwrap_err()
            .to_string();
        ensure!(
            error.contains(
                "s3.runtimeSecrets.accessKeyId and s3.runtimeSecrets.secretAccessKey go together"
            ),
            "{error}"
        );
        let accepted = server_dry_run(&env, &rendered)?;
        assert_eq!(
            accepted.matches("(server dry run)").count(),
            objects.len(),
            "{accepted}"
        );
        Ok(())
    })
    .await
}

/// Proves: the Argo CD Application of the operator names this chart, and the chart as
/// Argo CD renders it (`helm template --include-crds` with the Application's release
/// name and `valuesObject`) is accepted by the apiserver, with the Application's brokers
/// and contact points in the operator's environment; the pipeline Application names
/// the example directory that `crd_apiserver` applies.
#[tokio::test]
async fn the_argo_cd_applications_render_and_the_apiserver_accepts_them() -> Result<()> {
    let env = StackEnv::load()?;
    let client = homestream_tests::kubernetes::client(&env).await?;
    let application = |name: &str| -> Result<serde_yaml::Value> {
        Ok(serde_yaml::from_str(&std::fs::read_to_string(repo_path(
            &format!("manifests/argocd/{name}.application.yaml"),
        ))?)?)
    };
    let pipeline = application("listings-pipeline")?;
    assert_eq!(
        pipeline["spec"]["source"]["path"].as_str(),
        Some("manifests/examples/pipeline")
    );
    let operator = application("homestream-operator")?;
    let source = &operator["spec"]["source"];
    assert_eq!(source["path"].as_str(), Some(CHART));
    let release = source["helm"]["releaseName"]
        .as_str()
        .context("releaseName")?;
    let values = source["helm"]["valuesObject"].clone();
    kubernetes::with_temp_ns(&client, |ns| async move {
        let file = std::env::temp_dir().join(format!("{ns}-argocd-values.yaml"));
        std::fs::write(&file, serde_yaml::to_string(&values)?)?;
        let mut template = helm(&[
            "template",
            release,
            CHART,
            "--include-crds",
            "--namespace",
            &ns,
        ])?;
        template.arg("--values").arg(&file);
        let rendered = run(template, None);
        let _ = std::fs::remove_file(&file);
        let rendered = rendered?;
        let objects = documents(&rendered)?;
        let accepted = server_dry_run(&env, &rendered)?;
        assert_eq!(
            accepted.matches("(server dry run)").count(),
            objects.len(),
            "{accepted}"
        );
        let container =
            &of_kind(&objects, "Deployment")?["spec"]["template"]["spec"]["containers"][0];
        for (variable, value) in [
            (
                "HOMESTREAM_KAFKA_BOOTSTRAP",
                &values["kafka"]["bootstrapServers"],
            ),
            (
                "HOMESTREAM_CASSANDRA_CONTACT_POINTS",
                &values["cassandra"]["contactPoints"],
            ),
        ] {
            let set = container["env"]
                .as_sequence()
                .context("env")?
                .iter()
                .find(|e| e["name"].as_str() == Some(variable))
                .with_context(|| format!("no {variable}"))?;
            assert_eq!(&set["value"], value, "{variable}");
        }
        Ok(())
    })
    .await
}

/// The pod template the operator builds for `component`'s pods, as JSON.
fn runtime_pod(component: Component) -> serde_json::Value {
    let owner = Owner {
        namespace: "listings".to_owned(),
        name: "normalise-listings".to_owned(),
        reference: OwnerReference::default(),
        component,
    };
    serde_json::to_value(pod_template(PodInputs {
        owner: &owner,
        image: "homestream-transformer:0.1.0",
        config_hash: "hash",
        env: vec![],
        kafka_tls: None,
        overrides: None,
        restart_policy: None,
    }))
    .expect("a pod template is JSON")
}

/// Proves: on request the chart renders a PodMonitor whose selector matches the pods the
/// operator builds for every component, on their metrics port, in every namespace (or
/// the watched one), relabelling from pod labels those pods carry to the `resource` and
/// `component` labels the dashboard groups by; and a ConfigMap with the dashboard, the
/// sidecar's label, and the dashboard file byte for byte, which the apiserver accepts.
#[tokio::test]
async fn the_pod_monitor_selects_the_runtime_pods_and_the_dashboard_ships() -> Result<()> {
    let env = StackEnv::load()?;
    let client = homestream_tests::kubernetes::client(&env).await?;
    kubernetes::with_temp_ns(&client, |ns| async move {
        let set = [
            "metrics.podMonitor.enabled=true",
            "metrics.podMonitor.labels.release=prometheus",
            "grafana.dashboard.enabled=true",
        ];
        let objects = documents(&render(&ns, &set)?)?;
        let monitor = of_kind(&objects, "PodMonitor")?;
        assert_eq!(
            monitor["metadata"]["labels"]["release"].as_str(),
            Some("prometheus")
        );
        assert_eq!(
            monitor["spec"]["namespaceSelector"]["any"].as_bool(),
            Some(true)
        );
        let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
        for component in [
            Component::Scrape,
            Component::Transform,
            Component::Sink,
            Component::DeltaSink,
        ] {
            let pod = runtime_pod(component);
            let labels = &pod["metadata"]["labels"];
            for (key, value) in monitor["spec"]["selector"]["matchLabels"]
                .as_mapping()
                .context("matchLabels")?
            {
                let key = key.as_str().context("label key")?;
                assert_eq!(
                    labels[key].as_str(),
                    value.as_str(),
                    "{component:?} lacks {key}"
                );
            }
            let ports: Vec<&str> = pod["spec"]["containers"][0]["ports"]
                .as_array()
                .context("ports")?
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert!(ports.contains(&endpoint["port"].as_str().context("port")?));
            // Prometheus names a pod label `__meta_kubernetes_pod_label_` + the label
            // with every character outside [a-zA-Z0-9_] turned into `_`.
            let meta: Vec<String> = labels
                .as_object()
                .context("labels")?
                .keys()
                .map(|key| {
                    let sanitised: String = key
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect();
                    format!("__meta_kubernetes_pod_label_{sanitised}")
                })
                .collect();
            let mut targets = Vec::new();
            for relabeling in endpoint["relabelings"]
                .as_sequence()
                .context("relabelings")?
            {
                for source in relabeling["sourceLabels"]
                    .as_sequence()
                    .context("sources")?
                {
                    let source = source.as_str().context("source label")?;
                    assert!(meta.iter().any(|m| m == source), "{component:?}: {source}");
                }
                targets.push(relabeling["targetLabel"].as_str().context("target")?);
            }
            assert_eq!(targets, ["resource", "component"]);
        }
        let watched = documents(&render(
            &ns,
            &[
                "metrics.podMonitor.enabled=true",
                &format!("watchNamespace={ns}"),
            ],
        )?)?;
        assert_eq!(
            of_kind(&watched, "PodMonitor")?["spec"]["namespaceSelector"]["matchNames"][0].as_str(),
            Some(ns.as_str())
        );

        let dashboard = of_kind(&objects, "ConfigMap")?;
        assert_eq!(
            dashboard["metadata"]["labels"]["grafana_dashboard"].as_str(),
            Some("1")
        );
        let shipped = dashboard["data"]["homestream.json"]
            .as_str()
            .context("no dashboard")?;
        let file = std::fs::read_to_string(repo_path(homestream_tests::dashboard::DASHBOARD))?;
        assert_eq!(shipped, file.trim_end());
        let only = helm(&[
            "template",
            "homestream",
            CHART,
            "--namespace",
            &ns,
            "--set",
            "grafana.dashboard.enabled=true",
            "--show-only",
            "templates/grafana-dashboard.yaml",
        ])?;
        let accepted = server_dry_run(&env, &run(only, None)?)?;
        assert!(accepted.contains("(server dry run)"), "{accepted}");
        Ok(())
    })
    .await
}
