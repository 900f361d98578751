-- breachminer warehouse: raw tables (DESIGN.md §5). Applied on every read-write connection;
-- every statement is idempotent. Views live in 02_views.sql.

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR
);

-- ATT&CK catalog, reloaded when the catalog's version or content changes -----------------
CREATE TABLE IF NOT EXISTS attack_tactics (
    tactic_id        VARCHAR,   -- TA0003
    shortname        VARCHAR,   -- persistence
    name             VARCHAR,   -- Persistence
    kill_chain_order INTEGER    -- 1 = reconnaissance … 14 = impact
);

CREATE TABLE IF NOT EXISTS attack_techniques (
    technique_id     VARCHAR,   -- T1059.001
    name             VARCHAR,   -- PowerShell
    parent_id        VARCHAR,   -- T1059 (own ID for parent techniques)
    is_subtechnique  BOOLEAN,
    tactics          VARCHAR[], -- shortnames in kill-chain order
    platforms        VARCHAR[],
    data_components  VARCHAR[], -- ATT&CK v18 detection data components
    log_sources      VARCHAR[], -- e.g. WinEventLog:Security
    deprecated       BOOLEAN,
    attack_version   VARCHAR
);

CREATE TABLE IF NOT EXISTS attack_technique_tactics (
    technique_id     VARCHAR,
    tactic           VARCHAR    -- tactic shortname
);

CREATE TABLE IF NOT EXISTS attack_revocations (
    revoked_id       VARCHAR,   -- T1086
    revoked_name     VARCHAR,
    replaced_by      VARCHAR    -- T1059.001 (as ATT&CK says; chains resolved when tagging)
);

-- Reports and where they came from --------------------------------------------------------
CREATE TABLE IF NOT EXISTS reports (
    report_id        VARCHAR PRIMARY KEY, -- first 16 hex digits of text_sha256
    text_sha256      VARCHAR,   -- SHA-256 of the normalised text (lowercase words)
    title            VARCHAR,
    publisher        VARCHAR,
    published        DATE,
    published_year   INTEGER,
    kind             VARCHAR,   -- pdf | html | text
    n_chars          INTEGER,
    n_pages          INTEGER,
    n_sentences      INTEGER,
    status           VARCHAR,   -- ok
    minhash          UBIGINT[], -- near-duplicate signature (PDF/HTML twins)
    first_source     VARCHAR,
    tagger_versions  VARCHAR,   -- JSON {method: version}
    notes            VARCHAR,
    ingested_at      TIMESTAMP,
    run_id           VARCHAR
);

CREATE TABLE IF NOT EXISTS report_sources (
    source           VARCHAR,   -- path or URL as given
    content_sha256   VARCHAR,   -- SHA-256 of the bytes
    report_id        VARCHAR,
    kind             VARCHAR,
    n_bytes          BIGINT,
    status           VARCHAR,   -- new | same-text | twin (near-duplicate of report_id) | revision (a new
                                -- version of report_id from the source it was read from; replaced its text)
                                -- | re-extracted (the same bytes read again by a newer text extraction)
    twin_similarity  DOUBLE,
    fetched_at       TIMESTAMP,
    etag             VARCHAR,
    last_modified    VARCHAR,
    manifest_title   VARCHAR,
    manifest_publisher VARCHAR,
    manifest_published DATE,
    run_id           VARCHAR
);

CREATE TABLE IF NOT EXISTS sentences (
    report_id        VARCHAR,
    sentence_index   INTEGER,
    start_char       INTEGER,   -- offsets into the report's normalised text
    end_char         INTEGER,
    text             VARCHAR
);

CREATE TABLE IF NOT EXISTS mentions (
    report_id        VARCHAR,
    sentence_index   INTEGER,
    technique_id     VARCHAR,   -- normalised current ID; NULL = unknown ID (evidence, never counted)
    cited            VARCHAR,   -- text as the report wrote it
    method           VARCHAR,   -- id | name | lexicon | classifier
    score            DOUBLE,
    match_start      INTEGER,   -- offsets of the match inside the sentence
    match_end        INTEGER,
    detail           VARCHAR,   -- rule: lexicon key:fidelity, name origin:strength, id status
    tagger_version   VARCHAR,
    model_version    VARCHAR
);

CREATE TABLE IF NOT EXISTS sightings (
    report_id        VARCHAR,
    technique_id     VARCHAR,   -- exact level; parent level is derived in views
    score            DOUBLE,    -- combined evidence (noisy-OR), 0-1
    methods          VARCHAR[],
    n_mentions       INTEGER,
    n_sentences      INTEGER,
    rule             VARCHAR
);

-- Operations ------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS failures (
    source           VARCHAR PRIMARY KEY,
    stage            VARCHAR,   -- fetch | read | extract | sentences | tag | load
    error_class      VARCHAR,
    message          VARCHAR,
    attempts         INTEGER,
    first_failed_at  TIMESTAMP,
    last_failed_at   TIMESTAMP,
    resolved_at      TIMESTAMP, -- set when a later run succeeds
    run_id           VARCHAR
);
-- defender advice ("Audit user accounts…"): its mentions count only as explicit IDs (sighting rules v3 on);
-- NULL = loaded before the rule and not retagged since
ALTER TABLE sentences ADD COLUMN IF NOT EXISTS advice BOOLEAN;
-- added with fetching (older warehouses gain them in place)
ALTER TABLE failures ADD COLUMN IF NOT EXISTS http_status INTEGER;
ALTER TABLE failures ADD COLUMN IF NOT EXISTS content_sha256 VARCHAR;   -- bytes that failed (local files, cache)
ALTER TABLE failures ADD COLUMN IF NOT EXISTS next_retry_at TIMESTAMP;  -- a run before this skips the source
ALTER TABLE failures ADD COLUMN IF NOT EXISTS gave_up_at TIMESTAMP;     -- set after BREACHMINER_MAX_ATTEMPTS

-- What each URL served last time: validators for conditional GET and the bytes in the raw cache.
CREATE TABLE IF NOT EXISTS fetch_state (
    url              VARCHAR PRIMARY KEY,
    final_url        VARCHAR,   -- after redirects
    etag             VARCHAR,
    last_modified    VARCHAR,
    content_sha256   VARCHAR,   -- the body last received (raw cache key)
    content_type     VARCHAR,
    n_bytes          BIGINT,
    is_feed          BOOLEAN,
    fetched_at       TIMESTAMP, -- last 200
    checked_at       TIMESTAMP, -- last contact (200 or 304)
    n_not_modified   INTEGER    -- 304s received
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    flow_run_id      VARCHAR,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    status           VARCHAR,   -- running | completed | crashed
    n_sources        INTEGER,
    n_new            INTEGER,   -- new reports loaded
    n_unchanged      INTEGER,   -- same bytes already in the warehouse
    n_duplicate      INTEGER,   -- new bytes, but the same report (same text or PDF/HTML twin)
    n_failed         INTEGER,
    n_sightings      INTEGER,   -- net sightings added: new, revised and re-scored reports
    inputs           VARCHAR    -- JSON list of inputs
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_deferred INTEGER;       -- failed before, not due for a retry yet
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_downloaded INTEGER;     -- HTTP bodies received
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_not_modified INTEGER;   -- HTTP 304s
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_revised INTEGER;        -- reports replaced by a new version of their source
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_retagged INTEGER;       -- reports re-scored: decided by another model or rule
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_reextracted INTEGER;    -- reports read again: an older extraction made their text
ALTER TABLE runs ADD COLUMN IF NOT EXISTS retag_error VARCHAR;      -- why some stale reports were not re-scored (the next run retries)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS exported VARCHAR[];        -- files written by --export-dir
ALTER TABLE runs ADD COLUMN IF NOT EXISTS export_error VARCHAR;      -- why the exports were not written

-- Prioritization inputs (DESIGN.md §6; README "Prioritization") -----------------------------
-- The lexicon's observables and their fidelity ratings, the signal-to-noise a technique gets by
-- default; replaced whole from extractors/data/lexicon.yaml by every ingest and prioritize.
CREATE TABLE IF NOT EXISTS lexicon_ratings (
    technique_id     VARCHAR,
    observable       VARCHAR,   -- the lexicon entry's key, e.g. mshta
    fidelity         VARCHAR    -- high | medium | low
);

-- The user's profile (`breachminer prioritize --profile FILE`), replaced whole by each one stored.
-- No row: nothing declared (every weight 1, collection not scored).
CREATE TABLE IF NOT EXISTS priority_profile (
    source           VARCHAR,   -- the file it was read from
    stored_at        TIMESTAMP,
    telemetry        VARCHAR[], -- ATT&CK data components collected; NULL: not declared
    w_prevalence     DOUBLE,    -- exponents of the parts in the priority
    w_signal         DOUBLE,
    w_collection     DOUBLE
);

CREATE TABLE IF NOT EXISTS priority_signal (
    technique_id     VARCHAR,   -- the user's own signal-to-noise rating, overriding the lexicon's
    signal           DOUBLE,    -- 0-1
    note             VARCHAR
);

CREATE TABLE IF NOT EXISTS priority_detections (
    technique_id     VARCHAR    -- a technique the user detects already (a parent: all of it)
);

-- A manifest that gives only a year wins over the document's own date in another year (warehouses
-- written before that rule kept both, so views filed the report under two years): set the date aside.
UPDATE reports
SET notes = concat_ws('; ', notes, 'document date ' || strftime(published, '%Y-%m-%d')
                                   || ' set aside: the manifest says ' || published_year),
    published = NULL
WHERE published IS NOT NULL AND published_year IS NOT NULL AND year(published) <> published_year;

-- Reports taken out of the warehouse by `breachminer forget`: their bytes and text are skipped by later
-- ingests (counted `runs.n_forgotten`) until `forget --restore` deletes the row.
CREATE TABLE IF NOT EXISTS forgotten (
    report_id        VARCHAR PRIMARY KEY,
    text_sha256      VARCHAR,
    title            VARCHAR,
    sources          VARCHAR[],  -- every source the report had
    content_sha256s  VARCHAR[],  -- the bytes each gave
    reason           VARCHAR,
    forgotten_at     TIMESTAMP
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_forgotten INTEGER;      -- sources skipped: their report was forgotten
