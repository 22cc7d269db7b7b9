//! Parsing a ScrapeJob spec into [`ValidatedScrapeJob`]: each part of the spec is
//! parsed by the submodule of its concern, every problem is collected with its field
//! path, and the parts are assembled only when none was found.

mod extract;
mod follow;
mod politeness;
mod source;
mod trigger;

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use super::ScrapeJobSpec;
use crate::deletion::DeletionPolicy;
use crate::format::duration::Duration;
use crate::topic::{self, TopicSpec};
use crate::validation::{InvalidSpec, Problems};

pub use extract::{
    DETAIL_DOCUMENT, DocumentSource, FieldValue, ITEMS_DOCUMENT, ValidatedDocument,
    ValidatedExtract, ValidatedField, ValidatedItems,
};
pub use follow::{PageLink, ValidatedDetailPages, ValidatedLink, ValidatedNextPage};
pub use politeness::ValidatedPoliteness;
pub use source::{
    PaginationMode, ValidatedBrowser, ValidatedHttp, ValidatedPagination, ValidatedSource,
    host_matches,
};
pub use trigger::Trigger;

const DEFAULT_RUN_TIMEOUT: StdDuration = StdDuration::from_secs(3600);

/// A ScrapeJob spec that parsed, with defaults filled in: what the operator builds from.
#[derive(Debug, Clone)]
pub struct ValidatedScrapeJob {
    /// How pages are fetched.
    pub source: ValidatedSource,
    /// What is extracted.
    pub extract: ValidatedExtract,
    /// Next-page links to follow, with the page bound.
    pub next_page: Option<ValidatedNextPage>,
    /// Detail pages to visit.
    pub detail_pages: Option<ValidatedDetailPages>,
    /// Politeness limits.
    pub politeness: ValidatedPoliteness,
    /// Whether private, loopback and link-local addresses may be reached.
    pub allow_private_addresses: bool,
    /// When runs happen.
    pub trigger: Trigger,
    /// Longest run.
    pub run_timeout: StdDuration,
    /// The output topic.
    pub output: TopicSpec,
    /// What happens to the topic on deletion.
    pub deletion_policy: DeletionPolicy,
}

impl ValidatedScrapeJob {
    /// Where every document the job reads is, on results pages and detail pages.
    pub fn document_sources(&self) -> impl Iterator<Item = &DocumentSource> {
        let detail = self.detail_pages.iter().flat_map(|detail| {
            let named = detail.documents.iter().map(|document| &document.source);
            detail.from.iter().chain(named)
        });
        let named = self.extract.documents.iter();
        named.map(|document| &document.source).chain(detail)
    }
}

impl ScrapeJobSpec {
    /// Parses the spec.
    ///
    /// # Errors
    /// Every problem CEL could not catch, each with its field path.
    pub fn validate(&self) -> Result<ValidatedScrapeJob, InvalidSpec> {
        let mut problems = Problems::default();
        topic::check_declared(&self.output.topic, "spec.output.topic", &mut problems);
        let source = source::validate(
            &self.source,
            self.extract.items.json.is_some(),
            &mut problems,
        );
        let extract = extract::validate(&self.extract, &mut problems);
        let follow = self.follow.as_ref().map(|follow| {
            follow::validate(follow, self.extract.items.json.is_some(), &mut problems)
        });
        let politeness = politeness::validate(self.politeness.as_ref(), &mut problems);
        let trigger = trigger::validate(self, &mut problems);
        let run_timeout = duration(
            &mut problems,
            "spec.runTimeout",
            self.run_timeout.as_ref(),
            (StdDuration::from_secs(60), StdDuration::from_secs(86_400)),
            DEFAULT_RUN_TIMEOUT,
        );
        let (next_page, detail_pages) = follow.unwrap_or((None, None));
        problems.finish(|| {
            Some(ValidatedScrapeJob {
                source: source?,
                extract: extract?,
                next_page,
                detail_pages,
                politeness: politeness?,
                allow_private_addresses: self
                    .network
                    .as_ref()
                    .and_then(|network| network.allow_private_addresses)
                    .unwrap_or(false),
                trigger: trigger?,
                run_timeout: run_timeout?,
                output: self.output.topic.clone(),
                deletion_policy: self.deletion_policy.unwrap_or_default(),
            })
        })
    }
}

/// A duration field within `(min, max)`, or `default` when it is unset.
fn duration(
    problems: &mut Problems,
    path: &str,
    value: Option<&Duration>,
    (min, max): (StdDuration, StdDuration),
    default: StdDuration,
) -> Option<StdDuration> {
    match value {
        Some(value) => problems.check(path, value.parse_within(min, max)),
        None => Some(default),
    }
}

fn positive(value: i32) -> NonZeroU32 {
    // The schema bounds these fields to >= 1; the fallback only guards a CRD installed
    // without them.
    NonZeroU32::new(value.unsigned_abs()).unwrap_or(NonZeroU32::MIN)
}
