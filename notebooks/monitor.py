import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="walake monitor")

with app.setup:
    import altair as alt
    import marimo as mo

    from ingest import monitor_panels as panels


@app.cell(hide_code=True)
def _():
    mo.md("""
    # walake monitor
    Alerts that `walake monitor` raised, new messages per hour, the chats and
    categories with the most opportunities, and ingest health. Bad looks like: no
    tick for longer than the interval, errors in the last session, or a chat
    whose newest message took minutes to land.
    """)
    return


@app.cell
def _():
    refresh = mo.ui.refresh(
        options=["5s", "10s", "30s", "1m", "5m"], default_interval="10s"
    )
    refresh
    return (refresh,)


@app.cell
def _(refresh):
    refresh  # rerun on every tick
    lake = panels.notebook_lake(mo.cli_args().get("lake"))
    opened = panels.open_lake(lake)
    mo.stop(opened.con is None, mo.md(f"**Nothing to show yet.** {opened.problem}"))
    con = opened.con
    return con, lake


@app.cell
def _(con):
    feed = panels.alert_feed(con, limit=50)
    totals = panels.alert_totals(con)
    return feed, totals


@app.cell
def _(feed, totals):
    mo.vstack([
        mo.md(
            f"## Alert feed\n**{totals['alerts']} alerts** in the lake, "
            f"{totals['alerts_24h']} in the last 24 hours of messages.\n\n"
            + panels.feed_markdown(feed, rows=10)
        ),
        mo.ui.table(feed, selection=None, page_size=10, label="All recent alerts"),
    ])
    return


@app.cell
def _(con):
    per_hour = panels.messages_per_hour(con, hours=48)
    return (per_hour,)


@app.cell
def _(per_hour):
    _chart = (
        alt.Chart(per_hour)
        .mark_bar()
        .encode(
            x=alt.X("yearmonthdatehours(hour):O", title="hour (UTC)"),
            y=alt.Y("messages:Q", title="messages"),
            tooltip=["hour:T", "messages:Q", "opportunities:Q"],
        )
        .properties(height=180, width="container")
    )
    mo.vstack([
        mo.md(f"## New messages per hour\n{per_hour['messages'].sum():,} messages "
              "in the last 48 hours of the lake."),
        _chart,
    ])
    return


@app.cell
def _(con):
    chats = panels.top_chats(con, days=7, limit=10)
    categories = panels.top_categories(con, days=7)
    return categories, chats


@app.cell
def _(categories, chats):
    mo.vstack([
        mo.md("## Top chats and categories (opportunities, last 7 days)"),
        mo.hstack([
            mo.ui.table(chats, selection=None, label="Chats"),
            mo.ui.table(categories, selection=None, label="Categories"),
        ], widths="equal"),
    ])
    return


@app.cell
def _(con, lake):
    health = panels.ingest_health(lake)
    lag = panels.chat_lag(con, limit=20)
    return health, lag


@app.cell
def _(health, lag):
    mo.vstack([
        mo.md("## Ingest health\n" + panels.health_markdown(health)),
        mo.ui.table(lag, selection=None, page_size=10, label="Lag per chat"),
    ])
    return


if __name__ == "__main__":
    app.run()
