//! The demo pipeline (`make demo`) and what the end-to-end tests share with it: the
//! demo listings site, the pipeline's manifests, and reading back what it produced.

pub mod homes;
pub mod observe;
pub mod pipeline;
pub mod site;
