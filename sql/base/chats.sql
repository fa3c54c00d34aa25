-- chats: one row per chat (chat_id).
-- From: messages. Used by: chat_summary, `walake export-chat` (name lookup), notebooks.
-- chat_name and is_group come from the chat's most recent message that has them.
create or replace view chats as

with chat_messages as (
    select chat_id, chat_name, is_group, sender_id, source, sent_at
    from messages
),

final as (
    select
        chat_id::varchar as chat_id,
        arg_max(chat_name, sent_at) filter (where chat_name is not null)::varchar
            as chat_name,
        coalesce(arg_max(is_group, sent_at) filter (where is_group is not null), false)
            ::boolean as is_group,
        count(*)::bigint as messages,
        count(distinct sender_id)::bigint as senders,
        list(distinct source order by source)::varchar[] as sources,
        min(sent_at)::timestamptz as first_message_at,  -- UTC
        max(sent_at)::timestamptz as last_message_at  -- UTC
    from chat_messages
    group by chat_id
)

select * from final
