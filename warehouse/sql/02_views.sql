-- breachminer marts (DESIGN.md §4–5). Layered: report_techniques (one row per report and
-- technique at both levels) → technique_frequency / tactic_technique_frequency → tactic_coverage.
-- Columns of every view are documented in the README.

-- Reports that count: extracted text, loaded.
CREATE OR REPLACE VIEW counted_reports AS
SELECT * FROM reports WHERE status = 'ok';

-- One row per (report, technique) sighting at the exact level and again at the parent level.
CREATE OR REPLACE VIEW report_techniques AS
WITH exact AS (
    SELECT s.report_id, s.technique_id, s.score, s.methods, s.n_mentions, s.n_sentences
    FROM sightings s
    JOIN counted_reports r USING (report_id)
),
parent AS (
    SELECT e.report_id, t.parent_id AS technique_id, max(e.score) AS score,
           list_sort(list_distinct(flatten(list(e.methods)))) AS methods,
           sum(e.n_mentions)::INTEGER AS n_mentions, sum(e.n_sentences)::INTEGER AS n_sentences
    FROM exact e JOIN attack_techniques t USING (technique_id)
    GROUP BY e.report_id, t.parent_id
)
SELECT l.level, l.report_id, r.title, r.publisher, r.published, r.published_year AS year,
       l.technique_id, t.name AS technique_name, t.parent_id, t.tactics,
       l.score, l.methods, l.n_mentions, l.n_sentences
FROM (SELECT 'exact' AS level, * FROM exact UNION ALL SELECT 'parent' AS level, * FROM parent) l
JOIN attack_techniques t USING (technique_id)
JOIN counted_reports r USING (report_id);

-- Overall frequency: reports with a sighting, share of reports with text, rank.
CREATE OR REPLACE VIEW technique_frequency AS
WITH total AS (SELECT count(*) AS n FROM counted_reports)
SELECT level, technique_id, any_value(technique_name) AS technique_name,
       any_value(tactics) AS tactics,
       count(DISTINCT report_id) AS n_reports,
       round(count(DISTINCT report_id) / any_value(total.n), 4) AS share,
       rank() OVER (PARTITION BY level ORDER BY count(DISTINCT report_id) DESC) AS rank,
       min(published) AS first_published, max(published) AS last_published
FROM report_techniques, total
GROUP BY level, technique_id;

-- Frequency within each tactic (a technique belongs to every tactic ATT&CK lists for it).
CREATE OR REPLACE VIEW tactic_technique_frequency AS
WITH per AS (
    SELECT tt.tactic, f.level, f.technique_id, f.technique_name, f.n_reports, f.share AS report_share
    FROM technique_frequency f
    JOIN attack_technique_tactics tt USING (technique_id)
),
ranked AS (
    SELECT per.*,
           row_number() OVER w AS rank_in_tactic,
           sum(n_reports) OVER (PARTITION BY tactic, level) AS tactic_sightings,
           sum(n_reports) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
    FROM per
    WINDOW w AS (PARTITION BY tactic, level ORDER BY n_reports DESC, technique_id)
)
SELECT a.kill_chain_order, r.tactic, a.name AS tactic_name, r.level, r.rank_in_tactic,
       r.technique_id, r.technique_name, r.n_reports, r.report_share,
       round(r.n_reports / r.tactic_sightings, 4) AS share_in_tactic,
       round(r.running / r.tactic_sightings, 4) AS cumulative_share
FROM ranked r JOIN attack_tactics a ON a.shortname = r.tactic;

-- How concentrated each tactic is: techniques needed to cover 50/80/90 % of its sightings,
-- next to how many techniques ATT&CK defines for it.
CREATE OR REPLACE VIEW tactic_coverage AS
WITH defined AS (
    SELECT tt.tactic, lv.level,
           count(*) FILTER (WHERE NOT t.deprecated AND (lv.level = 'exact' OR NOT t.is_subtechnique))
               AS techniques_defined
    FROM attack_technique_tactics tt
    JOIN attack_techniques t USING (technique_id)
    CROSS JOIN (VALUES ('exact'), ('parent')) lv(level)
    GROUP BY tt.tactic, lv.level
),
seen AS (
    SELECT tactic, level,
           count(*) AS techniques_seen,
           sum(n_reports) AS sightings,
           min(rank_in_tactic) FILTER (WHERE cumulative_share >= 0.5) AS techniques_for_50pct,
           min(rank_in_tactic) FILTER (WHERE cumulative_share >= 0.8) AS techniques_for_80pct,
           min(rank_in_tactic) FILTER (WHERE cumulative_share >= 0.9) AS techniques_for_90pct
    FROM tactic_technique_frequency
    GROUP BY tactic, level
)
SELECT a.kill_chain_order, a.shortname AS tactic, a.name AS tactic_name, d.level,
       d.techniques_defined, coalesce(s.techniques_seen, 0) AS techniques_seen,
       coalesce(s.sightings, 0) AS sightings,
       s.techniques_for_50pct, s.techniques_for_80pct, s.techniques_for_90pct
FROM defined d
JOIN attack_tactics a ON a.shortname = d.tactic
LEFT JOIN seen s ON s.tactic = d.tactic AND s.level = d.level;

-- Per publication year, with the change in share from the previous year that has reports.
CREATE OR REPLACE VIEW technique_frequency_by_year AS
WITH per_year AS (
    SELECT published_year AS year, count(*) AS year_reports
    FROM counted_reports WHERE published_year IS NOT NULL GROUP BY published_year
),
counts AS (
    SELECT level, year, technique_id, any_value(technique_name) AS technique_name,
           count(DISTINCT report_id) AS n_reports
    FROM report_techniques WHERE year IS NOT NULL
    GROUP BY level, year, technique_id
)
SELECT c.level, c.year, c.technique_id, c.technique_name, c.n_reports, y.year_reports,
       round(c.n_reports / y.year_reports, 4) AS share,
       round(c.n_reports / y.year_reports
             - lag(c.n_reports / y.year_reports) OVER (PARTITION BY c.level, c.technique_id ORDER BY c.year), 4)
           AS share_change
FROM counts c JOIN per_year y USING (year);

-- Time-decayed prevalence: recent reports weigh more. A report's weight halves every
-- `half_life_years` before the newest dated report (a fixed point, so the table does not drift while
-- no report arrives); a report dated by year only counts from 1 July. Undated reports are left out.
-- `share` is the plain share over the same dated reports; `trend` = decayed_share - share (> 0: the
-- technique is reported more in recent reports than over the whole period).
CREATE OR REPLACE MACRO technique_prevalence_decayed(half_life_years := 3.0) AS TABLE
WITH dated AS (
    SELECT report_id, coalesce(published, make_date(published_year, 7, 1)) AS report_date
    FROM counted_reports WHERE published IS NOT NULL OR published_year IS NOT NULL
),
weighted AS (
    SELECT report_id, report_date,
           pow(0.5, date_diff('day', report_date, max(report_date) OVER ()) / (365.25 * half_life_years))
               AS weight
    FROM dated
),
total AS (SELECT count(*) AS n, sum(weight) AS w, max(report_date) AS newest FROM weighted),
per AS (
    SELECT rt.level, rt.technique_id, any_value(rt.technique_name) AS technique_name,
           any_value(rt.tactics) AS tactics, count(*) AS n_reports, sum(w.weight) AS weight,
           max(w.report_date) AS last_published
    FROM report_techniques rt JOIN weighted w USING (report_id)
    GROUP BY rt.level, rt.technique_id
)
SELECT per.level, per.technique_id, per.technique_name, per.tactics, per.n_reports,
       total.n AS dated_reports, round(per.n_reports / total.n, 4) AS share,
       round(per.weight / total.w, 4) AS decayed_share,
       round(per.weight / total.w - per.n_reports / total.n, 4) AS trend,
       rank() OVER (PARTITION BY per.level ORDER BY per.weight DESC) AS rank,
       per.last_published, total.newest AS reference_date, half_life_years
FROM per, total;

CREATE OR REPLACE VIEW technique_prevalence AS
SELECT * FROM technique_prevalence_decayed();

-- Per publisher (names compared without case or surrounding spaces; reports without one are left out):
-- what each vendor reports most, so one prolific vendor's emphasis can be told apart from a trend.
CREATE OR REPLACE VIEW technique_frequency_by_publisher AS
WITH publishers AS (
    SELECT lower(trim(publisher)) AS publisher_key, min(publisher) AS publisher, count(*) AS publisher_reports
    FROM counted_reports WHERE nullif(trim(publisher), '') IS NOT NULL
    GROUP BY 1
),
counts AS (
    SELECT level, lower(trim(publisher)) AS publisher_key, technique_id, any_value(technique_name) AS technique_name,
           count(DISTINCT report_id) AS n_reports
    FROM report_techniques WHERE nullif(trim(publisher), '') IS NOT NULL
    GROUP BY 1, 2, 3
)
SELECT c.level, p.publisher, c.technique_id, c.technique_name, c.n_reports, p.publisher_reports,
       round(c.n_reports / p.publisher_reports, 4) AS share,
       rank() OVER (PARTITION BY c.level, c.publisher_key ORDER BY c.n_reports DESC) AS rank_in_publisher
FROM counts c JOIN publishers p USING (publisher_key);

-- Drill-down: every mention behind a sighting, with its sentence. A mention in an advice sentence
-- is not counted unless it is an explicit ID.
CREATE OR REPLACE VIEW technique_evidence AS
SELECT m.report_id, r.title, r.publisher, r.published, t.parent_id, m.technique_id,
       t.name AS technique_name, m.method, m.score, m.cited, m.detail, m.sentence_index,
       s.text AS sentence, s.advice, m.tagger_version, m.model_version,
       EXISTS (SELECT 1 FROM sightings g WHERE g.report_id = m.report_id
               AND g.technique_id = m.technique_id)
       AND (m.method = 'id' OR NOT coalesce(s.advice, false)) AS counted
FROM mentions m
JOIN counted_reports r USING (report_id)
JOIN attack_techniques t USING (technique_id)
JOIN sentences s ON s.report_id = m.report_id AND s.sentence_index = m.sentence_index;
