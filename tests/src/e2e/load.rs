//! Raw listings produced straight into the pipeline's `listings.raw`, as a scraper
//! publishes them, to load the transform and sinks without running a scraper.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

use super::World;
use crate::kafka;

/// A producer of raw listings `load-N` into a world's `listings.raw`.
pub struct RawListings {
    producer: FutureProducer,
    topic: String,
}

impl RawListings {
    /// A producer into `world`'s `listings.raw`.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn new(world: &World) -> Result<Self> {
        Ok(Self {
            producer: kafka::client_config(&world.env).create()?,
            topic: world.topic("listings.raw"),
        })
    }

    /// Produces the listings numbered `range`, one at a time, each acknowledged.
    ///
    /// # Errors
    /// When the broker does not take one within 10 s.
    pub async fn produce(&self, range: Range<usize>) -> Result<()> {
        for n in range {
            let (key, payload) = raw_record(n);
            self.producer
                .send(
                    FutureRecord::to(&self.topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(error, _)| error)
                .with_context(|| format!("producing record {n}"))?;
        }
        Ok(())
    }

    /// Produces the listings numbered `range` all at once (librdkafka batches them),
    /// then waits for every acknowledgement: heavy load, fast.
    ///
    /// # Errors
    /// When the producer's queue is full or the broker does not take a record.
    pub async fn produce_burst(&self, range: Range<usize>) -> Result<()> {
        let mut deliveries = Vec::with_capacity(range.len());
        for n in range {
            let (key, payload) = raw_record(n);
            let delivery = self
                .producer
                .send_result(FutureRecord::to(&self.topic).key(&key).payload(&payload))
                .map_err(|(error, _)| error)
                .with_context(|| format!("queueing record {n}"))?;
            deliveries.push((n, delivery));
        }
        for (n, delivery) in deliveries {
            delivery
                .await
                .context("the producer was dropped")?
                .map_err(|(error, _)| error)
                .with_context(|| format!("producing record {n}"))?;
        }
        Ok(())
    }
}

/// The listing ids of the raw listings numbered `range`.
pub fn listing_ids(range: Range<usize>) -> BTreeSet<String> {
    range.map(listing_id).collect()
}

fn listing_id(n: usize) -> String {
    format!("load-{n}")
}

/// A raw record as a scraper publishes it, for listing `n`.
fn raw_record(n: usize) -> (String, String) {
    let id = listing_id(n);
    let record = json!({
        "id": id,
        "price": format!("£{},{:03} pcm", 1 + n % 3, n % 1000),
        "beds": format!("{} bed", 1 + n % 4),
        "address": format!("{n} Caledonian Road, London N7 9RN"),
        "_meta": {"sourceUrl": "https://www.example-portal.co.uk/to-rent/1", "job": "e2e/load", "scrapedAt": "2026-11-21T10:00:00Z"},
    });
    (id, record.to_string())
}
