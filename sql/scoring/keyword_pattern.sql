-- keyword_pattern: one row: the RE2 patterns that find keyword forms in a text, and
-- the lookup from a found form to its keywords.
-- From: keyword_forms. Used by: ingest/views.py, which stores them in the variables
-- keyword_prefilter, keyword_pattern and keyword_lookup that message_scores reads
-- (constants: each pattern is compiled once, and scoring needs no join or grouping).
-- prefilter: a plain case-insensitive alternation of the forms, no groups and no
-- character classes: a cheap test that a text may hold a keyword at all.
-- pattern: run on ' ' || text, every match is one separator then a whole word (or
-- phrase) that starts with a form; substring(match, 2) is that word, so the caller
-- can keep only exact forms: "ideal" never starts a match (a letter precedes "deal"),
-- and "dealer" is found whole and then dropped. No capture group: RE2 finds whole
-- matches with its DFA alone. Spaces in phrases match any white space, line breaks
-- too. Separators are white space, ASCII and Latin-1 punctuation and symbols, general
-- punctuation to arrows (U+2000-2BFF), CJK punctuation, variation selectors,
-- fullwidth punctuation and emoji (U+1F000-1FAFF); every other character (letters of
-- any script, accents, digits, "_") is part of a word, so "urgenté" or "срочноurgent"
-- is not "urgent". Only the forms are case-insensitive: under (?i) the separator
-- ranges would also take in letters that case-fold into them (K, k, Å, å, Ω, ω via the
-- Kelvin, Angstrom and Ohm signs). (Listing separators is 3x faster in RE2 than the
-- Unicode classes \p{L}\p{M}\p{N}.)
-- lookup.form_keywords maps a found form (lower case, white space runs as one space)
-- to its keyword ids; ids follow (keyword, category), so ids in ascending order give
-- the keywords sorted.
create or replace view keyword_pattern as

with distinct_forms as (
    select distinct form
    from keyword_forms
),

-- A form that starts with a shorter form adds nothing: the shorter one's match
-- already runs on to the end of the word ("deal" finds "deals").
word_starts as (
    select form
    from distinct_forms as f
    where not exists (
        select 1 from distinct_forms as g
        where g.form <> f.form and starts_with(f.form, g.form)
    )
),

escaped as (
    select
        form,
        replace(regexp_escape(form), '\ ', '\s+') as form_pattern
    from word_starts
),

separators as (
    select
        '\x{0}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{5E}\x{60}\x{7B}-\x{BF}\x{D7}\x{F7}'
        || '\x{2000}-\x{2BFF}\x{3000}-\x{303F}\x{FE00}-\x{FE0F}\x{FF00}-\x{FF0F}'
        || '\x{1F000}-\x{1FAFF}' as ranges
),

keyword_ids as (
    select
        category,
        keyword,
        max(weight) as weight,
        row_number() over (order by keyword, category) as keyword_id
    from keyword_forms
    group by category, keyword
),

form_ids as (
    select f.form, list_sort(list(k.keyword_id)) as keyword_ids
    from keyword_forms as f
    inner join keyword_ids as k on f.category = k.category and f.keyword = k.keyword
    group by f.form
),

lookup as (
    select
        (select map(list(form), list(keyword_ids)) from form_ids) as form_keywords,
        (select list(keyword order by keyword_id) from keyword_ids) as keywords,
        (select list(category order by keyword_id) from keyword_ids) as categories,
        (select list(weight order by keyword_id) from keyword_ids) as weights
),

final as (
    select
        (
            '(?i:' || string_agg(e.form_pattern, '|' order by length(e.form) desc, e.form)
            || ')'
        )::varchar as prefilter,
        (
            '[' || any_value(s.ranges) || '](?i:'
            || string_agg(e.form_pattern, '|' order by length(e.form) desc, e.form)
            || ')[^' || any_value(s.ranges) || ']*'
        )::varchar as pattern,
        struct_pack(
            form_keywords := any_value(l.form_keywords)::map(varchar, bigint[]),
            keywords := any_value(l.keywords)::varchar[],
            categories := any_value(l.categories)::varchar[],
            weights := any_value(l.weights)::double[]
        ) as lookup
    from escaped as e
    cross join separators as s
    cross join lookup as l
)

select * from final
