"""How the console's search box text is understood: phones in any format, email fragments,
names in any case and script, exact identifiers - and the patterns each store is given."""

from __future__ import annotations

import fnmatch
import re
import uuid

import pytest

from otklik.profiles.search import (
    display_name,
    glob_pattern,
    letter_class,
    like_escape,
    name_classes,
    parse,
    parse_filters,
    phone_patterns,
    raw_prefilters,
    regex_pattern,
)

STORED = "+79123456789"


def like(pattern: str, value: str) -> bool:
    """SQL LIKE with `\\` as the escape, as the repository uses it (case-sensitive here)."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out += re.escape(pattern[i + 1])
            i += 2
            continue
        out += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        i += 1
    return re.fullmatch(out, value, re.S) is not None


@pytest.mark.parametrize(
    "typed",
    [
        "8 (912) 345-67-89",
        "+7 912 345-67-89",
        "89123456789",
        "79123456789",
        "+7 912 345",
        "8 912 345",
        "9123456",
        "345-67-89",
        "(912)",
    ],
)
def test_a_phone_in_any_format_or_any_part_finds_the_stored_number(typed: str) -> None:
    patterns = phone_patterns(typed, "RU")
    assert patterns and any(like(p, STORED) for p in patterns), patterns


def test_a_whole_number_is_matched_exactly_and_a_start_as_a_prefix() -> None:
    assert phone_patterns("8 (912) 345-67-89", "RU") == ("+79123456789",)
    assert phone_patterns("+7 912 345", "RU") == ("+7912345%",)
    assert phone_patterns("8 912", "RU") == ("%8912%", "+7912%")
    assert not any(like(p, "+79223456789") for p in phone_patterns("+7 912", "RU"))


def test_the_trunk_prefix_8_means_7_only_where_it_does() -> None:
    assert phone_patterns("8 912", "DE") == ("%8912%",)


@pytest.mark.parametrize("typed", ["ivan", "12", "+", "8-", "ivan 912", "9.1.2a"])
def test_text_that_is_not_a_phone_or_too_short_is_not_searched_as_one(typed: str) -> None:
    assert phone_patterns(typed, "RU") == ()


def test_an_email_fragment_is_lower_cased_and_its_wildcards_are_literal() -> None:
    search = parse("  Olga.IVA ", "RU")
    assert search is not None and search.email_fragment == "%olga.iva%"
    assert like(search.email_fragment, "olga.ivanova@example.com")
    wild = parse("a_b%c", "RU")
    assert wild is not None and wild.email_fragment == "%a\\_b\\%c%"
    assert like(wild.email_fragment, "xa_b%cx") and not like(wild.email_fragment, "xaXbYcx")
    assert like_escape("\\") == "\\\\"


def test_an_exact_email_is_also_tried_normalised() -> None:
    search = parse("Olga.Ivanova@Example.COM", "RU")
    assert search is not None
    assert set(search.exact_values) == {"Olga.Ivanova@Example.COM", "olga.ivanova@example.com"}


def test_whitespace_is_collapsed_and_empty_text_searches_nothing() -> None:
    assert parse("   ", "RU") is None and parse(None, "RU") is None
    search = parse("  ivan \t  petrov ", "RU")
    assert search is not None and search.text == "ivan petrov"
    assert search.email_fragment is None  # emails have no spaces


def test_one_character_is_only_an_exact_identifier() -> None:
    search = parse("x", "RU")
    assert search is not None and search.exact_values == ("x",)
    assert search.email_fragment is None and search.name_classes == ()


def test_digits_are_not_searched_as_a_name() -> None:
    search = parse("9123456", "RU")
    assert search is not None and search.name_classes == ()


def test_a_uuid_is_also_a_profile_id() -> None:
    pid = uuid.uuid4()
    search = parse(str(pid), "RU")
    assert search is not None and search.profile_id == pid
    other = parse("olga", "RU")
    assert other is not None and other.profile_id is None


def test_letters_match_in_either_case_in_any_script_and_yo_is_e() -> None:
    assert set(letter_class("о")) == {"о", "О"}
    assert set(letter_class("Ж")) == {"ж", "Ж"}
    assert set(letter_class("e")) == {"e", "E"}
    assert set(letter_class("е")) == {"е", "Е", "ё", "Ё"}  # Cyrillic е
    assert set(letter_class("Ё")) == {"е", "Е", "ё", "Ё"}
    assert letter_class("7") == ("7",) and letter_class(" ") == (" ",)
    assert set(letter_class("ß")) >= {"ß"}  # upper() is two letters: kept as is


@pytest.mark.parametrize(
    ("typed", "name", "matches"),
    [
        ("ольга", "Ольга Иванова", True),
        ("ИВАНОВА", "Ольга Иванова", True),
        ("га ив", "Ольга Иванова", True),
        ("петр", "Пётр", True),
        ("ПЁТР", "Петр", True),
        ("olga", "Ольга", False),
        ("ivan", "IVAN", True),
        ("a*b", "xa*by", True),
        ("a*b", "xaZZby", False),
        ("a?b", "aXb", False),
        ("[x]", "a[x]b", True),
        ("a.b", "axb", False),
        ("(1+1)", "x(1+1)", True),
    ],
)
def test_name_patterns_match_the_same_names_on_both_stores(
    typed: str, name: str, matches: bool
) -> None:
    classes = name_classes(typed)
    # SQLite's GLOB is fnmatch's case-sensitive translation ([!...] aside, never produced).
    assert fnmatch.fnmatchcase(name, glob_pattern(classes)) is matches
    # PostgreSQL's ~ (ARE) agrees with Python's re for these bracket classes and escapes.
    assert (re.search(regex_pattern(classes), name) is not None) is matches


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("роман", '{"first_name":"Роман"}'),
        ("РОМАН попов", '{"name":"Роман Попов"}'),
        ("оман", '{"name":"РОМАН"}'),
        ("петр", '{"firstName":"Пётр"}'),
        ("на-ма", '{"name":"Анна-Мария"}'),
        ("IVAN", '{"first_name":"ivan"}'),
        ("ян", '{"name":"Ян"}'),
    ],
)
def test_the_raw_text_prefilter_keeps_every_name_that_matches(typed: str, stored: str) -> None:
    groups = raw_prefilters(typed)
    assert groups
    for variants in groups:  # ASCII folded as SQLite's LIKE does
        assert any(
            like(v.lower(), stored.lower()) if v.isascii() else like(v, stored) for v in variants
        )


def test_the_raw_text_prefilter_steps_aside_for_text_json_escapes() -> None:
    assert raw_prefilters('o"brien') == [] and raw_prefilters("a\\b") == []
    assert raw_prefilters("роман") == [("%оман%", "%ОМАН%")]
    assert raw_prefilters("петр") == [("%_тр%", "%_ТР%")]


def test_a_name_search_needs_a_word_of_two_letters() -> None:
    for typed in ("u-000124", "9123456", "a 1"):
        search = parse(typed, "RU")
        assert search is not None and search.name_classes == ()
    found = parse("ян", "RU")
    assert found is not None and found.name_classes


def test_filters_keep_only_the_offered_periods() -> None:
    assert parse_filters(seen_days=0).seen_days is None
    assert parse_filters(seen_days=-3).seen_days is None
    assert parse_filters(seen_days=99999).seen_days == 3650
    assert not parse_filters().active and parse_filters(has_orders=True).active


@pytest.mark.parametrize(
    ("traits", "name"),
    [
        ({"name": " Ольга Иванова "}, "Ольга Иванова"),
        ({"first_name": "Ivan", "last_name": "Petrov"}, "Ivan Petrov"),
        ({"firstName": "Пётр"}, "Пётр"),
        ({"name": "", "first_name": "Anna"}, "Anna"),
        ({"email": "x@y.z"}, None),
        (None, None),
    ],
)
def test_the_display_name_comes_from_the_usual_name_traits(
    traits: dict[str, str] | None, name: str | None
) -> None:
    assert display_name(traits) == name
