-- keyword_forms: one row per accepted spelling (form) of each keyword.
-- From: keywords (loaded from sql/keywords/*.csv or <lake>/keywords/*.csv by
-- ingest/views.py). Used by: keyword_pattern, message_scores.
-- English sets (inflect) also accept -s, -es, -ed, -ing; -d/-ing after a final e
-- (hired, hiring); -ies/-ied after consonant + y; a doubled final consonant
-- of one-syllable words (shipping). Endings go on the last word of a phrase.
create or replace view keyword_forms as

with keyword_list as (
    select lang, category, weight, keyword, extra_forms, inflect
    from keywords
),

plain_forms as (
    select lang, category, weight, keyword, keyword as form
    from keyword_list
),

listed_forms as (
    select lang, category, weight, keyword, unnest(extra_forms) as form
    from keyword_list
),

regular_endings as (
    select k.lang, k.category, k.weight, k.keyword, k.keyword || e.ending as form
    from keyword_list as k
    cross join (values ('s'), ('es'), ('ed'), ('ing')) as e (ending)
    where k.inflect
),

final_e_endings as (
    select k.lang, k.category, k.weight, k.keyword, k.keyword || 'd' as form
    from keyword_list as k
    where k.inflect and k.keyword like '%e'
    union all
    select k.lang, k.category, k.weight, k.keyword, left(k.keyword, -1) || 'ing'
    from keyword_list as k
    where k.inflect and k.keyword like '%e'
),

final_y_endings as (
    select k.lang, k.category, k.weight, k.keyword, left(k.keyword, -1) || e.ending
    from keyword_list as k
    cross join (values ('ies'), ('ied')) as e (ending)
    where k.inflect and regexp_matches(k.keyword, '[^aeiou]y$')
),

doubled_endings as (
    select
        k.lang, k.category, k.weight, k.keyword,
        k.keyword || right(k.keyword, 1) || e.ending
    from keyword_list as k
    cross join (values ('ed'), ('ing')) as e (ending)
    where k.inflect and regexp_matches(k.keyword, '^[^aeiou]*[aeiou][bdgmnprt]$')
),

all_forms as (
    select * from plain_forms
    union all select * from listed_forms
    union all select * from regular_endings
    union all select * from final_e_endings
    union all select * from final_y_endings
    union all select * from doubled_endings
),

final as (
    select distinct
        lang::varchar as lang,
        category::varchar as category,
        weight::double as weight,
        keyword::varchar as keyword,
        lower(form)::varchar as form
    from all_forms
)

select * from final
