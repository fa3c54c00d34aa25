-- message_scores: one row per message (message_key) with its opportunity score.
-- From: messages, and the variables keyword_pattern and keyword_lookup (see the view
-- keyword_pattern). Used by: opportunities, the marts, `walake export-chat`,
-- notebooks.
-- score = sum over categories of weight x number of distinct keywords of that
-- category found in the text. System and deleted messages score 0.
-- Set-based and streaming: one regex pass finds the words keywords start, and list
-- functions map them to keyword ids (no join, no grouping), so 10M rows stay cheap.
create or replace view message_scores as

with message_rows as (
    select * from messages
),

matched_words as (
    select
        *,
        case
            when
                text is not null
                and not is_system
                and not is_deleted
                and regexp_matches(text, getvariable('keyword_pattern'))  -- prefilter
                then regexp_extract_all(text, getvariable('keyword_pattern'), 1)
            else []::varchar[]
        end as words
    from message_rows
),

keyword_hits as (
    select
        *,
        list_sort(list_distinct(flatten(list_transform(
            words,
            lambda word: coalesce(
                getvariable('keyword_lookup').form_keyword_ids[list_position(
                    getvariable('keyword_lookup').forms,
                    lower(regexp_replace(word, '\s+', ' ', 'g'))
                )],
                []::bigint[]
            )
        )))) as keyword_ids
    from matched_words
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
        list_sort(list_transform(
            keyword_ids, lambda i: getvariable('keyword_lookup').keywords[i]
        ))::varchar[] as keywords,
        (
            score_value >= getvariable('opportunity_threshold')
            and is_from_me is distinct from true
        )::boolean as is_opportunity
    from scored
)

select * from final
