//! The audit log: append an attempt's records without locks, link each
//! tenant's records into a hash chain afterwards, verify the chain, search.
//!
//! Records are written once and never changed; the chain lives beside them
//! in `audit_links` (position, record id, predecessor hash, hash), which the
//! chainer only appends to.
//!
//! Threat model. The chain proves that the records of a tenant up to its
//! head are exactly those that were chained, in that order: changing,
//! deleting, inserting or reordering a record (or a link) breaks a link that
//! `verify` names. It does not prove that nobody with write access to the
//! database rewrote a whole chain from some record on (the hash has no
//! secret): for that, export checkpoints (`bookhost audit checkpoint`: each
//! tenant's head position and hash) to somewhere the database's writers
//! cannot reach, and verify against them. Records not yet chained (the
//! chainer runs every second) are protected only from then on. Truncating the
//! newest records is detectable only against a checkpoint taken after them.

mod append;
mod chain;
mod record;
mod search;
mod status;
mod verify;

pub use append::{
    append, append_sql, AttemptAudit, AttemptOutcome, AuditCall, APPEND_STATEMENT, PREPARE_APPEND,
};
pub use chain::{chain_pending, spawn_chainer};
pub use record::{record_hash, AuditRecord};
pub use search::{search, AuditFilter};
pub use status::{chains, save as save_verification, ChainStatus};
pub use verify::{checkpoint, verify, BrokenLink, Checkpoint, Verification};
