//! Lease-based leader election: of several operator replicas, only the holder of a
//! `coordination.k8s.io/v1` Lease runs the controllers. The holder renews the lease
//! every [`RENEW_INTERVAL`]; another replica takes it over once it has not been renewed
//! for [`LEASE_DURATION`] (a killed leader), or at once when the leader releases it on
//! a clean shutdown.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// How long a lease is valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews, and a candidate retries.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);

/// One replica's view of the lease.
pub struct LeaderElector {
    leases: Api<Lease>,
    name: String,
    identity: String,
}

/// What an attempt to take or keep the lease found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This replica holds the lease.
    Leading,
    /// Another replica holds a valid lease.
    Following(String),
}

impl LeaderElector {
    /// An elector for the lease `name` in `namespace`, as `identity` (the pod name).
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            leases: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
        }
    }

    /// Creates, renews or takes over the lease when it is free, expired or ours.
    /// Concurrent attempts are serialized by the apiserver's resourceVersion check: the
    /// loser gets a conflict and follows.
    ///
    /// # Errors
    /// When the apiserver fails a request other than with a conflict.
    pub async fn try_acquire(&self) -> Result<Attempt, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.leases.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.held_since(now, 0)),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leading),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::Following(String::new()))
                }
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
            let valid = i64::from(spec.lease_duration_seconds.unwrap_or(0));
            renewed.0 + SignedDuration::from_secs(valid) < now
        });
        let next = if holder == self.identity {
            LeaseSpec {
                renew_time: Some(MicroTime(now)),
                ..spec
            }
        } else if holder.is_empty() || expired {
            self.held_since(now, spec.lease_transitions.unwrap_or(0) + 1)
        } else {
            return Ok(Attempt::Following(holder));
        };
        lease.spec = Some(next);
        match self
            .leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leading),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Following(holder)),
            Err(error) => Err(error),
        }
    }

    fn held_since(&self, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(
                i32::try_from(LEASE_DURATION.as_secs()).unwrap_or(i32::MAX),
            ),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Gives the lease up (on a clean shutdown), so another replica takes over at once.
    ///
    /// # Errors
    /// When the apiserver fails the request.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.leases.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            renew_time: None,
            ..spec
        });
        self.leases
            .replace(&self.name, &PostParams::default(), &lease)
            .await?;
        Ok(())
    }
}
