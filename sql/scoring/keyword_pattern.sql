-- keyword_pattern: one row: the RE2 pattern that finds keyword forms in a text, and
-- the lookup from a found form to its keywords.
-- From: keyword_forms. Used by: ingest/views.py, which stores them in the variables
-- keyword_pattern and keyword_lookup, and each field of the lookup in its own
-- variable keyword_<field>, that message_scores reads (constants: the pattern is
-- compiled once, and scoring needs no join or grouping).
-- pattern: run on ' ' || text, every match is one separator then a whole word (or
-- phrase) that starts with a form; substring(match, 2) is that word, so the caller
-- can keep only exact forms: "ideal" never starts a match (a letter precedes "deal").
-- No capture group: RE2 finds whole matches with its DFA alone. Spaces in phrases
-- match any white space, line breaks too. Separators are white space, ASCII and
-- Latin-1 punctuation and symbols, general punctuation to arrows (U+2000-2BFF), CJK
-- punctuation, variation selectors, fullwidth punctuation and emoji (U+1F000-1FAFF);
-- every other character (letters of any script, accents, digits, "_") is part of a
-- word, so "urgenté" or "срочноurgent" is not "urgent". Only the forms are
-- case-insensitive: under (?i) the separator ranges would also take in letters that
-- case-fold into them (K, k, Å, å, Ω, ω via the Kelvin, Angstrom and Ohm signs).
-- (Listing separators is 3x faster in RE2 than the Unicode classes \p{L}\p{M}\p{N}.)
-- Most words a form starts are no form ("dealer", "sellers"): forms of ASCII word
-- characters end in \b, so RE2 drops those words itself and the caller looks up
-- (nearly) only real forms. That finds the same words as matching just the shortest
-- forms (word starts) and looking up every word they start: \b only rejects a form
-- followed by an ASCII letter, digit or "_", and every longer form is in the pattern
-- too. Where DuckDB's lower() and RE2's case folding differ, pieces match what the
-- lookup would find: a word start's last "k" may be the Kelvin sign (lower() gives
-- "k"; \b fails after it); past the word start an "i" may be "İ" (lower() gives
-- "i"; RE2 does not fold it) and a "k" is no Kelvin sign (a separator, where the
-- word start's match ends). Forms with other characters, phrases, and any set with
-- a form holding "ſ" (RE2 folds it into "s", lower() keeps it) use the word starts
-- alone, as before.
-- lookup.form_ids maps a found form (lower case, white space runs as one space) to
-- its keyword ids; ids follow (keyword, category), so ids in ascending order give the
-- keywords sorted. A phrase is also a key with a line break for each space
-- ("looking\nfor", as a chat writes it across lines): that word is found with one
-- lookup, and only other white space needs the caller's second, normalising one.
-- Most sets have no form shared by two keywords (shared_forms is false): then
-- lookup.form_id maps each form to its one id, a number rather than a list, which
-- scoring looks up faster. lookup.names, .categories, .weights and .category_bits
-- are by id; lookup.category_names lists the categories, sorted, and
-- lookup.category_sets the sorted categories of each set of category bits.
create or replace view keyword_pattern as

with distinct_forms as (
    select distinct form
    from keyword_forms
),

separators as (
    select
        '\x{0}-\x{2F}\x{3A}-\x{40}\x{5B}-\x{5E}\x{60}\x{7B}-\x{BF}\x{D7}\x{F7}'
        || '\x{2000}-\x{2BFF}\x{3000}-\x{303F}\x{FE00}-\x{FE0F}\x{FF00}-\x{FF0F}'
        || '\x{1F000}-\x{1FAFF}' as ranges
),

classified_forms as (
    select
        f.form,
        regexp_matches(f.form, '[' || s.ranges || ']') as has_separator,
        regexp_full_match(f.form, '[a-z0-9_]+') as is_ascii_word
    from distinct_forms as f
    cross join separators as s
),

-- A form that starts with a shorter form is found through that one: the shorter
-- one's match runs on to the end of the word ("deal" finds "deals").
word_starts as (
    select form, has_separator
    from classified_forms as f
    where not exists (
        select 1 from classified_forms as g
        where g.form <> f.form and starts_with(f.form, g.form)
    )
),

-- Each form without separators belongs to the one word start it begins with.
families as (
    select
        w.form as word_start,
        f.form,
        bool_and(f.is_ascii_word) over (partition by w.form) as is_ascii_family
    from word_starts as w
    inner join classified_forms as f on starts_with(f.form, w.form)
    where not w.has_separator and not f.has_separator
),

bounded_forms as (
    select
        form,
        left(form, least(length(word_start), length(form) - 1)) as folded,
        -- between the word start and the last letter, "i" may be "İ", and "k" is
        -- no Kelvin sign (a separator: the word start's match would end there)
        replace(
            replace(form[length(word_start) + 1:-2], 'i', '[iİ]'), 'k', '(?-i:[kK])'
        ) as extension,
        right(form, 1) as last_letter,
        length(word_start) = length(form) as last_is_folded
    from families
    where is_ascii_family
        and not exists (select 1 from distinct_forms where contains(form, 'ſ'))
),

-- A bounded form: its word start as RE2 folds it, the extension, then its last
-- letter and \b; a last "k" of the word start may also be the Kelvin sign, and a
-- last "i" past it "İ", with no \b (it fails after them).
pieces as (
    select
        form,
        (
            '(?i:' || folded || ')'
            || case
                when extension = '' then ''
                else '(?i:' || extension || ')'
            end
            || case
                when last_is_folded then '(?:(?i:' || last_letter || ')\b'
                    || case when last_letter = 'k' then '|\x{212A}' else '' end || ')'
                when last_letter = 'k' then '[kK]\b'
                when last_letter = 'i' then '(?:(?i:i)\b|\x{130})'
                else '(?i:' || last_letter || ')\b'
            end
        ) as piece
    from bounded_forms
    union all
    select form, '(?i:' || replace(regexp_escape(form), '\ ', '\s+') || ')'
    from word_starts as w
    where not exists (select 1 from bounded_forms as b where b.form = w.form)
),

keyword_ids as (
    select
        category,
        keyword,
        max(weight) as weight,
        row_number() over (order by keyword, category) as keyword_id
    from keyword_forms
    group by category, keyword
),

form_ids as (
    select
        f.form,
        list_sort(list(k.keyword_id)) as keyword_ids,
        min(k.keyword_id) as keyword_id,
        count(distinct k.keyword_id) > 1 as is_shared,
        bool_or(f.form = f.keyword) as is_keyword
    from keyword_forms as f
    inner join keyword_ids as k on f.category = k.category and f.keyword = k.keyword
    group by f.form
),

-- Forms never hold a line break (keyword files are read with white space runs as
-- one space), so no line-break key is also a form. A MAP lookup compares the keys
-- in order (rank, then length): the keywords themselves first, the commonest words
-- of a chat, then their other forms, then the line-break keys.
lookup_keys as (
    select
        form as lookup_key,
        keyword_ids,
        keyword_id,
        case when is_keyword then 0 else 1 end as rank
    from form_ids
    union all
    select replace(form, ' ', chr(10)), keyword_ids, keyword_id, 2
    from form_ids
    where contains(form, ' ')
),

-- A set of at most 10 categories gives each category a bit (in name order) and lists
-- every set of categories by its bits + 1: a message's categories are then one list
-- index, not a sort. Larger sets get nulls, and scoring sorts instead.
category_ranks as (
    select
        category,
        row_number() over (order by category) as category_rank,
        count(*) over () as category_count
    from (select distinct category from keyword_ids)
    qualify category_count <= 10
),

category_sets as (
    select list(
        list_filter(
            r.names, lambda c, i: (m.category_mask >> (i - 1)::integer) & 1 = 1
        )
        order by m.category_mask
    ) as sets
    from (select list(category order by category) as names from category_ranks) as r
    cross join range(0, 1 << (select count(*) from category_ranks)::integer)
        as m (category_mask)
    where exists (select 1 from category_ranks)
),

lookup as (
    select
        (
            select map(
                list(lookup_key order by rank, length(lookup_key), lookup_key),
                list(keyword_ids order by rank, length(lookup_key), lookup_key)
            )
            from lookup_keys
        ) as form_ids,
        (
            select map(
                list(lookup_key order by rank, length(lookup_key), lookup_key),
                list(keyword_id order by rank, length(lookup_key), lookup_key)
            )
            from lookup_keys
        ) as form_id,
        (select coalesce(bool_or(is_shared), false) from form_ids) as shared_forms,
        (select list(keyword order by keyword_id) from keyword_ids) as names,
        (select list(category order by keyword_id) from keyword_ids) as categories,
        (select list(weight order by keyword_id) from keyword_ids) as weights,
        (select list(distinct category order by category) from keyword_ids)
            as category_names,
        (
            select list(
                1::bigint << (r.category_rank - 1)::integer order by k.keyword_id
            )
            from keyword_ids as k
            inner join category_ranks as r on k.category = r.category
        ) as category_bits,
        (select sets from category_sets) as category_sets
),

final as (
    select
        (
            '[' || any_value(s.ranges) || '](?:'
            || string_agg(p.piece, '|' order by length(p.form) desc, p.form)
            || ')[^' || any_value(s.ranges) || ']*'
        )::varchar as pattern,
        struct_pack(
            form_ids := any_value(l.form_ids)::map(varchar, bigint[]),
            form_id := any_value(l.form_id)::map(varchar, bigint),
            shared_forms := any_value(l.shared_forms)::boolean,
            names := any_value(l.names)::varchar[],
            categories := any_value(l.categories)::varchar[],
            weights := any_value(l.weights)::double[],
            category_names := any_value(l.category_names)::varchar[],
            category_bits := any_value(l.category_bits)::bigint[],
            category_sets := any_value(l.category_sets)::varchar[][]
        ) as lookup
    from pieces as p
    cross join separators as s
    cross join lookup as l
)

select * from final
