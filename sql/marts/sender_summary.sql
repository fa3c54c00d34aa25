-- sender_summary: one row per sender across all chats, me included (is_me).
-- A sender is its id, with a person's JID and the bare number the bridge also stores
-- for them as one (447700900045@s.whatsapp.net = 447700900045); messages without an
-- id are grouped under their sender_name.
-- From: message_scores. Used by: `walake report` (top senders), notebooks.
create or replace view sender_summary as

with sender_messages as (
    select
        coalesce(
            regexp_extract(
                sender_id, '^(\d+)(?::\d+)?@(?:s\.whatsapp\.net|lid)$', 1
            ).nullif(''),
            sender_id,
            'name:' || sender_name,
            'unknown'
        ) as sender_key,
        sender_id,
        sender_name,
        is_from_me,
        chat_id,
        score,
        is_opportunity,
        sent_at
    from message_scores
),

final as (
    select
        sender_key::varchar as sender_key,
        any_value(sender_id)::varchar as sender_id,
        arg_max(sender_name, sent_at) filter (where sender_name is not null)::varchar
            as sender_name,
        coalesce(bool_or(is_from_me), false)::boolean as is_me,
        count(*)::bigint as messages,
        count(distinct chat_id)::bigint as chats,
        count(*) filter (where is_opportunity)::bigint as opportunities,
        coalesce(sum(score), 0)::double as score_sum,
        coalesce(sum(score) filter (where is_opportunity), 0)::double
            as opportunity_score,
        max(sent_at) filter (where is_opportunity)::timestamptz
            as last_opportunity_at,  -- UTC
        max(sent_at)::timestamptz as last_message_at  -- UTC
    from sender_messages
    group by sender_key
)

select * from final
order by opportunities desc, opportunity_score desc, sender_key
