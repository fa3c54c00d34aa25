"""Keyword scoring on literal rows: exact scores, categories and keywords."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest_views import make_lake, msg
from ingest.views import KeywordsInvalid, connect

CASES = [
    # text, score, categories, keywords
    ("We have a deal", 1.0, ["products"], ["deal"]),
    ("That's an ideal plan", 0.0, [], []),
    ("Is he a dealer?", 0.0, [], []),
    ("URGENT!!!", 3.0, ["urgent"], ["urgent"]),
    ("urgent, Urgent, URGENT", 3.0, ["urgent"], ["urgent"]),
    ("urgent asap immediately", 9.0, ["urgent"], ["asap", "immediately", "urgent"]),
    ("looking\nfor a designer", 2.0, ["services"], ["looking for"]),
    ("Looking \t\r\n  FOR a designer", 2.0, ["services"], ["looking for"]),
    # a line break for the space is a key of its own; other white space is
    # normalised by the second lookup
    ("NEED\nHELP, looking\n\nfor", 4.0, ["services"], ["looking for", "need help"]),
    ("we need\r\nhelping", 2.0, ["services"], ["need help"]),
    ("lookingfor work", 0.0, [], []),
    ("looking forward to it", 0.0, [], []),
    ("deals and selling", 2.0, ["products"], ["deal", "sell"]),
    ("we hired one and are hiring more", 2.0, ["services"], ["hire"]),
    ("two emergencies today", 3.0, ["urgent"], ["emergency"]),
    ("buying, bought, purchased", 2.0, ["products"], ["buy", "purchase"]),
    ("need help urgently", 2.0, ["services"], ["need help"]),
    ("Startup funding deal", 5.0, ["business", "products"],
     ["deal", "funding", "startup"]),
    # accents and non-Latin letters next to a keyword make a longer word
    ("urgenté", 0.0, [], []),
    ("éurgent", 0.0, [], []),
    ("срочноurgent", 0.0, [], []),
    ("需要deal", 0.0, [], []),
    ("café deal, naïve partner", 2.0, ["networking", "products"],
     ["deal", "partner"]),
    ("срочно: urgent", 3.0, ["urgent"], ["urgent"]),
    # emoji and punctuation are separators
    ("urgent🔥", 3.0, ["urgent"], ["urgent"]),
    ("🔥deal🔥", 1.0, ["products"], ["deal"]),
    ("«deal» ¿asap?", 4.0, ["products", "urgent"], ["asap", "deal"]),
    ("(urgent) #deal deal's", 4.0, ["products", "urgent"], ["deal", "urgent"]),
    # digits and "_" are word characters
    ("deal2 deal_x asap1", 0.0, [], []),
    ("", 0.0, [], []),
    (None, 0.0, [], []),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    rows = [msg(text, at=i, key=f"k{i:03d}") for i, (text, *_rest) in enumerate(CASES)]
    lake = make_lake(tmp_path_factory.mktemp("scoring"), rows)
    with connect(lake) as con:
        result = con.sql(
            "select message_key, score, categories, keywords from message_scores"
        ).fetchall()
    return {key: (score, cats, kws) for key, score, cats, kws in result}


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)),
                         ids=[repr(c[0])[:30] for c in CASES])
def test_score_of_literal_text(scored: dict, index: int, case: tuple) -> None:
    _text, score, categories, keywords = case
    assert scored[f"k{index:03d}"] == (score, categories, keywords)


def test_system_and_deleted_messages_score_zero(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [
        msg("urgent deal", key="sys", is_system=True),
        msg("urgent deal", key="del", is_deleted=True, at=1),
        msg("urgent deal", key="ok", at=2),
    ])
    with connect(lake) as con:
        rows = con.sql("select message_key, score from message_scores "
                       "order by message_key").fetchall()
    assert rows == [("del", 0.0), ("ok", 4.0), ("sys", 0.0)]


def test_threshold_edge_and_sender(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [
        msg("need help", key="two", at=0),  # exactly 2: in
        msg("a deal", key="one", at=1),  # 1: out
        msg("urgent asap", key="mine", at=2, is_from_me=True),  # mine: out
        msg("we hire", key="unknown", at=3, is_from_me=None),  # unknown sender: in
    ])
    with connect(lake) as con:
        keys = [r[0] for r in con.sql("select message_key from opportunities")
                .fetchall()]
    assert keys == ["unknown", "two"]  # newest first
    with connect(lake, threshold=2.5) as con:
        assert con.sql("select count(*) from opportunities").fetchall() == [(0,)]
    with connect(lake, threshold=1) as con:
        keys = {r[0] for r in con.sql("select message_key from opportunities")
                .fetchall()}
    assert keys == {"two", "one", "unknown"}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_lake_keyword_files_replace_the_defaults(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [
        msg("Es urgente, necesito ayuda", key="es", at=0),
        msg("urgentes ofertas", key="plural", at=1),
        msg("urgent deals", key="en", at=2),
        msg("we bought it", key="irregular", at=3),
    ])
    _write(lake / "keywords" / "es.csv",
           "category,weight,keyword,forms\n"
           "urgent,3,urgente,urgentes\n"
           "services,2,necesito ayuda,\n")
    _write(lake / "keywords" / "en.csv",
           "category,weight,keyword,forms\n"
           "products,1,buy,bought\n")
    with connect(lake) as con:
        rows = dict(con.sql("select message_key, score from message_scores").fetchall())
    assert rows == {"es": 5.0, "plural": 3.0, "en": 0.0, "irregular": 1.0}


def test_spanish_set_gets_no_english_endings(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [msg("urgentes urgenteing", key="x")])
    keywords = _write(tmp_path / "kw" / "es.csv",
                      "category,weight,keyword\nurgent,3,urgente\n").parent
    with connect(lake, keywords_dir=keywords) as con:
        assert con.sql("select score from message_scores").fetchall() == [(0.0,)]


@pytest.mark.parametrize(("content", "message"), [
    ("category,weight,keyword\nurgent,3,asap\nurgent,2,now\n",
     "one weight per category"),
    ("category,keyword\nurgent,asap\n", "missing column"),
    ("category,weight,keyword\nurgent,high,asap\n", "'high' is not a number"),
    ("category,weight,keyword\nurgent,inf,asap\n", "'inf' must be a finite number"),
    ("category,weight,keyword\nurgent,nan,asap\n", "'nan' must be a finite number"),
    ("category,weight,keyword\nurgent,-5,asap\n", "'-5' must be a finite number of 0"),
    ("category,weight,keyword\n", "no keywords"),
])
def test_bad_keyword_files_say_what_to_fix(tmp_path: Path, content: str,
                                           message: str) -> None:
    lake = make_lake(tmp_path, [msg("x")])
    folder = _write(tmp_path / "kw" / "en.csv", content).parent
    with pytest.raises(KeywordsInvalid, match=message) as info:
        connect(lake, keywords_dir=folder)
    assert "Fix the file" in str(info.value)


def test_keyword_forms_include_english_endings(tmp_path: Path) -> None:
    lake = make_lake(tmp_path, [])
    with connect(lake) as con:
        forms = {r[0] for r in con.sql(
            "select form from keyword_forms where keyword in ('hire', 'emergency', "
            "'deal', 'looking for')").fetchall()}
    assert {"hire", "hires", "hired", "hiring", "emergencies", "deal", "deals",
            "dealing", "looking for"} <= forms
    assert "dealer" not in forms and "hirer" not in forms


# Words the pattern's \b pieces decide (keyword_pattern): the same hits as looking up
# every word a shorter form starts. Kelvin sign K (a separator that RE2 folds into
# "k"), dotted İ (lower() gives "i"; RE2 does not fold it), long ſ (RE2 folds it
# into "s"; lower() keeps it).
KELVIN, DOTTED_I = "\u212a", "\u0130"
EDGE_KEYWORDS = (
    "category,weight,keyword,forms\n"
    "travel,1,boo,book|booking\ntravel,1,ta,taxi\nservices,2,help,\n"
    "services,2,need help,\nproducts,1,deal,\nmisc,0.5,ok,okay\nmisc,0.5,seal,\n"
)
EDGE_CASES = [
    (f"boo{KELVIN}", 1.0, ["boo"]),
    (f"boo{KELVIN}ing", 1.0, ["boo"]),
    (f"a boo{KELVIN}s", 1.0, ["boo"]),
    (f"tax{DOTTED_I}", 1.0, ["ta"]),
    (f"tax{DOTTED_I}s", 0.0, []),
    (f"ta{KELVIN}i", 1.0, ["ta"]),
    ("taxis", 0.0, []),
    ("need helpers", 0.0, []),  # the phrase's match takes "helpers" along
    ("we help", 2.0, ["help"]),
    ("dealer dealé deal_", 0.0, []),
    ("Deals!", 1.0, ["deal"]),
    (f"o{KELVIN}", 0.5, ["ok"]),
    ("OK okay", 0.5, ["ok"]),
    ("\u017feal", 0.0, []),
]


def _scored(tmp_path: Path, texts: list[str], keyword_csv: str, columns: str) -> list:
    """`columns` of message_scores for `texts`, in order, under one keyword file."""
    rows = [msg(text, at=i, key=f"e{i:02d}") for i, text in enumerate(texts)]
    lake = make_lake(tmp_path, rows)
    keywords = _write(tmp_path / "kw" / "en.csv", keyword_csv).parent
    with connect(lake, keywords_dir=keywords) as con:
        return con.sql(f"select {columns} from message_scores "
                       "order by message_key").fetchall()


def test_words_next_to_forms_with_odd_letters(tmp_path: Path) -> None:
    got = _scored(tmp_path, [case[0] for case in EDGE_CASES], EDGE_KEYWORDS,
                  "score, keywords")
    assert got == [(score, kws) for _text, score, kws in EDGE_CASES]


# A form that belongs to several keywords (a keyword in two categories, a listed form
# of another keyword) counts for each of them: the lookup maps it to a list of ids.
SHARED_KEYWORDS = (
    "category,weight,keyword,forms\n"
    "products,1,deal,\nbusiness,2,deal,\nproducts,1,sell,deal\n"
    "services,2,need help,\n"
)
SHARED_CASES = [
    ("a deal", 4.0, ["business", "products"], ["deal", "deal", "sell"]),
    ("deals and selling", 4.0, ["business", "products"], ["deal", "deal", "sell"]),
    ("we sell", 1.0, ["products"], ["sell"]),
    ("Sell the DEAL, deal!", 4.0, ["business", "products"], ["deal", "deal", "sell"]),
    ("ideal", 0.0, [], []),
    ("Need\nhelp? need \n help", 2.0, ["services"], ["need help"]),
    ("deal, need\nhelps", 6.0, ["business", "products", "services"],
     ["deal", "deal", "need help", "sell"]),
]


def test_forms_shared_by_keywords_count_for_each(tmp_path: Path) -> None:
    got = _scored(tmp_path, [case[0] for case in SHARED_CASES], SHARED_KEYWORDS,
                  "score, categories, keywords")
    assert got == [tuple(case[1:]) for case in SHARED_CASES]


# Up to 10 categories, a message's categories are looked up by their bits; with
# more there is no such table and scoring sorts them: the same lists either way.
MANY_CATEGORIES = [f"c{n:02d}" for n in range(11)]
CATEGORY_CASES = [
    ("w10 w03 w10 w07", ["c03", "c07", "c10"]),
    ("w05 w00", ["c00", "c05"]),
    ("w04", ["c04"]),
    ("nothing here", []),
]


@pytest.mark.parametrize("count", [10, 11])
def test_categories_sorted_with_few_or_many_categories(
    tmp_path: Path, count: int
) -> None:
    rows = "".join(f"{c},1,w{c[1:]},\n" for c in MANY_CATEGORIES[:count])
    cases = [(text, [c for c in cats if int(c[1:]) < count])
             for text, cats in CATEGORY_CASES]
    got = _scored(tmp_path, [text for text, _ in cases],
                  "category,weight,keyword,forms\n" + rows, "categories")
    assert got == [(cats,) for _text, cats in cases]
