-- The Citus layout (docs/SCALING.md) held against the catalog. Per-contact tables (contacts by
-- id, every table with a contact_id column) are distributed by their contact; the lookup
-- tables by their own key. On Citus every primary key and unique index of a distributed table
-- must include its distribution column, and a foreign key between distributed tables must pair
-- the two distribution columns (and none may point from a reference table into them). The
-- checks print the offending keys: none.
CREATE TEMP TABLE lookup (tbl regclass PRIMARY KEY, dist name NOT NULL);
INSERT INTO lookup VALUES ('journey.contact_keys', 'external_id');
CREATE TEMP VIEW distributed AS
SELECT c.oid::regclass AS tbl,
       coalesce(l.dist, CASE WHEN c.oid = 'journey.contacts'::regclass THEN 'id' ELSE 'contact_id' END)::name AS dist,
       CASE WHEN l.tbl IS NULL THEN 'per contact' ELSE 'lookup' END AS kind
  FROM pg_class c
  LEFT JOIN lookup l ON l.tbl = c.oid
 WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND (l.tbl IS NOT NULL OR c.oid = 'journey.contacts'::regclass
        OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'contact_id' AND NOT a.attisdropped));
CREATE TEMP VIEW offending_unique AS
SELECT d.tbl, i.indexrelid::regclass AS index
  FROM distributed d JOIN pg_index i ON i.indrelid = d.tbl
 WHERE i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = d.tbl AND a.attname = d.dist
                      AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]));
CREATE TEMP VIEW offending_foreign AS
SELECT k.conrelid::regclass AS tbl, k.conname, k.confrelid::regclass AS refers_to
  FROM pg_constraint k
  LEFT JOIN distributed f ON f.tbl = k.conrelid
  LEFT JOIN distributed t ON t.tbl = k.confrelid
 WHERE k.contype = 'f' AND (f.tbl IS NOT NULL OR t.tbl IS NOT NULL)
   AND t.tbl IS NOT NULL   -- a distributed table may refer to a reference table
   AND (f.tbl IS NULL OR NOT EXISTS (
        SELECT 1 FROM unnest(k.conkey, k.confkey) u (col, ref)
         WHERE u.col = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = f.tbl AND a.attname = f.dist)
           AND u.ref = (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = t.tbl AND a.attname = t.dist)));

-- the distributed tables and their distribution columns (every other table is a reference table)
SELECT kind, tbl, dist FROM distributed ORDER BY kind DESC, tbl::text;
-- the lookup table's primary key is its distribution column alone; it holds the contact
SELECT d.tbl, pg_get_constraintdef(k.oid) AS primary_key,
       (SELECT format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
          FROM pg_attribute a WHERE a.attrelid = d.tbl AND a.attname = 'contact_id') AS contact_id
  FROM distributed d JOIN pg_constraint k ON k.conrelid = d.tbl AND k.contype = 'p'
 WHERE d.kind = 'lookup';

-- the checks check something: unique keys and foreign keys between per-contact tables exist
SELECT (SELECT count(*) FROM distributed d JOIN pg_index i ON i.indrelid = d.tbl WHERE i.indisunique) > 0 AS unique_keys_checked,
       (SELECT count(*) FROM pg_constraint k JOIN distributed f ON f.tbl = k.conrelid
                                            JOIN distributed t ON t.tbl = k.confrelid WHERE k.contype = 'f') > 0 AS foreign_keys_checked;

-- unique keys (primary keys, unique constraints and indexes) without the distribution column
SELECT * FROM offending_unique ORDER BY tbl::text, index::text;
-- foreign keys into a distributed table that do not pair the distribution columns
SELECT * FROM offending_foreign ORDER BY tbl::text, conname;

-- what the checks would report: external_id unique on contacts (as before contact_keys), a
-- foreign key from a contact to its key row, one from a reference table into a per-contact table
BEGIN;
CREATE UNIQUE INDEX contacts_external_id_key ON journey.contacts (external_id);
ALTER TABLE journey.contacts ADD CONSTRAINT contacts_key_fk FOREIGN KEY (external_id) REFERENCES journey.contact_keys (external_id);
ALTER TABLE journey.groups ADD COLUMN owner bigint CONSTRAINT groups_owner_fk REFERENCES journey.contacts (id);
SELECT * FROM offending_unique ORDER BY tbl::text, index::text;
SELECT * FROM offending_foreign ORDER BY tbl::text, conname;
ROLLBACK;

-- every foreign key into a per-contact table (contacts, or one with contact_id: their rows are
-- deleted at volume by retention and forget_contact) is the leading columns of an index of its
-- table, in any order: the cascade probes an index instead of scanning the table once per
-- deleted row. (Keys into reference tables, deleted by an admin now and then, may scan.)
SELECT k.conrelid::regclass AS tbl, k.conname
  FROM pg_constraint k
 WHERE k.contype = 'f' AND k.connamespace = 'journey'::regnamespace
   AND (k.confrelid = 'journey.contacts'::regclass
        OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = k.confrelid AND a.attname = 'contact_id' AND NOT a.attisdropped))
   AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = k.conrelid
                     AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] @> k.conkey
                     AND (i.indkey::int2[])[0:cardinality(k.conkey) - 1] <@ k.conkey)
 ORDER BY 1, 2;
