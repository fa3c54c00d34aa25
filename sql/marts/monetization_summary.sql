-- monetization_summary: one row of lake-wide totals for the monetization report.
-- From: messages, chats, message_scores, opportunities, unanswered_opportunities.
-- Used by: `walake report`, `walake demo`, notebooks.
create or replace view monetization_summary as

with message_totals as (
    select
        count(*) as messages,
        -- people as sender_summary counts them: a JID and its bare number are one,
        -- rows with no id (exports) count by name
        count(distinct coalesce(
            regexp_extract(
                sender_id, '^(\d+)(?::\d+)?@(?:s\.whatsapp\.net|lid)$', 1
            ).nullif(''),
            sender_id,
            'name:' || sender_name
        )) as senders,
        count(*) filter (where is_from_me) as messages_sent,
        min(sent_at) as first_message_at,
        max(sent_at) as last_message_at
    from messages
),

score_totals as (
    select
        count(*) filter (where score > 0) as scored_messages,
        count(*) filter (where is_opportunity) as opportunities,
        sum(score) filter (where is_opportunity) as opportunity_score
    from message_scores
),

chat_totals as (
    select
        count(*) as chats,
        count(*) filter (where exists (
            select 1 from opportunities as o where o.chat_id = chats.chat_id
        )) as chats_with_opportunities
    from chats
),

unanswered_totals as (
    select
        count(*) as unanswered,
        count(*) filter (where is_overdue) as overdue
    from unanswered_opportunities
),

final as (
    select
        m.messages::bigint as messages,
        m.messages_sent::bigint as messages_sent,
        c.chats::bigint as chats,
        m.senders::bigint as senders,
        s.scored_messages::bigint as scored_messages,
        s.opportunities::bigint as opportunities,
        coalesce(s.opportunity_score, 0)::double as opportunity_score,
        c.chats_with_opportunities::bigint as chats_with_opportunities,
        u.unanswered::bigint as unanswered_opportunities,
        u.overdue::bigint as overdue_opportunities,
        coalesce(s.opportunities / nullif(m.messages, 0), 0)::double
            as opportunity_rate,
        getvariable('opportunity_threshold')::double as threshold,
        getvariable('reply_window_hours')::double as reply_window_hours,
        m.first_message_at::timestamptz as first_message_at,  -- UTC
        m.last_message_at::timestamptz as last_message_at  -- UTC
    from message_totals as m
    cross join score_totals as s
    cross join chat_totals as c
    cross join unanswered_totals as u
)

select * from final
