"""Migration 4: recency lexemes in the search documents of PostgreSQL.

Each current version's document also carries the lexeme '@<n>' of its place in store order
(`n = seq >> RECENCY_BITS`: one lexeme per 65,536 seqs), so that a search for a frequent
word can ask the GIN index for the newest matches alone ("source & ('@15' | '@14')") and
read only their rows, instead of every match's (`bices.store.pg_search`). No word of a
report or a query can be such a lexeme: '@' separates words in the `bices` configuration.
"""

from __future__ import annotations

RECENCY_BITS = 16

SCHEMA = f"""
CREATE OR REPLACE FUNCTION bices_current_document() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    title text;
    body text;
    label tsvector := array_to_tsvector(ARRAY['#' || NEW.label_id,
                                              '@' || (NEW.seq >> {RECENCY_BITS})]);
BEGIN
    SELECT v.title, v.body INTO title, body FROM report_versions v WHERE v.seq = NEW.seq;
    IF octet_length(body) < 250000 THEN  -- far below the limit: no subtransaction
        NEW.document := setweight(to_tsvector('bices', title), 'A')
            || setweight(to_tsvector('bices', body), 'B') || label;
        RETURN NEW;
    END IF;
    LOOP
        BEGIN
            NEW.document := setweight(to_tsvector('bices', title), 'A')
                || setweight(to_tsvector('bices', body), 'B') || label;
            RETURN NEW;
        EXCEPTION WHEN program_limit_exceeded THEN
            body := left(body, length(body) / 2);
        END;
    END LOOP;
END $$;
UPDATE current_reports
    SET document = document || array_to_tsvector(ARRAY['@' || (seq >> {RECENCY_BITS})]);
"""
