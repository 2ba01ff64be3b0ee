"""formats.py: the tuple answer parser, normalisation, grammar and prompts."""

from __future__ import annotations

import pytest

from senti_edge.bench.formats import (build_tuple_prefix, build_tuple_query, norm_tuple, parse_tuples, render_tuples,
                                      tuples_grammar)
from senti_edge.sentibench import NULL, clean_tuple

POL = ("negative", "neutral", "positive")


@pytest.mark.parametrize("output, expected", [
    (' [["meal", "positive"], ["service", "negative"]]', [("meal", "positive"), ("service", "negative")]),
    (" []", []),
    ("[]\nSentence: next one", []),
    ('```json\n[["meal", "positive"]]\n```', [("meal", "positive")]),
    ("[('meal', 'positive'), ('the staff', 'negative')]", [("meal", "positive"), ("the staff", "negative")]),
    ('Here you go: [["meal", "Positive"]] hope this helps ]', [("meal", "positive")]),
    ('["meal", "positive"]', [("meal", "positive")]),  # a bare tuple
    ('[["  big   meal ", "positive"]]', [("big meal", "positive")]),
    ('[[null, "positive"]]', [(NULL, "positive")]),
    ("[(None, 'positive')]", [(NULL, "positive")]),
    ('[["meal", "positive"], ["meal", "positive"]]', [("meal", "positive"), ("meal", "positive")]),  # kept
])
def test_parse_valid(output, expected):
    assert parse_tuples(output, 2, POL) == expected


@pytest.mark.parametrize("output", [
    "",
    "positive",
    ' [["meal", "positive"], ["serv',                         # cut off by max_tokens
    '[["meal", "great"]]',                                    # unknown polarity
    '[["meal"]]',                                             # wrong arity
    '[["meal", "food", "positive"]]',                         # wrong arity
    '[["meal", 3]]',                                          # not a string
    '[["meal", "positive"], "oops"]',
    "[[meal, positive]]",                                     # unquoted
    '{"aspect": "meal", "polarity": "positive"}',
    '[{"aspect": "meal", "polarity": "positive"}]',
])
def test_parse_malformed_is_none(output):
    assert parse_tuples(output, 2, POL) is None


def test_parse_quads_with_null_aspect():
    out = ' [["food quality", "NULL", "tasty", "positive"], ["service general", null, "rude", "negative"]]'
    assert parse_tuples(out, 4, POL) == [("food quality", NULL, "tasty", "positive"),
                                         ("service general", NULL, "rude", "negative")]


def test_norm_and_clean():
    assert clean_tuple(["The  Room", None, "Positive"]) == ("The Room", NULL, "positive")
    assert norm_tuple(["The  Room", "null", "Positive"]) == ("the room", NULL, "positive")
    assert norm_tuple(["", "none", "POSITIVE"]) == (NULL, NULL, "positive")


def test_render_round_trip():
    tuples = [("caf\u00e9 \"au\" lait", "positive"), (NULL, "negative")]
    assert parse_tuples(" " + render_tuples(tuples), 2, POL) == tuples


def test_grammar_compiles_and_lists_labels():
    from llama_cpp import LlamaGrammar

    g = tuples_grammar(4, ("Positive", "Negative", "Neutral"))
    assert '"\\"positive\\""' in g and "tup ( \", \" tup ){0,7}" in g
    assert g.count("str") >= 3
    LlamaGrammar.from_string(g, verbose=False)  # raises on a GBNF syntax error


def test_prompts_keep_user_text_untrusted():
    prefix = build_tuple_prefix("Find {labels}.", POL, [("good\nfood <|im_end|>", [("food", "positive")])])
    assert prefix[0].text == "Find negative, neutral, positive.\n\n" and prefix[0].trusted
    user = [s for s in prefix if not s.trusted]
    assert user[0].text == " good food <|im_end|>"  # folded onto one line, special tokens not parsed
    assert user[1].text == ' [["food", "positive"]]'
    query = build_tuple_query("x")
    assert query[-1].text == "\nLabel:" and query[-1].trusted


def test_close_truncated_grammar_output():
    from senti_edge.bench.formats import close_truncated

    cut = ' [["meal", "positive"], ["serv'
    assert parse_tuples(cut, 2, POL) is None
    assert parse_tuples(close_truncated(cut), 2, POL) == [("meal", "positive")]
    assert parse_tuples(close_truncated(' [["ser'), 2, POL) == []
    assert parse_tuples(close_truncated(""), 2, POL) == []
