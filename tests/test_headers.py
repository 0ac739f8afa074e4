"""`MultiDict` and `Headers`: read-only, ordered, repeated keys, picklable."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping

import pytest

from tserver import Headers, MultiDict

PAIRS = [("q", "1"), ("page", "2"), ("q", "3"), ("blank", "")]


class TestMultiDict:
    def test_is_a_read_only_mapping(self) -> None:
        md = MultiDict(PAIRS)
        assert isinstance(md, Mapping)
        assert not hasattr(md, "__setitem__")

    def test_getitem_gives_the_first_value(self) -> None:
        md = MultiDict(PAIRS)
        assert md["q"] == "1"
        assert md["page"] == "2"
        assert md["blank"] == ""

    def test_getitem_of_an_absent_key_raises_key_error_naming_it(self) -> None:
        with pytest.raises(KeyError, match="missing"):
            MultiDict(PAIRS)["missing"]

    def test_get_with_and_without_default(self) -> None:
        md = MultiDict(PAIRS)
        assert md.get("q") == "1"
        assert md.get("missing") is None
        assert md.get("missing", "dflt") == "dflt"
        assert md.get("blank", "dflt") == ""

    def test_contains(self) -> None:
        md = MultiDict(PAIRS)
        assert "q" in md
        assert "blank" in md
        assert "Q" not in md
        assert 1 not in md  # type: ignore[comparison-overlap]

    def test_len_counts_distinct_keys(self) -> None:
        assert len(MultiDict(PAIRS)) == 3
        assert len(MultiDict()) == 0

    def test_iterates_distinct_keys_in_first_seen_order(self) -> None:
        md = MultiDict(PAIRS)
        assert list(md) == ["q", "page", "blank"]
        assert list(md.items()) == [("q", "1"), ("page", "2"), ("blank", "")]

    def test_getlist_gives_every_value_or_empty_list(self) -> None:
        md = MultiDict(PAIRS)
        assert md.getlist("q") == ["1", "3"]
        assert md.getlist("missing") == []

    def test_getlist_returns_a_copy(self) -> None:
        md = MultiDict(PAIRS)
        md.getlist("q").append("x")
        assert md.getlist("q") == ["1", "3"]

    def test_multi_items_keeps_every_pair_in_arrival_order(self) -> None:
        assert MultiDict(PAIRS).multi_items() == PAIRS

    def test_to_dict(self) -> None:
        assert MultiDict(PAIRS).to_dict() == {"q": ["1", "3"], "page": ["2"], "blank": [""]}

    @pytest.mark.parametrize(
        "source",
        [{"a": "1", "b": "2"}, [("a", "1"), ("b", "2")], MultiDict([("a", "1"), ("b", "2")])],
        ids=["mapping", "pairs", "multidict"],
    )
    def test_builds_from_mapping_pairs_or_multidict(self, source: object) -> None:
        md = MultiDict(source)  # type: ignore[arg-type]
        assert md.multi_items() == [("a", "1"), ("b", "2")]

    def test_assigning_raises(self) -> None:
        md = MultiDict(PAIRS)
        with pytest.raises(TypeError):
            md["q"] = "9"  # type: ignore[index]
        with pytest.raises(TypeError, match="read-only"):
            md.extra = 1
        with pytest.raises(TypeError, match="read-only"):
            del md._items
        assert md.getlist("q") == ["1", "3"]

    def test_equality(self) -> None:
        md = MultiDict(PAIRS)
        assert md == MultiDict(list(PAIRS))
        assert md != MultiDict(list(reversed(PAIRS)))
        assert MultiDict([("a", "1")]) == {"a": "1"}
        assert MultiDict([("a", "1")]) != {"a": "2"}
        assert md != "q=1"

    def test_equal_values_hash_equal(self) -> None:
        assert hash(MultiDict(PAIRS)) == hash(MultiDict(list(PAIRS)))

    def test_pickles_and_copies_by_value(self) -> None:
        md = MultiDict(PAIRS)
        for clone in (pickle.loads(pickle.dumps(md)), copy.deepcopy(md), copy.copy(md)):
            assert type(clone) is MultiDict
            assert clone == md
            assert clone.multi_items() == PAIRS

    def test_repr_shows_every_pair(self) -> None:
        assert repr(MultiDict([("a", "1"), ("a", "2")])) == "MultiDict([('a', '1'), ('a', '2')])"


class TestHeaders:
    def test_is_a_multidict(self) -> None:
        assert isinstance(Headers(), MultiDict)

    def test_keys_compare_case_insensitively(self) -> None:
        h = Headers([("X-Token", "abc"), ("Content-Type", "text/plain")])
        assert h["x-token"] == "abc"
        assert h["X-TOKEN"] == "abc"
        assert h.get("content-type") == "text/plain"
        assert "CONTENT-TYPE" in h
        assert "X-Other" not in h

    def test_repeated_names_in_any_case_are_one_key(self) -> None:
        h = Headers([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-A", "x")])
        assert h["SET-COOKIE"] == "a=1"
        assert h.getlist("Set-Cookie") == ["a=1", "b=2"]
        assert len(h) == 2
        assert h.multi_items() == [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-A", "x")]

    def test_keys_keep_their_first_spelling(self) -> None:
        h = Headers([("X-Token", "1"), ("x-token", "2")])
        assert list(h) == ["X-Token"]

    def test_absent_key_raises_key_error_with_the_name_asked(self) -> None:
        with pytest.raises(KeyError, match="X-Missing"):
            Headers([("A", "1")])["X-Missing"]

    def test_equality_ignores_name_case_but_not_values(self) -> None:
        assert Headers([("X-A", "1")]) == Headers([("x-a", "1")])
        assert Headers([("X-A", "1")]) != Headers([("X-A", "2")])
        assert Headers([("X-A", "1")]) == {"x-a": "1"}
        assert hash(Headers([("X-A", "1")])) == hash(Headers([("x-a", "1")]))

    def test_assigning_raises(self) -> None:
        h = Headers([("A", "1")])
        with pytest.raises(TypeError):
            h["A"] = "2"  # type: ignore[index]
        with pytest.raises(TypeError, match="Headers is read-only"):
            h.x = 1

    def test_pickles_as_headers(self) -> None:
        h = Headers([("X-A", "1"), ("x-a", "2")])
        clone = pickle.loads(pickle.dumps(h))
        assert type(clone) is Headers
        assert clone.getlist("X-A") == ["1", "2"]
        assert clone["x-A"] == "1"
