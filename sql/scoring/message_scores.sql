-- message_scores: one row per message (message_key) with its opportunity score.
-- From: messages, and the variables keyword_pattern and keyword_lookup (see the view
-- keyword_pattern). Used by: opportunities, the marts, `walake export-chat`,
-- notebooks.
-- score = sum over categories of weight x number of distinct keywords of that
-- category found in the text. System and deleted messages score 0.
-- Set-based and streaming: a cheap prefilter skips texts with no keyword at all, one
-- regex pass finds the words keywords start, and a MAP built once maps each word to
-- keyword ids (no join, no grouping, no sort of the rows), so 10M rows stay cheap.
create or replace view message_scores as

with message_rows as (
    select * from messages
),

-- Each match is one separator then the word (see keyword_pattern); white space inside
-- a word comes only from a phrase ("looking\nfor") and is made one space. One list
-- comprehension per message turns the matches into keyword ids.
keyword_hits as (
    select
        *,
        case
            when
                text is not null
                and not is_system
                and not is_deleted
                and regexp_matches(text, getvariable('keyword_prefilter'))
                then list_sort(list_distinct(flatten([
                    getvariable('keyword_lookup').form_keywords[lower(
                        case
                            when regexp_matches(m, '\S\s')
                                then regexp_replace(substring(m, 2), '\s+', ' ', 'g')
                            else substring(m, 2)
                        end
                    )]
                    for m in regexp_extract_all(
                        ' ' || text, getvariable('keyword_pattern'), 0
                    )
                ])))
            else []::bigint[]
        end as keyword_ids
    from message_rows
),

scored as (
    select
        *,
        coalesce(list_sum(list_transform(
            keyword_ids, lambda i: getvariable('keyword_lookup').weights[i]
        )), 0) as score_value
    from keyword_hits
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
        list_sort(list_distinct(list_transform(
            keyword_ids, lambda i: getvariable('keyword_lookup').categories[i]
        )))::varchar[] as categories,
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
