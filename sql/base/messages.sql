-- messages: one row per message (message_key), deduplicated across batches and sources.
-- From: lake_messages (every committed Parquet batch), split into
-- lake_messages_checked and lake_messages_unchecked by the batches' new_keys mark
-- (all built by ingest/views.py from the manifest).
-- Used by: chats, message_scores, the marts, `walake export-chat`, notebooks.
-- When a message arrived more than once, the row with the most information wins
-- (a source_message_id, then a sender_id, then most filled fields), then the earliest
-- batch. Times: sent_at is UTC; sent_at_local is the sender's naive wall time.
create or replace view messages as

with batch_rows as not materialized (
    select * from lake_messages
),

-- Copies of one message_key are rare, so only rows whose key may be repeated are
-- ranked. A batch marked new_keys held no key of the lake when it landed (and none
-- twice), so every key with copies has one in an unmarked batch: the keys of
-- unmarked batches are the only candidates, counted over their own rows and the
-- marked rows that share them (a small build side the marked rows probe). In an old
-- lake every batch is unmarked, and this is a count over every key; in a lake of
-- marked batches there is nothing to count. Counting hash(message_key) keeps the
-- aggregate narrow (a hash collision only sends a few more rows to the window,
-- which still partitions by the key itself), and the window, which sorts whole
-- rows, runs over just the repeated keys' rows. Every other row passes unsorted.
-- (batch_rows is not materialized: each branch re-reads the Parquet columns it
-- needs, which is cheaper than buffering every row until the aggregate is done.)
unchecked_hashes as (
    select distinct hash(message_key) as key_hash
    from lake_messages_unchecked
),

key_copies as (
    select hash(message_key) as key_hash
    from lake_messages_unchecked
    union all
    select hash(c.message_key) as key_hash
    from lake_messages_checked as c
    semi join unchecked_hashes as u on hash(c.message_key) = u.key_hash
),

repeated_hashes as (
    select key_hash
    from key_copies
    group by key_hash
    having count(*) > 1
),

single_rows as (
    select b.*
    from batch_rows as b
    anti join repeated_hashes as r on hash(b.message_key) = r.key_hash
),

ranked as (
    select
        b.*,
        row_number() over (
            partition by b.message_key
            order by
                (b.source_message_id is not null) desc,
                (b.sender_id is not null) desc,
                (b.sender_name is not null)::integer
                    + (b.is_from_me is not null)::integer
                    + (b.chat_name is not null)::integer
                    + (b.text is not null)::integer
                    + (b.media_type is not null)::integer
                    + (b.media_size is not null)::integer desc,
                b.batch_id,
                b.source
        ) as copy_rank
    from batch_rows as b
    semi join repeated_hashes as r on hash(b.message_key) = r.key_hash
),

deduplicated as (
    select * from single_rows
    union all by name
    select * exclude (copy_rank) from ranked where copy_rank = 1
),

final as (
    select
        message_key::varchar as message_key,
        source::varchar as source,
        source_message_id::varchar as source_message_id,
        chat_id::varchar as chat_id,
        chat_name::varchar as chat_name,
        is_group::boolean as is_group,
        sender_id::varchar as sender_id,
        sender_name::varchar as sender_name,
        is_from_me::boolean as is_from_me,  -- null: the export does not say
        sent_at::timestamptz as sent_at,  -- UTC
        sent_at_local::timestamp as sent_at_local,  -- local wall time, no zone
        utc_offset_minutes::integer as utc_offset_minutes,
        text::varchar as text,
        media_type::varchar as media_type,
        media_filename::varchar as media_filename,
        media_size::bigint as media_size,
        coalesce(is_system, false)::boolean as is_system,
        coalesce(is_deleted, false)::boolean as is_deleted,
        coalesce(is_edited, false)::boolean as is_edited,
        batch_id::varchar as batch_id,
        ingested_at::timestamptz as ingested_at  -- UTC
    from deduplicated
)

select * from final
