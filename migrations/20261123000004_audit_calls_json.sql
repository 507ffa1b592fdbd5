-- The calls of an audit record as `json` text, not `jsonb`: appending is on
-- every invocation's path and `jsonb` costs a parse into its binary form,
-- while a record is written once and read rarely (searches cast to jsonb).
-- `json` also accepts every string an executor can pass (jsonb refuses
-- \u0000), so no call can make its own record unwritable.
ALTER TABLE audit_records ALTER COLUMN calls TYPE json USING calls::json;
