-- The reference server's schema. Applied once by OpenPostgres, recorded in schema_migrations.

-- Items. seq gives the listing order (creation order); version is the PATCH version and ETag.
CREATE TABLE items (
    id        uuid PRIMARY KEY,
    seq       bigserial NOT NULL,
    sku       text NOT NULL,
    name      text NOT NULL,
    price     bigint NOT NULL,
    -- Even the check-then-act fault keeps stock non-negative: its racy write-back computes the
    -- stock from a read that saw enough units (stale, but >= the quantity), so the injected
    -- oversell shows as more orders than units taken, never as a negative stock.
    stock     bigint NOT NULL CHECK (stock >= 0),
    version   bigint NOT NULL DEFAULT 1,
    -- unchecked marks rows written by the check-then-act fault (Options.CheckThenAct or
    -- ReplicaLock), which checks the SKU with a plain SELECT and then inserts regardless.
    unchecked boolean NOT NULL DEFAULT false
);

CREATE INDEX items_by_seq ON items (seq);

-- A SKU names at most one item. The index leaves out unchecked rows: otherwise PostgreSQL
-- itself would reject the duplicate that the check-then-act fault exists to inject, and the
-- faulty store would look correct. A correct store never writes unchecked rows, so for it the
-- constraint is complete; CreateItem relies on its unique violation (23505) to detect a taken
-- SKU atomically.
CREATE UNIQUE INDEX items_sku_unique ON items (sku) WHERE NOT unchecked;

-- Lookups by SKU (listing, finding the existing owner of a SKU), unchecked rows included.
CREATE INDEX items_by_sku ON items (sku, seq);

-- Orders. item_id is deliberately NOT a foreign key: the delete-orphan fault
-- (Options.SkipDependents) must be able to delete an item that placed orders still reference.
CREATE TABLE orders (
    id       uuid PRIMARY KEY,
    item_id  uuid NOT NULL,
    quantity bigint NOT NULL,
    status   text NOT NULL CHECK (status IN ('placed', 'cancelled', 'shipped'))
);

-- DeleteItem looks for the placed orders of an item.
CREATE INDEX orders_placed_by_item ON orders (item_id) WHERE status = 'placed';

-- Idempotency keys: in flight (claimed, lease_until bounds the claim) or completed (the stored
-- response is replayed).
CREATE TABLE idempotency_keys (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,
    in_flight   boolean NOT NULL,
    lease_until timestamptz NOT NULL,
    status      integer NOT NULL DEFAULT 0,
    location    text NOT NULL DEFAULT '',
    body        bytea
);
