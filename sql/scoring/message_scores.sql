-- message_scores: one row per message (message_key) with its opportunity score.
-- From: messages, and the variables keyword_pattern and keyword_lookup (see the view
-- keyword_pattern). Used by: opportunities, the marts, `walake export-chat`,
-- notebooks.
-- score = sum over categories of weight x number of distinct keywords of that
-- category found in the text. System and deleted messages score 0.
-- Set-based and streaming: one regex pass finds the words that may be keyword forms
-- (nearly all are; see keyword_pattern), and a MAP built once maps each word to
-- keyword ids (no join, no grouping, no sort of the rows), so 10M rows stay cheap.
-- Most messages hit no keyword or one, so the list steps that cost (sorting,
-- keeping distinct values) run only on messages with more.
create or replace view message_scores as

with message_rows as (
    select * from messages
),

-- Each match is one separator then the word (see keyword_pattern); white space inside
-- a word comes only from a phrase ("looking\nfor") and is made one space when the
-- word as found is no form. One list comprehension per message turns the matches
-- into keyword ids (a word that is no form gives none).
keyword_hits as (
    select
        *,
        case
            when text is not null and not is_system and not is_deleted
                then flatten([
                    coalesce(
                        getvariable('keyword_lookup').form_keywords[
                            lower(substring(m, 2))
                        ],
                        getvariable('keyword_lookup').form_keywords[
                            regexp_replace(lower(substring(m, 2)), '\s+', ' ', 'g')
                        ]
                    )
                    for m in regexp_extract_all(
                        ' ' || text, getvariable('keyword_pattern'), 0
                    )
                ])
            else []::bigint[]
        end as hit_ids
    from message_rows
),

sorted_hits as (
    select
        *,
        case
            when len(hit_ids) <= 1 then hit_ids else list_sort(hit_ids)
        end as sorted_ids
    from keyword_hits
),

-- Distinct ids, ascending: a sorted id is kept unless it repeats the one before.
distinct_hits as (
    select
        *,
        case
            when len(sorted_ids) <= 1 then sorted_ids
            else list_filter(
                sorted_ids, lambda id, i: i = 1 or id <> sorted_ids[i - 1]
            )
        end as keyword_ids
    from sorted_hits
),

scored as (
    select
        *,
        coalesce(list_sum(list_transform(
            keyword_ids, lambda i: getvariable('keyword_lookup').weights[i]
        )), 0) as score_value,
        list_transform(
            keyword_ids, lambda i: getvariable('keyword_lookup').categories[i]
        ) as hit_categories
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
        case  -- distinct and sorted: the category names in order, if hit
            when len(hit_categories) <= 1 then hit_categories
            else [
                c for c in getvariable('keyword_lookup').category_names
                if list_contains(hit_categories, c)
            ]
        end::varchar[] as categories,
        list_transform(  -- ids ascending give the keywords sorted
            keyword_ids, lambda i: getvariable('keyword_lookup').keywords[i]
        )::varchar[] as keywords,
        (
            score_value >= getvariable('opportunity_threshold')
            and is_from_me is distinct from true
        )::boolean as is_opportunity
    from scored
)

select * from final
