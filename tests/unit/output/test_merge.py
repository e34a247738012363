"""Merging team reports: one union header, no duplicated rows, order kept, a source column."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_sei.exceptions import SEIInvalidRequestError
from airflow_provider_sei.output.merge import column_keys, merge_csv, read_header, union_header


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def merged(sources: list[Path], **kwargs: bool) -> tuple[str, object]:
    sink = io.BytesIO()
    result = merge_csv(sources, sink, **kwargs)
    return sink.getvalue().decode(), result


def test_parent_and_child_exports_merge_without_repeating_the_child(tmp_path: Path) -> None:
    parent = write(tmp_path, "1.csv", "Collection Name,A,B\nRoot,1,2\nChild,3,4\n")
    child = write(tmp_path, "2.csv", "Collection Name,A,B\nChild,3,4\n")
    text, result = merged([parent, child])
    assert text == "Collection Name,A,B\nRoot,1,2\nChild,3,4\n"
    assert (result.rows, result.duplicates, result.sources) == (2, 1, 2)


def test_header_is_the_union_in_order_of_first_appearance(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "Collection Name,A\r\nX,1\r\n")
    two = write(tmp_path, "2.csv", "Collection Name,B,A\r\nY,2,3\r\n")
    text, result = merged([one, two])
    # The server's line ending is kept; a column a source lacks is left empty.
    assert text == "Collection Name,A,B\r\nX,1,\r\nY,3,2\r\n"
    assert result.columns == ["Collection Name", "A", "B"]
    assert text.count("Collection Name") == 1


def test_empty_sources_contribute_nothing(tmp_path: Path) -> None:
    empty = write(tmp_path, "0.csv", "")
    one = write(tmp_path, "1.csv", "C,A\nX,1\n")
    assert merged([empty, one])[0] == "C,A\nX,1\n"
    text, result = merged([empty])
    assert (text, result.rows, result.sources) == ("", 0, 0)


def test_quoted_fields_with_commas_and_newlines_survive(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", 'C,A\n"Team, ""Core""","multi\nline"\n')
    two = write(tmp_path, "2.csv", 'C,A\n"Team, ""Core""","multi\nline"\nOther,2\n')
    text, result = merged([one, two])
    assert list(csv.reader(io.StringIO(text))) == [
        ["C", "A"],
        ['Team, "Core"', "multi\nline"],
        ["Other", "2"],
    ]
    assert result.duplicates == 1


def test_dedupe_off_keeps_every_row(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "C,A\nX,1\n")
    _, result = merged([one, one], dedupe=False)
    assert (result.rows, result.duplicates) == (2, 0)


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "\ufeffC,A\nÉquipe,1\n")
    two = write(tmp_path, "2.csv", "C,A\nÉquipe,1\n")
    assert read_header(one) == ["C", "A"]
    assert merged([one, two])[0] == "C,A\nÉquipe,1\n"


def test_binary_file_objects_are_accepted_and_left_open(tmp_path: Path) -> None:
    source = io.BytesIO(b"C,A\nX,1\n")
    assert merged([source])[0] == "C,A\nX,1\n"  # type: ignore[list-item]
    assert not source.closed


def test_repeated_column_names_stay_distinct() -> None:
    assert column_keys(["A", "B", "A"]) == [("A", 0), ("B", 0), ("A", 1)]
    assert union_header([["A", "A"], ["A", "B"]]) == [("A", 0), ("A", 1), ("B", 0)]


cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=6)


@given(
    reports=st.lists(
        st.tuples(
            st.lists(st.sampled_from(["C", "A", "B", "D"]), min_size=1, max_size=4, unique=True),
            st.lists(st.lists(cells, min_size=4, max_size=4), max_size=5),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_property_union_header_and_each_distinct_row_once(reports: list) -> None:
    sources = []
    expected_rows: list[dict[str, str]] = []
    for header, rows in reports:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            values = row[: len(header)]
            if len(header) == 1 and values == [""]:
                continue  # a lone empty field is a blank line in CSV: no row
            writer.writerow(values)
            expected_rows.append(dict(zip(header, values, strict=True)))
        sources.append(io.BytesIO(out.getvalue().encode()))
    sink = io.BytesIO()
    result = merge_csv(sources, sink)
    parsed = list(csv.DictReader(io.StringIO(sink.getvalue().decode(), newline="")))
    union = list(dict.fromkeys(name for header, _ in reports for name in header))
    assert result.columns == union
    normalised = [tuple(row.get(c, "") for c in union) for row in expected_rows]
    distinct = list(dict.fromkeys(normalised))
    assert [tuple(r[c] for c in union) for r in parsed] == distinct
    assert result.rows == len(distinct)
    assert result.duplicates == len(normalised) - len(distinct)


# -- the source column ---------------------------------------------------------------------


def test_source_column_names_each_rows_source_from_pairs(tmp_path: Path) -> None:
    parent = write(tmp_path, "1.csv", "Collection Name,A\nRoot,1\nChild,3\n")
    child = write(tmp_path, "2.csv", "Collection Name,A\nChild,3\nGrandchild,4\n")
    sink = io.BytesIO()
    result = merge_csv([(parent, "1"), (child, "2")], sink, source_column="source_team_id")
    # Dedupe ignores the source: the child's row is kept once, from the first source.
    assert sink.getvalue().decode() == (
        "Collection Name,A,source_team_id\nRoot,1,1\nChild,3,1\nGrandchild,4,2\n"
    )
    assert result.columns == ["Collection Name", "A", "source_team_id"]
    assert (result.rows, result.duplicates, result.sources) == (3, 1, 2)


def test_source_column_from_parallel_labels_and_without_dedupe(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "C,A\r\nX,1\r\n")
    two = write(tmp_path, "2.csv", "C,B\r\nX,2\r\n")
    empty = write(tmp_path, "0.csv", "")
    sink = io.BytesIO()
    result = merge_csv(
        [one, empty, two], sink, source_column="team", labels=["a,1", "0", "b"], dedupe=False
    )
    assert list(csv.reader(io.StringIO(sink.getvalue().decode(), newline=""))) == [
        ["C", "A", "B", "team"],
        ["X", "1", "", "a,1"],
        ["X", "", "2", "b"],
    ]
    assert sink.getvalue().endswith(b"\r\n")
    assert result.sources == 2


def test_pairs_without_source_column_merge_as_before(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "C,A\nX,1\n")
    sink = io.BytesIO()
    merge_csv([(one, "1"), (one, "2")], sink)
    assert sink.getvalue() == b"C,A\nX,1\n"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source_column": "team"}, "source_column"),  # no labels
        ({"source_column": "team", "labels": ["1"]}, "labels"),  # one label for two sources
        ({"source_column": "A", "labels": ["1", "2"]}, "source_column"),  # a report's column
    ],
)
def test_source_column_errors(tmp_path: Path, kwargs: dict, field: str) -> None:
    one = write(tmp_path, "1.csv", "C,A\nX,1\n")
    with pytest.raises(SEIInvalidRequestError) as info:
        merge_csv([one, one], io.BytesIO(), **kwargs)
    assert info.value.field == field


def test_pairs_and_plain_sources_do_not_mix(tmp_path: Path) -> None:
    one = write(tmp_path, "1.csv", "C,A\nX,1\n")
    with pytest.raises(SEIInvalidRequestError):
        merge_csv([(one, "1"), one], io.BytesIO(), source_column="team")


@given(
    reports=st.lists(
        st.lists(st.lists(st.sampled_from(["x", "y", "z,1", ""]), min_size=2, max_size=2)),
        min_size=1,
        max_size=4,
    )
)
def test_property_each_distinct_row_once_labelled_by_its_first_source(reports: list) -> None:
    sources, first_label = [], {}
    for label, rows in enumerate(reports):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["C", "A"])
        writer.writerows(rows)
        sources.append((io.BytesIO(out.getvalue().encode()), f"team-{label}"))
        for row in rows:
            first_label.setdefault(tuple(row), f"team-{label}")
    sink = io.BytesIO()
    result = merge_csv(sources, sink, source_column="source_team_id")
    parsed = list(csv.reader(io.StringIO(sink.getvalue().decode(), newline="")))
    assert parsed[0] == ["C", "A", "source_team_id"]
    assert [(tuple(r[:2]), r[2]) for r in parsed[1:]] == list(first_label.items())
    assert result.rows == len(first_label)
