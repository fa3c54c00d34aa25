-- category_mix: one row per keyword category (every configured one, zero-filled):
-- how many opportunities mention it and the points it contributed to them.
-- From: keywords, keyword_forms, message_scores, opportunities.
-- Used by: `walake report`, notebooks.
create or replace view category_mix as

with categories as (
    select category, max(weight) as weight
    from keywords
    group by category
),

opportunity_categories as (
    select message_key, unnest(categories) as category, keywords
    from opportunities
),

category_keywords as (
    select o.message_key, o.category, count(distinct f.keyword) as keywords_hit
    from opportunity_categories as o
    inner join keyword_forms as f
        on o.category = f.category and list_contains(o.keywords, f.keyword)
    group by o.message_key, o.category
),

counts as (
    select category, count(*) as opportunities, sum(keywords_hit) as keywords_hit
    from category_keywords
    group by category
),

total as (
    select count(*) as opportunities from opportunities
),

final as (
    select
        c.category::varchar as category,
        c.weight::double as weight,
        coalesce(n.opportunities, 0)::bigint as opportunities,
        coalesce(n.keywords_hit, 0)::bigint as keywords_hit,
        (coalesce(n.keywords_hit, 0) * c.weight)::double as points,
        coalesce(n.opportunities / nullif(t.opportunities, 0), 0)::double
            as share_of_opportunities
    from categories as c
    cross join total as t
    left join counts as n on c.category = n.category
)

select * from final
order by opportunities desc, points desc, category
