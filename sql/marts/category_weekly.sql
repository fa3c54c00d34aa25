-- category_weekly: one row per (local week, category) with keyword hits.
-- From: message_scores. Used by: notebooks (category trends), `walake sql`.
-- week_start_local is the Monday of the sent_at_local week.
create or replace view category_weekly as

with category_messages as (
    select
        date_trunc('week', sent_at_local)::date as week_start_local,
        unnest(categories) as category,
        is_opportunity
    from message_scores
    where len(categories) > 0
),

final as (
    select
        week_start_local::date as week_start_local,
        category::varchar as category,
        count(*)::bigint as messages,
        count(*) filter (where is_opportunity)::bigint as opportunities
    from category_messages
    group by week_start_local, category
)

select * from final
order by week_start_local, category
