//! The labels and owner reference every child object carries.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

/// What a workload's pods run: the component label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// A ScrapeJob's runs.
    Scrape,
    /// A StreamTransform's pods.
    Transform,
    /// A CassandraSink's pods.
    Sink,
    /// A DeltaSink's pods.
    DeltaSink,
}

impl Component {
    /// The label value (and child name suffix). A DeltaSink's differs from a
    /// CassandraSink's, so the two kinds' children of one name never collide.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scrape => "scrape",
            Self::Transform => "transform",
            Self::Sink => "sink",
            Self::DeltaSink => "delta-sink",
        }
    }

    /// The runtime subcommand the pods run: both sinks run `sink`, which tells them
    /// apart by the kind in its configuration.
    pub fn subcommand(self) -> &'static str {
        match self {
            Self::DeltaSink => Self::Sink.as_str(),
            other => other.as_str(),
        }
    }
}

/// Identity of the resource whose children are being built.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    /// Namespace of the resource (and of its children).
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
    /// The controller owner reference children carry, so they go with the resource.
    pub reference: OwnerReference,
    /// Which runtime component runs it.
    pub component: Component,
}

impl Owner {
    /// The owner identity of a namespaced custom resource.
    ///
    /// # Panics
    /// When the resource has no namespace, name or uid, which an object read from the
    /// apiserver always has.
    pub fn of<K: Resource<DynamicType = ()>>(resource: &K, component: Component) -> Self {
        let meta = resource.meta();
        Self {
            namespace: meta.namespace.clone().expect("namespaced resource"),
            name: meta.name.clone().expect("named resource"),
            reference: resource
                .controller_owner_ref(&())
                .expect("resource with a uid"),
            component,
        }
    }

    /// Labels that select this resource's pods (stable: part of Deployment selectors).
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "homestream".to_owned()),
            (
                "app.kubernetes.io/component".to_owned(),
                self.component.as_str().to_owned(),
            ),
            ("app.kubernetes.io/instance".to_owned(), self.name.clone()),
        ])
    }

    /// [`Self::selector_labels`] as a label selector (`k=v,k=v`), to list the pods and
    /// Jobs of this resource.
    pub fn label_selector(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The selector labels plus `managed-by`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert(
            "app.kubernetes.io/managed-by".to_owned(),
            "homestream-operator".to_owned(),
        );
        labels
    }

    /// Name of the child objects. A ScrapeJob's Job or CronJob takes the ScrapeJob's
    /// name (the CRD caps it at 52 characters, the CronJob limit); a StreamTransform, a
    /// CassandraSink and a DeltaSink of one name may share a namespace, so theirs add
    /// the component.
    pub fn child_name(&self) -> String {
        match self.component {
            Component::Scrape => self.name.clone(),
            Component::Transform | Component::Sink | Component::DeltaSink => {
                format!("{}-{}", self.name, self.component.as_str())
            }
        }
    }
}
