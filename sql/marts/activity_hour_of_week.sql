-- activity_hour_of_week: one row per (ISO weekday 1=Monday..7, hour 0..23), all 168,
-- zero-filled. From: message_scores (sent_at_local, the wall time).
-- Used by: notebooks (heat map), `walake sql`.
create or replace view activity_hour_of_week as

with grid as (
    select d.weekday, h.hour
    from range(1, 8) as d (weekday)
    cross join range(0, 24) as h (hour)
),

hour_messages as (
    select
        isodow(sent_at_local) as weekday,
        hour(sent_at_local) as hour,
        is_opportunity
    from message_scores
    where sent_at_local is not null
),

counts as (
    select
        weekday,
        hour,
        count(*) as messages,
        count(*) filter (where is_opportunity) as opportunities
    from hour_messages
    group by weekday, hour
),

final as (
    select
        g.weekday::integer as weekday,  -- ISO: 1 = Monday
        g.hour::integer as hour,  -- local wall time
        coalesce(c.messages, 0)::bigint as messages,
        coalesce(c.opportunities, 0)::bigint as opportunities
    from grid as g
    left join counts as c on g.weekday = c.weekday and g.hour = c.hour
)

select * from final
order by weekday, hour
