//! Reconcile scenarios without a cluster: a controller runs against a mock apiserver
//! (a channel-backed tower service behind a real kube `Client`) that expects the scenario's
//! requests in order (method, path, body), answers each as the apiserver would, and
//! fails the test on any other. Kafka is either an address where nothing listens, so a
//! reconcile that tried it would outlast the scenario, or librdkafka's in-process mock
//! cluster; Cassandra is never reached, nor is object storage, which is an address
//! where nothing listens. The model is kube-rs/controller-rs's `src/fixtures.rs`.

mod delta_sink;
mod finalizer;
mod invalid_spec;
mod resources;
mod rollout;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use kube::{Client, Resource, ResourceExt};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::topics::Declarations;
use super::{Context, Error, FIELD_MANAGER};
use crate::metrics::Metrics;
use resources::NAMESPACE;

/// Where no Kafka or Cassandra listens: a reconcile that tried either would wait for its
/// request timeout (10 s for Kafka), past [`TIME_LIMIT`], and fail the scenario.
pub const NOWHERE: &str = "127.0.0.1:1";

/// How long a scenario may take: against the mocks a reconcile takes milliseconds.
const TIME_LIMIT: Duration = Duration::from_secs(5);

/// A context whose client talks to the returned mock apiserver and whose Kafka is at
/// `kafka`; the caches are empty (no other resource declares a topic).
pub fn context(kafka: &str) -> (Arc<Context>, ApiServer) {
    context_with(kafka, &[])
}

/// [`context`], with more operator flags.
pub fn context_with(kafka: &str, flags: &[&str]) -> (Arc<Context>, ApiServer) {
    let (requests, handle) = mpsc::unbounded_channel::<(Request<Body>, Responder)>();
    let service = tower::service_fn(move |request: Request<Body>| {
        let requests = requests.clone();
        async move {
            let (respond, response) = oneshot::channel();
            requests
                .send((request, respond))
                .map_err(|_| "the scenario's apiserver is gone")?;
            response
                .await
                .map_err(|_| "the scenario dropped the request unanswered")
        }
    });
    let client = Client::new(service, NAMESPACE);
    let kafka = format!("--kafka-bootstrap-servers={kafka}");
    let cassandra = format!("--cassandra-contact-points={NOWHERE}");
    let mut args = vec![kafka.as_str(), cassandra.as_str()];
    args.extend(flags);
    let config = crate::config::from_args(&args);
    let declarations = Declarations {
        scrape_jobs: reflector::store().0,
        transforms: reflector::store().0,
        sinks: reflector::store().0,
        delta_sinks: reflector::store().0,
    };
    let metrics = Metrics::register(&mut Registry::default());
    let ctx = Context::new(client, config, metrics, declarations, None);
    (Arc::new(ctx), ApiServer(handle))
}

/// Runs `reconcile` while `scenario` plays the apiserver, expecting each request in turn.
/// A request the scenario does not expect, one it expects that never comes, or a
/// reconcile still running after [`TIME_LIMIT`] fails the test.
pub async fn reconciled<F>(
    mut api: ApiServer,
    reconcile: F,
    scenario: impl AsyncFnOnce(&mut ApiServer),
) -> Result<Action, Error>
where
    F: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let mut reconcile = tokio::spawn(reconcile);
    let deadline = tokio::time::sleep(TIME_LIMIT);
    tokio::pin!(deadline);
    tokio::select! {
        () = scenario(&mut api) => {}
        outcome = &mut reconcile => {
            panic!("the reconcile ended ({outcome:?}) before making every expected request")
        }
        () = &mut deadline => panic!(
            "no expected request within {TIME_LIMIT:?}: is the reconcile waiting for Kafka or Cassandra?"
        ),
    }
    tokio::select! {
        outcome = &mut reconcile => outcome.expect("the reconcile panicked"),
        // None: the client is gone with the finished reconcile's context.
        Some((request, _)) = api.0.recv() => {
            panic!("unexpected request {} {}", request.method(), request.uri())
        }
        () = &mut deadline => panic!(
            "the reconcile still runs after {TIME_LIMIT:?}: is it waiting for Kafka or Cassandra?"
        ),
    }
}

/// How a request reaches the scenario: with the channel its response goes back on.
type Responder = oneshot::Sender<Response<Body>>;

/// The apiserver side of the context's client: the requests it made, in order.
pub struct ApiServer(mpsc::UnboundedReceiver<(Request<Body>, Responder)>);

/// A request the reconcile made, read, and the means to answer it.
pub struct Exchange {
    /// Method and URI, for messages.
    line: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    /// The request body as JSON (`null` when empty).
    pub body: Value,
    respond: Responder,
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (the URI without its query).
    pub async fn expect(&mut self, method: Method, path: &str) -> Exchange {
        let (request, respond) = self
            .0
            .recv()
            .await
            .unwrap_or_else(|| panic!("the reconcile ended without {method} {path}"));
        let line = format!("{} {}", request.method(), request.uri());
        assert_eq!(
            (request.method(), request.uri().path()),
            (&method, path),
            "expected {method} {path}, the reconcile sent {line}"
        );
        let query = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Exchange {
            line,
            query,
            content_type,
            body,
            respond,
        }
    }

    /// The status the reconcile wrote to `resource` (server-side apply of its status
    /// subresource), answered with the resource carrying it.
    pub async fn status_patch<K>(&mut self, resource: &K) -> Value
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let patch = self
            .expect(Method::PATCH, &format!("{}/status", object_path(resource)))
            .await;
        patch.assert_applied();
        assert_eq!(patch.body["apiVersion"], K::api_version(&()).as_ref());
        assert_eq!(patch.body["kind"], K::kind(&()).as_ref());
        let status = patch.body["status"].clone();
        let mut updated = serde_json::to_value(resource).unwrap();
        updated["status"] = status.clone();
        patch.ok(&updated);
        status
    }

    /// A patch of `resource`'s metadata of `content_type` (the finalizer added or
    /// removed), answered with the resource; returns the patch.
    pub async fn metadata_patch<K>(&mut self, resource: &K, content_type: &str) -> Value
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let patch = self.expect(Method::PATCH, &object_path(resource)).await;
        assert_eq!(
            patch.content_type.as_deref(),
            Some(content_type),
            "{}",
            patch.line
        );
        let body = patch.body.clone();
        patch.ok(&serde_json::to_value(resource).unwrap());
        body
    }

    /// An Event with `reason` published in the namespace; returns it.
    pub async fn event(&mut self, reason: &str) -> Value {
        let post = self
            .expect(
                Method::POST,
                &format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"),
            )
            .await;
        assert_eq!(post.body["reason"], reason, "{}", post.body);
        let event = post.body.clone();
        post.ok(&event);
        event
    }

    /// A child server-side applied at `path`, answered with itself; returns it.
    pub async fn apply(&mut self, path: &str) -> Value {
        let patch = self.expect(Method::PATCH, path).await;
        patch.assert_applied();
        let child = patch.body.clone();
        patch.ok(&child);
        child
    }

    /// The Deployment `name` read (answered with `current`, or not found) and its pods
    /// listed by `selector` (none).
    pub async fn observe_deployment(
        &mut self,
        name: &str,
        current: Option<&Value>,
        selector: &str,
    ) {
        let get = self
            .expect(
                Method::GET,
                &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"),
            )
            .await;
        match current {
            Some(deployment) => get.ok(deployment),
            None => get.not_found(),
        }
        let list = self
            .expect(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"))
            .await;
        assert_eq!(
            list.query.get("labelSelector").map(String::as_str),
            Some(selector),
            "{}",
            list.line
        );
        list.ok(&json!({
            "apiVersion": "v1", "kind": "PodList",
            "metadata": { "resourceVersion": "1" }, "items": []
        }));
    }
}

impl Exchange {
    /// Asserts a server-side apply under the operator's field manager, forced.
    fn assert_applied(&self) {
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            self.line
        );
        assert_eq!(
            self.query.get("fieldManager").map(String::as_str),
            Some(FIELD_MANAGER),
            "{}",
            self.line
        );
        assert_eq!(
            self.query.get("force").map(String::as_str),
            Some("true"),
            "{}",
            self.line
        );
    }

    /// Answers 200 with `body`.
    pub fn ok(self, body: &Value) {
        self.reply(StatusCode::OK, body);
    }

    /// Answers 404 with the apiserver's Status.
    pub fn not_found(self) {
        let status = json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"
        });
        self.reply(StatusCode::NOT_FOUND, &status);
    }

    fn reply(self, code: StatusCode, body: &Value) {
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        // An error means the reconcile stopped waiting; `reconciled` reports its outcome.
        let _ = self.respond.send(response);
    }
}

/// The URL path of `resource` itself.
fn object_path<K: Resource<DynamicType = ()>>(resource: &K) -> String {
    format!(
        "{}/{}",
        K::url_path(&(), resource.namespace().as_deref()),
        resource.name_any()
    )
}

/// The condition `type_` of a written `status`.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no condition {type_} in {status:#}"))
}

/// Asserts that condition `type_` of `status` is `holds` ("True" or "False") for
/// `reason`, with a message that contains each of `mentions`.
pub fn assert_condition(status: &Value, type_: &str, holds: &str, reason: &str, mentions: &[&str]) {
    let condition = condition(status, type_);
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some(holds), Some(reason)),
        "{type_}: {condition:#}"
    );
    let message = condition["message"].as_str().unwrap_or_default();
    for mention in mentions {
        assert!(
            message.contains(mention),
            "{type_} mentions {mention}: {message}"
        );
    }
}

/// The types of the conditions in `status`, in order.
pub fn condition_types(status: &Value) -> Vec<&str> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect()
}
