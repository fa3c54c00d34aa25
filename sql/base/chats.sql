-- chats: one row per chat (chat_id).
-- From: messages. Used by: chat_summary, `walake export-chat` (name lookup), notebooks.
-- chat_name and is_group come from the chat's most recent message that has them.
-- senders counts the people other than me who wrote in the chat.
create or replace view chats as

with chat_messages as (
    select
        chat_id, chat_name, is_group, source, sent_at,
        -- a sender is known by id where the source has one (a person's JID and
        -- the bare number the bridge also stores are one), else by display name
        case
            when is_from_me is distinct from true
                then coalesce(
                    regexp_extract(
                        sender_id, '^(\d+)(?::\d+)?@(?:s\.whatsapp\.net|lid)$', 1
                    ).nullif(''),
                    sender_id,
                    'name:' || sender_name
                )
        end as sender_key
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
        count(distinct sender_key)::bigint as senders,  -- people other than me
        list(distinct source order by source)::varchar[] as sources,
        min(sent_at)::timestamptz as first_message_at,  -- UTC
        max(sent_at)::timestamptz as last_message_at  -- UTC
    from chat_messages
    group by chat_id
)

select * from final
