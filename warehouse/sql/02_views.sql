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
       per.last_published, total.newest AS reference_date, half_life_years AS half_life_years
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

-- Prioritization (DESIGN.md §6): which techniques to build detections for first, each score with
-- its parts so an analyst can disagree with one of them.
--   prevalence  share of reports with a sighting, relative to the most frequent technique (0-1)
--   signal      exact level: the user's rating (priority_signal) of the technique, else of its parent,
--               else what the reports show: per report that sights it, the best fidelity among the
--               lexicon observables of it that the report's counted evidence names (high 1.0, medium
--               0.6, low 0.3; none: 0.5), averaged over those reports, so a technique is judged by how
--               attackers were seen doing it, not by the best detection the lexicon knows for it; no
--               report naming a rated observable: 0.5 (unrated). Parent level: the user's rating of the
--               parent, else the mean of its family members' signals weighted by how many reports sight
--               each (what you would detect)
--   collection  share of the technique's ATT&CK data components the user collects; 0.5 when ATT&CK
--               lists none; not scored (NULL, counts as 1) until the profile declares telemetry
--   priority    prevalence^w_prevalence * signal^w_signal * collection^w_collection
-- Kill chain: each technique is placed in the one of its tactics where it ranks best (ties: earlier in
-- the chain); `pick` lists every tactic's best technique first, then every tactic's second, and so
-- on (`pick_round`), so the first picks cover the chain instead of ten variants of one tactic. A
-- technique the user detects already (priority_detections) or whose priority is 0 (none of its data
-- components collected) is no candidate: it takes no round and comes last (pick_round NULL).
CREATE OR REPLACE VIEW technique_priority AS
WITH profile AS (
    SELECT p.telemetry, coalesce(p.w_prevalence, 1.0) AS w_prevalence, coalesce(p.w_signal, 1.0) AS w_signal,
           coalesce(p.w_collection, 1.0) AS w_collection
    FROM (SELECT 1) one LEFT JOIN (SELECT * FROM priority_profile LIMIT 1) p ON true
),
frequency AS (
    SELECT f.level, f.technique_id, f.technique_name, f.n_reports, f.share,
           f.share / max(f.share) OVER (PARTITION BY f.level) AS prevalence,
           max(f.n_reports) OVER (PARTITION BY f.level) AS most_reports,
           (SELECT count(*) FROM counted_reports) AS total_reports
    FROM technique_frequency f
),
own_rating AS (  -- the user's own rating of a technique, at either level
    SELECT technique_id, signal, 'your profile' || coalesce(': ' || note, '') AS reason
    FROM priority_signal QUALIFY row_number() OVER (PARTITION BY technique_id) = 1
),
rated_seen AS (  -- per report and technique: the best-rated lexicon observable its counted evidence names
    SELECT e.report_id, e.technique_id, r.observable, r.fidelity,
           CASE r.fidelity WHEN 'high' THEN 1.0 WHEN 'medium' THEN 0.6 ELSE 0.3 END AS signal
    FROM technique_evidence e
    JOIN lexicon_ratings r ON r.technique_id = e.technique_id AND r.observable = split_part(e.detail, ':', 1)
    WHERE e.method = 'lexicon' AND e.counted
    QUALIFY row_number() OVER (PARTITION BY e.report_id, e.technique_id
                               ORDER BY CASE r.fidelity WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END,
                                        r.observable) = 1
),
lexicon_shown AS (  -- each technique's signal as its reports show it: unrated (0.5) where none names one
    SELECT g.technique_id, avg(coalesce(v.signal, 0.5)) AS signal,
           'lexicon: ' || string_agg(DISTINCT v.observable || ' (' || v.fidelity || ')', ', ') || printf(
               ' in %d of %d reports', count(v.report_id), count(*)) AS reason
    FROM report_techniques g
    LEFT JOIN rated_seen v USING (report_id, technique_id)
    WHERE g.level = 'exact'
    GROUP BY g.technique_id HAVING count(v.report_id) > 0
),
lexicon_unseen AS (  -- rated observables that no report shows: named, not scored
    SELECT technique_id, 'unrated (no report shows what the lexicon rates: '
           || string_agg(observable || ' ' || fidelity, ', ' ORDER BY observable) || ')' AS reason
    FROM lexicon_ratings GROUP BY technique_id
),
exact_signal AS (  -- the user's rating of the technique, else of its parent, else the reports' observables
    SELECT f.technique_id, f.n_reports, t.parent_id,
           coalesce(o.signal, op.signal, l.signal, 0.5) AS signal,
           coalesce(o.reason, op.reason || ' (for ' || t.parent_id || ')', l.reason, u.reason, 'unrated') AS reason
    FROM frequency f
    JOIN attack_techniques t USING (technique_id)
    LEFT JOIN own_rating o USING (technique_id)
    LEFT JOIN own_rating op ON op.technique_id = t.parent_id AND t.is_subtechnique
    LEFT JOIN lexicon_shown l USING (technique_id)
    LEFT JOIN lexicon_unseen u USING (technique_id)
    WHERE f.level = 'exact'
),
family_signal AS (
    SELECT parent_id AS technique_id, sum(signal * n_reports) / sum(n_reports) AS signal,
           'family as sighted: ' || string_agg(printf('%s %.2f ×%d', technique_id, signal, n_reports), ', '
                                               ORDER BY n_reports DESC, technique_id) AS reason
    FROM exact_signal GROUP BY parent_id
),
components AS (
    SELECT t.technique_id,
           CASE WHEN len(t.data_components) > 0 THEN t.data_components
                ELSE coalesce((SELECT list_sort(list_distinct(flatten(list(s.data_components))))
                               FROM attack_techniques s WHERE s.parent_id = t.technique_id), []) END
               AS data_components
    FROM attack_techniques t
),
scored AS (
    SELECT f.*, c.data_components, p.w_prevalence, p.w_signal, p.w_collection,
           CASE f.level WHEN 'exact' THEN e.signal ELSE coalesce(o.signal, fs.signal, 0.5) END AS signal,
           CASE f.level WHEN 'exact' THEN e.reason ELSE coalesce(o.reason, fs.reason, 'unrated') END AS signal_reason,
           CASE WHEN p.telemetry IS NOT NULL
                THEN list_filter(c.data_components, lambda x: list_contains(p.telemetry, x)) END AS collected,
           CASE WHEN p.telemetry IS NOT NULL
                THEN list_filter(c.data_components, lambda x: NOT list_contains(p.telemetry, x)) END AS missing
    FROM frequency f
    CROSS JOIN profile p
    LEFT JOIN components c USING (technique_id)
    LEFT JOIN exact_signal e ON f.level = 'exact' AND e.technique_id = f.technique_id
    LEFT JOIN own_rating o ON o.technique_id = f.technique_id
    LEFT JOIN family_signal fs ON fs.technique_id = f.technique_id
),
prioritized AS (
    SELECT *,
           CASE WHEN collected IS NULL THEN NULL
                WHEN len(data_components) = 0 THEN 0.5
                ELSE len(collected) / len(data_components) END AS collection
    FROM scored
),
detected AS (  -- what the user detects already: a technique listed (or its parent); a parent, when it is
              -- listed or every member of its family that reports sight is
    SELECT 'exact' AS level, f.technique_id
    FROM frequency f JOIN attack_techniques t USING (technique_id)
    WHERE f.level = 'exact' AND (f.technique_id IN (SELECT technique_id FROM priority_detections)
                                 OR t.parent_id IN (SELECT technique_id FROM priority_detections))
    UNION
    SELECT 'parent', t.parent_id
    FROM frequency f JOIN attack_techniques t USING (technique_id)
    WHERE f.level = 'exact'
    GROUP BY t.parent_id
    HAVING t.parent_id IN (SELECT technique_id FROM priority_detections)
        OR bool_and(f.technique_id IN (SELECT technique_id FROM priority_detections))
),
final AS (
    SELECT p.*, d.technique_id IS NOT NULL AS detected,
           pow(prevalence, w_prevalence) * pow(signal, w_signal) * pow(coalesce(collection, 1.0), w_collection)
               AS priority
    FROM prioritized p LEFT JOIN detected d USING (level, technique_id)
),
candidates AS (  -- what is left to pick: not detected already, and something of it is seen
    SELECT *, NOT detected AND priority > 0 AS candidate FROM final
),
per_tactic AS (
    SELECT c.level, c.technique_id, tt.tactic, a.kill_chain_order,
           row_number() OVER (PARTITION BY c.level, tt.tactic, c.candidate ORDER BY c.priority DESC, c.technique_id)
               AS rank_in_tactic
    FROM candidates c
    JOIN attack_technique_tactics tt USING (technique_id)
    JOIN attack_tactics a ON a.shortname = tt.tactic
),
home AS (
    SELECT * FROM per_tactic
    QUALIFY row_number() OVER (PARTITION BY level, technique_id ORDER BY rank_in_tactic, kill_chain_order) = 1
),
placed AS (
    SELECT c.*, h.tactic, h.kill_chain_order,
           CASE WHEN c.candidate THEN row_number() OVER (PARTITION BY c.level, h.tactic, c.candidate
                                                         ORDER BY c.priority DESC, c.technique_id) END AS pick_round
    FROM candidates c LEFT JOIN home h USING (level, technique_id)
)
SELECT level,
       row_number() OVER (PARTITION BY level ORDER BY NOT candidate, detected, pick_round, priority DESC,
                                                      technique_id) AS pick,
       pick_round, tactic, technique_id, technique_name, n_reports, share,
       round(prevalence, 4) AS prevalence, round(signal, 4) AS signal, signal_reason,
       round(collection, 4) AS collection, data_components, collected, missing,
       round(priority, 4) AS priority,
       rank() OVER (PARTITION BY level ORDER BY priority DESC) AS priority_rank, detected,
       printf('prevalence %.2f (%d of %d reports; the most frequent, %d) · signal %.2f (%s) · collection %s',
              prevalence, n_reports, total_reports, most_reports, signal, signal_reason,
              CASE WHEN collection IS NULL THEN 'not scored (no telemetry declared)'
                   WHEN len(data_components) = 0 THEN '0.50 (ATT&CK lists no data component)'
                   WHEN len(missing) = 0 THEN printf('%.2f (all %d data components)', collection,
                                                     len(data_components))
                   ELSE printf('%.2f (%d of %d data components; missing %s)', collection, len(collected),
                               len(data_components), array_to_string(missing, ', ')) END)
       || CASE WHEN w_prevalence = 1 AND w_signal = 1 AND w_collection = 1 THEN ''
               ELSE printf(' · weights %.2f / %.2f / %.2f', w_prevalence, w_signal, w_collection) END
       || CASE WHEN detected THEN ' · detected already (your profile)' ELSE '' END AS why
FROM placed;
