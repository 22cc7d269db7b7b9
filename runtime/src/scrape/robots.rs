//! robots.txt (RFC 9309): fetched once per origin and cached for the run; the group
//! for the user agent's product token applies, else `*`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use texting_robots::Robot;
use tokio::sync::OnceCell;
use url::Url;

use super::guard::{Refused, refusal_in};

/// The rules of one origin.
#[derive(Debug)]
enum Rules {
    /// No robots.txt (4xx) or an unparseable one: everything is allowed.
    AllowAll,
    /// robots.txt could not be fetched (5xx, network): RFC 9309 says assume complete
    /// disallow until it can be.
    DisallowAll,
    /// Parsed rules.
    Parsed(Box<Robot>),
    /// The guard refused the origin's address, so neither robots.txt nor any page
    /// of the origin can be fetched.
    Refused(Refused),
}

/// robots.txt of every origin a run visits.
#[derive(Debug)]
pub struct Robots {
    product: String,
    origins: Mutex<HashMap<String, Arc<OnceCell<Rules>>>>,
}

impl Robots {
    /// A cache for `user_agent`, matched in robots.txt by its product token (the part
    /// before the first `/` or space, e.g. `homestream`).
    pub fn new(user_agent: &str) -> Self {
        let product = user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or(user_agent)
            .to_owned();
        Self {
            product,
            origins: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `url` may be fetched. The first call for an origin fetches its robots.txt
    /// with `client` (which applies the SSRF guard); concurrent callers wait for it.
    ///
    /// # Errors
    /// The guard's refusal of the origin's address, which robots.txt must not mask.
    pub async fn allowed(&self, client: &reqwest::Client, url: &Url) -> Result<bool, Refused> {
        let origin = url.origin().ascii_serialization();
        let cell = {
            let mut origins = self
                .origins
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            origins.entry(origin.clone()).or_default().clone()
        };
        let rules = cell.get_or_init(|| self.fetch(client, origin)).await;
        match rules {
            Rules::AllowAll => Ok(true),
            Rules::DisallowAll => Ok(false),
            Rules::Parsed(robot) => Ok(robot.allowed(url.as_str())),
            Rules::Refused(refused) => Err(refused.clone()),
        }
    }

    async fn fetch(&self, client: &reqwest::Client, origin: String) -> Rules {
        let robots_url = format!("{origin}/robots.txt");
        let response = match client.get(&robots_url).send().await {
            Ok(response) => response,
            Err(error) => {
                if let Some(refused) = refusal_in(&error) {
                    return Rules::Refused(refused.clone());
                }
                tracing::warn!(url = robots_url, %error, "Cannot fetch robots.txt; not crawling the site.");
                return Rules::DisallowAll;
            }
        };
        let status = response.status();
        if status.is_server_error() {
            tracing::warn!(url = robots_url, %status, "robots.txt unavailable; not crawling the site.");
            return Rules::DisallowAll;
        }
        if !status.is_success() {
            return Rules::AllowAll;
        }
        match response.bytes().await {
            Ok(body) => match Robot::new(&self.product, &body) {
                Ok(robot) => Rules::Parsed(Box::new(robot)),
                Err(error) => {
                    tracing::warn!(
                        url = robots_url,
                        error = format!("{error:#}"),
                        "Unparseable robots.txt; treating it as empty."
                    );
                    Rules::AllowAll
                }
            },
            Err(error) => {
                tracing::warn!(url = robots_url, %error, "Cannot read robots.txt; not crawling the site.");
                Rules::DisallowAll
            }
        }
    }
}
