-- chat_summary: one row per chat with its messages, senders and opportunities.
-- From: chats, message_scores, unanswered_opportunities.
-- Used by: `walake report` (top chats), notebooks.
create or replace view chat_summary as

with chat_rows as (
    select chat_id, chat_name, is_group, messages, senders, last_message_at
    from chats
),

scores as (
    select chat_id, score, is_opportunity, sent_at
    from message_scores
),

unanswered as (
    select chat_id, count(*) as unanswered
    from unanswered_opportunities
    group by chat_id
),

chat_scores as (
    select
        chat_id,
        count(*) filter (where is_opportunity) as opportunities,
        sum(score) filter (where is_opportunity) as opportunity_score,
        sum(score) as score_sum,
        max(sent_at) filter (where is_opportunity) as last_opportunity_at
    from scores
    group by chat_id
),

final as (
    select
        c.chat_id::varchar as chat_id,
        c.chat_name::varchar as chat_name,
        c.is_group::boolean as is_group,
        c.messages::bigint as messages,
        c.senders::bigint as senders,
        coalesce(s.opportunities, 0)::bigint as opportunities,
        coalesce(u.unanswered, 0)::bigint as unanswered_opportunities,
        coalesce(s.score_sum, 0)::double as score_sum,
        coalesce(s.opportunity_score, 0)::double as opportunity_score,
        s.last_opportunity_at::timestamptz as last_opportunity_at,  -- UTC
        c.last_message_at::timestamptz as last_message_at  -- UTC
    from chat_rows as c
    left join chat_scores as s on c.chat_id = s.chat_id
    left join unanswered as u on c.chat_id = u.chat_id
)

select * from final
order by opportunities desc, opportunity_score desc, chat_id
