//! The scraper's view of a ScrapeJob: the [`ValidatedScrapeJob`] that
//! [`ScrapeJobSpec::validate`] parses (selectors, JSONPaths, regexes, URL templates,
//! durations, defaults), plus what only the pod knows: the Secret values of headers
//! (from the environment), the start URLs as [`Url`]s, the run name and the user agent.

use homestream_crds::ScrapeJobSpec;
use homestream_crds::runtime::{ResourceIdentity, secret_env_var};
use homestream_crds::scrapejob::ValidatedScrapeJob;
use homestream_crds::scrapejob::source::{Header, HttpMethod};
use homestream_crds::scrapejob::validate::ValidatedSource;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::politeness::RetryPolicy;

/// The user agent when the job sets none: names the project so sites can reach its operators.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "homestream/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/homestream/homestream)"
);

/// A ScrapeJob that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec failed validation.
    #[error("invalid ScrapeJob spec: {0}")]
    Invalid(#[from] homestream_crds::InvalidSpec),
    /// A start URL is not a URL (the schema's pattern should have caught it).
    #[error("spec.source.browser.startUrls: {url:?}: {source}")]
    StartUrl {
        /// The URL as written.
        url: String,
        /// The parse error.
        source: url::ParseError,
    },
    /// A header's Secret value is not in the environment.
    #[error(
        "header {header} takes its value from Secret {secret}, but {variable} is not set in the environment"
    )]
    MissingSecret {
        /// Header name.
        header: String,
        /// `name/key` of the Secret.
        secret: String,
        /// The variable the operator sets.
        variable: String,
    },
    /// A header's name or value cannot be sent (the value is never echoed: it may be a
    /// credential).
    #[error("spec.source.http.headers[{header}]: {message}")]
    Header {
        /// Header name.
        header: String,
        /// What is wrong.
        message: &'static str,
    },
}

/// Everything a run needs, parsed.
#[derive(Debug, Clone)]
pub struct Job {
    /// `namespace/name` of the ScrapeJob, for `_meta.job`.
    pub name: String,
    /// Name of this run, for `_meta.run`.
    pub run: String,
    /// The spec, parsed and with defaults filled in.
    pub spec: ValidatedScrapeJob,
    /// Start URLs of a browser source (empty for an HTTP source).
    pub start_urls: Vec<Url>,
    /// Request method of an HTTP source.
    pub method: reqwest::Method,
    /// Headers of an HTTP source, Secret values filled in.
    pub headers: HeaderMap,
    /// User agent of every request.
    pub user_agent: String,
    /// Retries and backoff.
    pub retry: RetryPolicy,
}

impl Job {
    /// Validates and parses `spec`, reading header Secrets with `env`.
    ///
    /// # Errors
    /// When the spec is invalid or a Secret value is not in the environment.
    pub fn new(
        spec: &ScrapeJobSpec,
        resource: &ResourceIdentity,
        run: String,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, JobError> {
        let spec = spec.validate()?;
        let (start_urls, method, headers) = match &spec.source {
            ValidatedSource::Browser(browser) => {
                let start_urls = browser
                    .start_urls
                    .iter()
                    .map(|url| {
                        Url::parse(url).map_err(|source| JobError::StartUrl {
                            url: url.clone(),
                            source,
                        })
                    })
                    .collect::<Result<_, _>>()?;
                (start_urls, reqwest::Method::GET, HeaderMap::new())
            }
            ValidatedSource::Http(http) => {
                let method = match http.method {
                    HttpMethod::Get => reqwest::Method::GET,
                    HttpMethod::Post => reqwest::Method::POST,
                };
                (Vec::new(), method, headers(&http.headers, &env)?)
            }
        };
        Ok(Self {
            name: format!("{}/{}", resource.namespace, resource.name),
            run,
            start_urls,
            method,
            headers,
            user_agent: spec
                .politeness
                .user_agent
                .clone()
                .unwrap_or_else(|| DEFAULT_USER_AGENT.to_owned()),
            retry: RetryPolicy::of(&spec),
            spec,
        })
    }
}

fn headers(
    declared: &[Header],
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HeaderMap, JobError> {
    let mut headers = HeaderMap::new();
    for header in declared {
        let name = header.name.as_str();
        let error = |message| JobError::Header {
            header: name.to_owned(),
            message,
        };
        let value = match (&header.value, &header.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => {
                let secret = &from.secret_key_ref;
                let variable = secret_env_var(secret);
                env(&variable).ok_or_else(|| JobError::MissingSecret {
                    header: name.to_owned(),
                    secret: format!("{}/{}", secret.name, secret.key),
                    variable,
                })?
            }
            (None, None) => return Err(error("a header takes value or valueFrom")),
        };
        let value = HeaderValue::from_str(&value)
            .map_err(|_| error("the value is not a valid header value"))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| error("the name is not a valid header name"))?;
        headers.append(name, value);
    }
    Ok(headers)
}
