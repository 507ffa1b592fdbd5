-- The hash chain moves out of the audit records into links of its own.
--
-- Linking used to UPDATE each record (about 1.3 kB) to set its position and
-- hashes: a second full copy of every record, three index entries more, and
-- a dead row for vacuum, which together cost about as much as appending the
-- record. A link is a narrow row, inserted once. Records are now never
-- changed by anyone the host speaks for: the host may append records and
-- links, and update only the chainer's progress.
CREATE TABLE audit_links (
    tenant_id uuid   NOT NULL,
    chain_seq bigint NOT NULL,
    record_id bigint NOT NULL,
    prev_hash bytea  NOT NULL,
    hash      bytea  NOT NULL
);
-- Not unique: verification, not the schema, judges the chain, so that a
-- tampered chain (duplicated or swapped positions) can still be read and
-- reported.
CREATE INDEX audit_links_chain ON audit_links (tenant_id, chain_seq);
CREATE INDEX audit_links_record ON audit_links (record_id);

INSERT INTO audit_links (tenant_id, chain_seq, record_id, prev_hash, hash)
    SELECT tenant_id, chain_seq, id, prev_hash, hash FROM audit_records
    WHERE chain_seq IS NOT NULL;

-- How far the chainer got: every record with an id below `settled_below`
-- is linked, or never committed. Ids come from a sequence in the appending
-- transactions, so they become visible out of order; the chainer waits until
-- every transaction that was running when it read the sequence's position
-- (`pending_last_id`) has ended (`pending_transactions`, virtual transaction
-- ids from pg_locks) before it moves `settled_below` past that position.
CREATE TABLE audit_chainer (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    settled_below        bigint NOT NULL,
    pending_last_id      bigint,
    pending_transactions text[]
);
-- Migrations run before the host serves, so nothing is appending now.
INSERT INTO audit_chainer (settled_below)
    SELECT coalesce(
        (SELECT min(id) FROM audit_records WHERE chain_seq IS NULL),
        (SELECT max(id) + 1 FROM audit_records),
        1);

DROP INDEX audit_records_chain;
DROP INDEX audit_records_unchained;
-- Dropping the columns drops the host's column grant on them too: the host
-- can no longer UPDATE audit records at all.
ALTER TABLE audit_records DROP COLUMN chain_seq, DROP COLUMN prev_hash, DROP COLUMN hash;

GRANT SELECT, INSERT ON audit_links TO bookhost_app;
GRANT SELECT, UPDATE ON audit_chainer TO bookhost_app;
-- The chainer reads the sequence's position (nextval needs only USAGE).
GRANT SELECT ON SEQUENCE audit_records_id_seq TO bookhost_app;
