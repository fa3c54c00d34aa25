-- activity_daily: one row per local calendar day that has messages (all chats).
-- From: message_scores. Used by: notebooks, `walake sql`.
-- day_local is the date of sent_at_local (the sender's wall time).
create or replace view activity_daily as

with day_messages as (
    select
        sent_at_local::date as day_local,
        chat_id,
        sender_id,
        is_from_me,
        is_opportunity,
        score
    from message_scores
),

final as (
    select
        day_local::date as day_local,
        count(*)::bigint as messages,
        count(*) filter (where is_from_me)::bigint as messages_sent,
        count(*) filter (where is_from_me is distinct from true)::bigint
            as messages_received,
        count(distinct chat_id)::bigint as active_chats,
        count(distinct sender_id)::bigint as active_senders,
        count(*) filter (where is_opportunity)::bigint as opportunities,
        coalesce(sum(score), 0)::double as score_sum
    from day_messages
    group by day_local
)

select * from final
order by day_local
