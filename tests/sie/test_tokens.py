"""Field splitting: separators, quotes, escapes and object lists."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerlink.sie.tokens import ObjectList, TokenError, _split_slow, parse_objects, split_fields


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#KONTO 1910 Kassa", ["#KONTO", "1910", "Kassa"]),
        ("#KONTO\t1910\t\t Kassa  ", ["#KONTO", "1910", "Kassa"]),
        ('#KONTO 1910 "Kassa och bank"', ["#KONTO", "1910", "Kassa och bank"]),
        ('#ADRESS "" "Box 1"', ["#ADRESS", "", "Box 1"]),
        ('#FNAMN "Citat \\"AB\\""', ["#FNAMN", 'Citat "AB"']),
        ('#FNR "C:\\ProgramData\\SPCS"', ["#FNR", "C:\\ProgramData\\SPCS"]),
        ('#FNAMN "slash \\\\"', ["#FNAMN", "slash \\"]),
        ('#VER "A" "1" 20100105 "text"', ["#VER", "A", "1", "20100105", "text"]),
        ('#FNAMN "open quote', ["#FNAMN", "open quote"]),
    ],
)
def test_split_fields(line: str, expected: list[str]) -> None:
    assert split_fields(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "#TRANS 1910 {} -137.00",
        "#TRANS 1910 {1 100 6 P1} -137.00 20250101",
        '#TRANS 1910 {1 "100" 6 "P1"} -137.00 20250101 "Text med mellanslag"',
        '#TRANS 3051\t{1 "2"\t10 "12"}\t-301050.00',
        "#TRANS 7010 {1         AO }     24000.00",
    ],
)
def test_object_list_is_one_field(line: str) -> None:
    fields = split_fields(line)

    assert isinstance(fields[2], ObjectList)
    assert fields[1] in ("1910", "3051", "7010")
    assert fields[3].lstrip("-").replace(".", "").isdigit()


def test_fast_and_slow_paths_agree_on_object_lists() -> None:
    fast = split_fields("#TRANS 1910 {1 100 6 P1} -137.00")
    slow = split_fields('#TRANS 1910 {1 100 6 P1} -137.00 ""')

    assert fast == slow[:-1]
    assert parse_objects(fast[2]) == parse_objects(slow[2]) == ((1, "100"), (6, "P1"))


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("", ()),
        (" ", ()),
        ('1 "100" 6 "P1"', ((1, "100"), (6, "P1"))),
        ('"1" "1"', ((1, "1"),)),
        ("1 Nord 6 0001", ((1, "Nord"), (6, "0001"))),
    ],
)
def test_parse_objects(inner: str, expected: tuple[tuple[int, str], ...]) -> None:
    assert parse_objects(inner) == expected


@pytest.mark.parametrize("inner", ["1", "x 100", '1 "a" 6'])
def test_parse_objects_rejects_malformed_lists(inner: str) -> None:
    with pytest.raises(TokenError):
        parse_objects(inner)


def test_unterminated_object_list_is_an_error() -> None:
    with pytest.raises(TokenError):
        split_fields('#TRANS 1910 {1 "100" -137.00 "x"')


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('#AB1 \t"{}\\-.å')), max_size=40))
def test_fast_paths_agree_with_the_general_tokenizer(line: str) -> None:
    line = line.strip()
    try:
        expected: list[str] | type[TokenError] = _split_slow(line)
    except TokenError:
        expected = TokenError
    if expected is TokenError:
        with pytest.raises(TokenError):
            split_fields(line)
    else:
        fields = split_fields(line)
        assert fields == expected
        assert [type(field) for field in fields] == [type(field) for field in expected]
