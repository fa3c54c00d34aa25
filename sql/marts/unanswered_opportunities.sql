-- unanswered_opportunities: one row per opportunity with no message from me in the
-- same chat within reply_window_hours (variable, default 24) after it.
-- From: opportunities, messages. Used by: monetization_summary, `walake report`,
-- notebooks. A reply exactly at the deadline counts as an answer. is_overdue is
-- false while the window is still open (the deadline is after now()).
create or replace view unanswered_opportunities as

with opportunity_rows as (
    select * from opportunities
),

my_messages as (
    select chat_id, sent_at
    from messages
    where is_from_me and not is_system
),

first_replies as (
    select
        o.*,
        r.sent_at as first_reply_at,
        o.sent_at + to_microseconds(
            (getvariable('reply_window_hours') * 3600000000)::bigint
        ) as reply_due_at
    from opportunity_rows as o
    asof left join my_messages as r
        on o.chat_id = r.chat_id and o.sent_at < r.sent_at
),

final as (
    select
        message_key::varchar as message_key,
        chat_id::varchar as chat_id,
        chat_name::varchar as chat_name,
        sender_id::varchar as sender_id,
        sender_name::varchar as sender_name,
        sent_at::timestamptz as sent_at,  -- UTC
        text::varchar as text,
        score::double as score,
        categories::varchar[] as categories,
        keywords::varchar[] as keywords,
        reply_due_at::timestamptz as reply_due_at,  -- UTC
        first_reply_at::timestamptz as first_reply_at,  -- UTC: late, or null
        (reply_due_at <= now())::boolean as is_overdue
    from first_replies
    where first_reply_at is null or first_reply_at > reply_due_at
)

select * from final
order by sent_at desc, message_key
