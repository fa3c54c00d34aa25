import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="walake explore")

with app.setup:
    import altair as alt
    import marimo as mo

    from ingest import monitor_panels as panels


@app.cell(hide_code=True)
def _():
    mo.md("""
    # Explore the lake
    Search messages, drill into one chat, and see how scores and keywords spread.
    Move the threshold to see what would count as an opportunity; the views'
    own scoring is used throughout.
    """)
    return


@app.cell
def _():
    lake = panels.notebook_lake(mo.cli_args().get("lake"))
    opened = panels.open_lake(lake)
    mo.stop(opened.con is None, mo.md(f"**Nothing to explore yet.** {opened.problem}"))
    con = opened.con
    return (con,)


@app.cell
def _(con):
    first_day, last_day = panels.date_span(con)
    search = mo.ui.text(label="Search text", placeholder="e.g. invoice")
    chat = mo.ui.dropdown(options=panels.chat_choices(con), label="Chat")
    categories = mo.ui.multiselect(options=panels.category_choices(con),
                                   label="Categories")
    days = mo.ui.date_range(start=first_day, stop=last_day, label="Dates",
                            value=(first_day, last_day))
    threshold = mo.ui.slider(0, 10, step=0.5, value=2, label="Threshold",
                             show_value=True)
    mo.hstack([search, chat, categories, days, threshold], wrap=True)
    return categories, chat, days, search, threshold


@app.cell
def _(categories, chat, con, days, search, threshold):
    filters = panels.Filters(
        search=search.value, chat_id=chat.value,
        categories=tuple(categories.value), start=days.value[0], end=days.value[1],
        threshold=threshold.value,
    )
    picked = panels.pick(con, filters)
    totals = panels.picked_totals(con, picked)
    mo.md(
        f"**{totals['messages']:,} messages** in {totals['chats']} chats match; "
        f"**{totals['opportunities']:,} opportunities** at threshold "
        f"{filters.threshold:g}."
    )
    return filters, picked, totals


@app.cell
def _(con, picked):
    found = panels.search_messages(con, picked, limit=200)
    mo.ui.table(found, selection=None, page_size=15, label="Messages (newest first)")
    return (found,)


@app.cell
def _(con, picked):
    scores = panels.score_distribution(con, picked)
    _chart = (
        alt.Chart(scores)
        .mark_bar()
        .encode(
            x=alt.X("score:O"),
            y=alt.Y("messages:Q", scale=alt.Scale(type="symlog")),
            tooltip=["score", "messages"],
        )
        .properties(title="Score distribution", height=180, width="container")
    )
    _chart
    return (scores,)


@app.cell
def _(con, picked):
    hits = panels.keyword_hits(con, picked, limit=25)
    _chart = (
        alt.Chart(hits)
        .mark_bar()
        .encode(x="messages:Q", y=alt.Y("keyword:N", sort="-x"),
                tooltip=["keyword", "messages"])
        .properties(title="Keyword hits", height=alt.Step(14), width="container")
    )
    _chart
    return (hits,)


@app.cell
def _(con, picked):
    by_day = panels.opportunities_by_day(con, picked)
    _chart = (
        alt.Chart(by_day)
        .mark_bar()
        .encode(x=alt.X("day:T"), y="opportunities:Q", color="category:N",
                tooltip=["day:T", "category", "opportunities"])
        .properties(title="Opportunities per day", height=200, width="container")
    )
    _chart
    return (by_day,)


if __name__ == "__main__":
    app.run()
