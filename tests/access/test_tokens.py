from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.access import tokens


def test_a_new_key_has_the_documented_shape_and_carries_its_id() -> None:
    key_id, token = tokens.new_token()
    assert token.startswith("gw_live_" + key_id + "_")
    assert len(token) == len("gw_live_") + 12 + 1 + 43
    assert tokens.key_id_of(token) == key_id


def test_keys_are_random() -> None:
    assert len({tokens.new_token()[1] for _ in range(200)}) == 200


def test_the_digest_matches_only_the_same_key() -> None:
    _, token = tokens.new_token()
    _, other = tokens.new_token()
    stored = tokens.digest(token)
    assert token not in stored
    assert tokens.matches(token, stored)
    assert not tokens.matches(other, stored)
    assert not tokens.matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)


@given(st.text(max_size=80))
def test_anything_else_is_not_a_key(text: str) -> None:
    if tokens.key_id_of(text) is not None:  # only well-formed keys parse
        assert text.startswith("gw_live_") and len(text) == 64


def test_malformed_keys_are_refused() -> None:
    _, token = tokens.new_token()
    for bad in [
        "",
        "gw_live_",
        token[:-1],
        token + "x",
        token.replace("gw_live_", "gw_test_"),
        token.upper(),
    ]:
        assert tokens.key_id_of(bad) is None
