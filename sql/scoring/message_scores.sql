-- message_scores: one row per message (message_key) with its opportunity score.
-- From: messages, and the variables keyword_pattern and keyword_<field> (the fields
-- of the lookup; see the view keyword_pattern). Used by: opportunities, the marts,
-- `walake export-chat`, notebooks.
-- score = sum over categories of weight x number of distinct keywords of that
-- category found in the text. System and deleted messages score 0.
-- Set-based and streaming: one regex pass finds the words that may be keyword forms
-- (nearly all are; see keyword_pattern), and a MAP built once maps each word to its
-- keyword id (no join, no grouping, no sort of the rows), so 10M rows stay cheap.
-- Most messages hit no keyword, one, or two: those take the cheap branches below, and
-- the list steps that cost (sorting, keeping distinct values) run only on the rest.
-- NOTE: in DuckDB a list step costs a few hundred instructions per row even on an
-- empty list, and a CASE whose branches give different lists copies them, so there
-- are few steps and only the ids take such a CASE; the categories are one bit each
-- and a message's sorted categories one list index (keyword_category_sets).
-- NOTE: the regex pass is ~45% of scoring CPU (~150 ns of DFA scan per message
-- plus ~150-200 ns per match); it is what cheaper word finding would have to beat.
create or replace view message_scores as

with message_rows as (
    select * from messages
),

-- Each match is one separator then the word (see keyword_pattern).
keyword_words as (
    select
        *,
        case
            when text is not null and not is_system and not is_deleted
                then regexp_extract_all(' ' || text, getvariable('keyword_pattern'), 0)
            else []::varchar[]
        end as words
    from message_rows
),

-- A word's keyword id, or null if it is no form. White space inside a word comes
-- only from a phrase: a line break for each space ("looking\nfor") is a key itself
-- (see keyword_pattern); other white space is made one space when the word as
-- found is no form (a MAP lookup scans its keys in order, so a miss costs the most).
-- A set whose forms are shared by keywords (keyword_shared_forms, a constant:
-- DuckDB keeps just one branch) maps each word to a list of ids instead.
keyword_hits as (
    select
        *,
        case
            when getvariable('keyword_shared_forms') then flatten([
                coalesce(
                    getvariable('keyword_form_ids')[lower(substring(w, 2))],
                    getvariable('keyword_form_ids')[
                        regexp_replace(lower(substring(w, 2)), '\s+', ' ', 'g')
                    ]
                )
                for w in words
            ])
            else [
                coalesce(
                    getvariable('keyword_form_id')[lower(substring(w, 2))],
                    getvariable('keyword_form_id')[
                        regexp_replace(lower(substring(w, 2)), '\s+', ' ', 'g')
                    ]
                )
                for w in words
            ]
        end as hit_ids
    from keyword_words
),

-- Distinct ids, ascending, without nulls: no hit, one hit, and two hits are ordered
-- directly; any other list is sorted (nulls last) and keeps an id unless it is null
-- or repeats the one before.
distinct_hits as (
    select
        *,
        case
            when len(hit_ids) = 0 or (len(hit_ids) = 1 and hit_ids[1] is not null)
                then hit_ids
            when len(hit_ids) = 2 and hit_ids[1] < hit_ids[2] then hit_ids
            when len(hit_ids) = 2 and hit_ids[1] > hit_ids[2]
                then [hit_ids[2], hit_ids[1]]
            when len(hit_ids) = 2 and hit_ids[1] = hit_ids[2] then [hit_ids[1]]
            else list_transform(
                [list_sort(hit_ids, 'ASC', 'NULLS LAST')],
                lambda s: list_filter(
                    s, lambda id, i: id is not null and (i = 1 or id <> s[i - 1])
                )
            )[1]
        end as keyword_ids
    from keyword_hits
),

scored as (
    select
        *,
        case len(keyword_ids)
            when 0 then 0
            when 1 then getvariable('keyword_weights')[keyword_ids[1]]
            else list_sum(list_transform(
                keyword_ids, lambda i: getvariable('keyword_weights')[i]
            ))
        end as score_value,
        case len(keyword_ids)  -- one bit per category hit (see keyword_pattern)
            when 0 then 0
            when 1 then getvariable('keyword_category_bits')[keyword_ids[1]]
            when 2 then getvariable('keyword_category_bits')[keyword_ids[1]]
                | getvariable('keyword_category_bits')[keyword_ids[2]]
            else list_aggregate(
                list_select(getvariable('keyword_category_bits'), keyword_ids),
                'bit_or'
            )
        end as category_mask
    from distinct_hits
),

final as (
    select
        message_key::varchar as message_key,
        chat_id::varchar as chat_id,
        chat_name::varchar as chat_name,
        sender_id::varchar as sender_id,
        sender_name::varchar as sender_name,
        is_from_me::boolean as is_from_me,
        sent_at::timestamptz as sent_at,  -- UTC
        sent_at_local::timestamp as sent_at_local,  -- local wall time
        text::varchar as text,
        score_value::double as score,
        case  -- distinct and sorted; a constant test: DuckDB keeps one branch
            when getvariable('keyword_category_sets') is not null
                then getvariable('keyword_category_sets')[category_mask + 1]
            else list_sort(list_distinct(
                list_select(getvariable('keyword_categories'), keyword_ids)
            ))
        end::varchar[] as categories,
        list_transform(  -- ids ascending give the keywords sorted
            keyword_ids, lambda i: getvariable('keyword_names')[i]
        )::varchar[] as keywords,
        (
            score_value >= getvariable('opportunity_threshold')
            and is_from_me is distinct from true
        )::boolean as is_opportunity
    from scored
)

select * from final
