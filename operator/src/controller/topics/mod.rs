//! Topic ownership, in one place: who declares which topic and whose declaration wins
//! ([`declarations`]), and the topic phase of every reconcile, with the deletion of
//! what the operator created ([`phase`]).

pub mod declarations;
pub mod phase;

pub use declarations::{Declarations, TopicDeclaration, owner_name};
pub use phase::{TopicPhase, delete_topics, run};
