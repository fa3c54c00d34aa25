-- opportunities: one row per message scoring at least the threshold (variable
-- opportunity_threshold, default 2) that I did not send (is_from_me false or
-- unknown), newest first. From: message_scores.
-- Used by: unanswered_opportunities, the marts, `walake report`, notebooks.
create or replace view opportunities as

with scored as (
    select * from message_scores
    where is_opportunity
),

final as (
    select
        message_key::varchar as message_key,
        chat_id::varchar as chat_id,
        chat_name::varchar as chat_name,
        sender_id::varchar as sender_id,
        sender_name::varchar as sender_name,
        sent_at::timestamptz as sent_at,  -- UTC
        sent_at_local::timestamp as sent_at_local,  -- local wall time
        text::varchar as text,
        score::double as score,
        categories::varchar[] as categories,
        keywords::varchar[] as keywords
    from scored
)

select * from final
order by sent_at desc, message_key
