"""Load-time checks of an artifact, pinned value by value (mutation testing of ``mml/io/_checks.py``).

Every manifest field with the exact message, the boundaries (format version 1 and the
supported maximum, size 0, nesting exactly at the cap and one over), file names, and the
directory-listing checks — all on plain values, no artifact written.
"""

import json
from pathlib import Path

import pytest

from mml.errors import ArtifactError
from mml.io._checks import (
    MAX_DEPTH,
    check_manifest,
    check_name,
    check_tree,
    json_depth,
    parse_json,
    read_json,
)

M = Path("/art/manifest.json")
NAME_MESSAGE = "the manifest lists {!r}: a file name must be a relative, normalised path inside the artifact"


def _manifest(**changes):
    m = {
        "format": "mml-artifact",
        "format_version": 1,
        "type": "mml.data:FeatureSet",
        "kind": "data",
        "mml_version": "0.1",
        "files": {"config.json": "ab", "tables/t0.arrow": "cd"},
        "sizes": {"config.json": 10, "tables/t0.arrow": 0},
    }
    for k, v in changes.items():
        if v is _DROP:
            m.pop(k)
        else:
            m[k] = v
    return m


_DROP = object()


def _check(m, max_version=2):
    return check_manifest(m, M, format_name="mml-artifact", max_version=max_version)


# --- file names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["config.json", "tables/t0.arrow", "a/b/c", "_x", "9", "a-b.c_d", "x..y"])
def test_good_names_are_returned(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "manifest.json",
        "a/.hidden",
        "/etc/passwd",
        "a\\b",
        "./a",
        "a/./b",
        "a//b",
        "a/",
        "../a",
        "a/../b",
        "..",
        ".",
        "",
        "-a",
        ".a",
        "a/-b",
        "a b",
        "a/b c",
        "é",
        3,
        None,
        ["a"],
    ],
)
def test_bad_names_are_refused(name):
    with pytest.raises(ArtifactError) as info:
        check_name(name)
    assert str(info.value) == NAME_MESSAGE.format(name)


def test_a_nested_manifest_name_is_a_file_name():
    assert check_name("tables/manifest.json") == "tables/manifest.json"


def test_a_long_bad_name_is_cut_to_200_characters():
    name = "/" + "x" * 400
    with pytest.raises(ArtifactError) as info:
        check_name(name)
    assert str(info.value) == (
        f"the manifest lists {repr(name)[:200]}: a file name must be a relative, normalised path inside the artifact"
    )


# --- JSON depth ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "depth"),
    [
        (1, 0),
        ("s", 0),
        (None, 0),
        ([], 1),
        ({}, 1),
        ([1, 2], 1),
        ({"a": 1}, 1),
        ([[]], 2),
        ({"a": {"b": []}}, 3),
        ([1, [2, [3]], {"x": 0}], 3),
        ({"a": [], "b": [[[]]]}, 4),
        ([{"a": [[1]]}, []], 4),
    ],
)
def test_json_depth(doc, depth):
    assert json_depth(doc) == depth


def _nested(depth):
    return ("[" * depth + "]" * depth).encode()


def test_nesting_exactly_at_the_cap_parses_and_one_over_is_refused():
    assert MAX_DEPTH == 200
    doc = parse_json(_nested(MAX_DEPTH), Path("/art/config.json"))
    assert json_depth(doc) == MAX_DEPTH
    with pytest.raises(ArtifactError) as info:
        parse_json(_nested(MAX_DEPTH + 1), Path("/art/config.json"))
    assert (
        str(info.value) == "/art/config.json is nested more than 200 levels deep; the artifact is corrupted"
    )


def test_nesting_that_overflows_the_parser_is_an_artifact_error():
    with pytest.raises(ArtifactError) as info:
        parse_json(_nested(200_000), Path("/art/config.json"))
    assert (
        str(info.value) == "/art/config.json is nested more than 200 levels deep; the artifact is corrupted"
    )


def test_parse_json_values_and_errors():
    assert parse_json(b'{"a": [1, 2.5, "\xc3\xa9"]}', Path("x")) == {"a": [1, 2.5, "é"]}
    with pytest.raises(ArtifactError) as info:
        parse_json(b"{", Path("/art/config.json"))
    assert str(info.value).startswith("/art/config.json is not valid JSON (")
    assert str(info.value).endswith("); the artifact is corrupted")
    assert "Expecting property name" in str(info.value)
    with pytest.raises(
        ArtifactError, match=r"^/art/c\.json is not valid JSON \(.*utf-8.*\); the artifact is corrupted$"
    ):
        parse_json(b'"\xff"', Path("/art/c.json"))


def test_read_json(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"x": [[1]]}))
    assert read_json(p) == {"x": [[1]]}
    with pytest.raises(ArtifactError) as info:
        read_json(tmp_path / "missing.json")
    assert str(info.value).startswith(f"{tmp_path / 'missing.json'} cannot be read: [Errno 2]")
    p.write_bytes(_nested(MAX_DEPTH + 1))
    with pytest.raises(ArtifactError) as info:
        read_json(p)
    assert str(info.value) == f"{p} is nested more than 200 levels deep; the artifact is corrupted"


# --- manifest fields -----------------------------------------------------------------------


def test_a_valid_manifest_is_returned_as_is():
    m = _manifest()
    assert _check(m) is m
    assert _check(_manifest(sizes=_DROP)) == _manifest(sizes=_DROP)  # written before sizes existed
    assert _check(_manifest(sizes=None))["sizes"] is None
    assert _check(_manifest(kind=None))["kind"] is None
    assert _check(_manifest(kind=_DROP)) == _manifest(kind=_DROP)
    assert _check(_manifest(mml_version=_DROP)) == _manifest(mml_version=_DROP)
    assert _check(_manifest(files={}, sizes={})) == _manifest(files={}, sizes={})
    assert _check(_manifest(type="a:B.C"))["type"] == "a:B.C"


@pytest.mark.parametrize("m", [None, [], "mml-artifact", {}, {"format": "other"}, {"format": None}])
def test_not_a_manifest(m):
    with pytest.raises(ArtifactError) as info:
        _check(m)
    assert str(info.value) == "/art/manifest.json is not an mml manifest (format is not 'mml-artifact')"


def test_the_format_name_is_the_callers():
    with pytest.raises(ArtifactError) as info:
        check_manifest(_manifest(), M, format_name="mml-run", max_version=1)
    assert str(info.value) == "/art/manifest.json is not an mml manifest (format is not 'mml-run')"


def test_format_versions_from_1_to_the_maximum_are_read():
    for v in (1, 2, 3):
        assert _check(_manifest(format_version=v), max_version=3)["format_version"] == v


@pytest.mark.parametrize("v", [4, 5, 100])
def test_a_newer_format_version_says_upgrade(v):
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(format_version=v), max_version=3)
    assert (
        str(info.value) == f"/art/manifest.json has format version {v}, this mml reads up to 3; upgrade mml"
    )


@pytest.mark.parametrize(
    ("v", "shown"),
    [
        (0, "0"),
        (-1, "-1"),
        (True, "True"),
        (False, "False"),
        ("1", "'1'"),
        (1.0, "1.0"),
        (None, "None"),
        (_DROP, "None"),
        ([1], "[1]"),
    ],
)
def test_a_bad_format_version_is_corruption(v, shown):
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(format_version=v))
    assert str(info.value) == (
        f"/art/manifest.json has format version {shown}, not an int from 1; the manifest is corrupted"
    )


def test_a_long_format_version_is_cut_to_60_characters():
    v = "9" * 100
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(format_version=v))
    assert str(info.value) == (
        f"/art/manifest.json has format version {repr(v)[:60]}, not an int from 1; the manifest is corrupted"
    )


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"type": 1}, "type 1 is not 'package.module:Name'"),
        ({"type": _DROP}, "type None is not 'package.module:Name'"),
        ({"type": "nopath"}, "type 'nopath' is not 'package.module:Name'"),
        ({"type": "a:B "}, "type 'a:B ' is not 'package.module:Name'"),
        ({"type": "a.:B"}, "type 'a.:B' is not 'package.module:Name'"),
        ({"type": "1a:B"}, "type '1a:B' is not 'package.module:Name'"),
        ({"kind": 3}, "kind 3 is not a string"),
        ({"kind": ["data"]}, "kind ['data'] is not a string"),
        ({"mml_version": [1]}, "mml_version [1] is not a string"),
        ({"mml_version": None}, "mml_version None is not a string"),
        ({"files": [], "sizes": _DROP}, "files is not a mapping of file name to hash"),
        ({"files": _DROP, "sizes": _DROP}, "files is not a mapping of file name to hash"),
        ({"files": {"config.json": 1}, "sizes": _DROP}, "files is not a mapping of file name to hash"),
        ({"files": {"a": "x", "b": None}, "sizes": _DROP}, "files is not a mapping of file name to hash"),
        ({"sizes": {"config.json": 10}}, "sizes is not a mapping of every listed file to its size in bytes"),
        (
            {"sizes": {"config.json": 10, "tables/t0.arrow": 0, "x": 1}},
            "sizes is not a mapping of every listed file to its size in bytes",
        ),
        (
            {"sizes": {"config.json": -1, "tables/t0.arrow": 0}},
            "sizes is not a mapping of every listed file to its size in bytes",
        ),
        (
            {"sizes": {"config.json": True, "tables/t0.arrow": 0}},
            "sizes is not a mapping of every listed file to its size in bytes",
        ),
        (
            {"sizes": {"config.json": 1.0, "tables/t0.arrow": 0}},
            "sizes is not a mapping of every listed file to its size in bytes",
        ),
        ({"sizes": [10, 0]}, "sizes is not a mapping of every listed file to its size in bytes"),
        (
            {"files": [], "sizes": {}},
            "files is not a mapping of file name to hash; sizes is not a mapping of every listed file to its size in bytes",
        ),
    ],
)
def test_each_bad_field_is_named(changes, problem):
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(**changes))
    assert str(info.value) == f"/art/manifest.json is corrupted: {problem}"


def test_every_bad_field_is_named_at_once():
    m = _manifest(type=1, kind=2, mml_version=3, files=[], sizes=[])
    with pytest.raises(ArtifactError) as info:
        _check(m)
    assert str(info.value) == (
        "/art/manifest.json is corrupted: type 1 is not 'package.module:Name'; kind 2 is not a string; "
        "mml_version 3 is not a string; files is not a mapping of file name to hash; "
        "sizes is not a mapping of every listed file to its size in bytes"
    )


def test_long_field_values_are_cut_to_100_characters():
    t = "t" * 300
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(type=t, kind=[t], mml_version=[t]))
    assert str(info.value) == (
        f"/art/manifest.json is corrupted: type {repr(t)[:100]} is not 'package.module:Name'; "
        f"kind {repr([t])[:100]} is not a string; mml_version {repr([t])[:100]} is not a string"
    )


def test_a_size_of_zero_is_a_size():
    m = _manifest(sizes={"config.json": 0, "tables/t0.arrow": 0})
    assert _check(m) is m


def test_every_listed_name_is_checked():
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(files={"config.json": "a", "../x": "b"}, sizes=_DROP))
    assert str(info.value) == NAME_MESSAGE.format("../x")
    with pytest.raises(ArtifactError) as info:
        _check(_manifest(files={"manifest.json": "a"}, sizes={"manifest.json": 1}))
    assert str(info.value) == NAME_MESSAGE.format("manifest.json")


# --- the directory listing -----------------------------------------------------------------


ROOT = Path("/art")
FILES = {"files": {"config.json": "a", "tables/t0.arrow": "b", "tables/deep/t1.arrow": "c"}}
GOOD = {
    "manifest.json": "file",
    "config.json": "file",
    "tables": "dir",
    "tables/t0.arrow": "file",
    "tables/deep": "dir",
    "tables/deep/t1.arrow": "file",
}


def test_a_listing_of_exactly_the_manifest_passes():
    assert check_tree(GOOD, FILES, ROOT) is None
    assert check_tree({"config.json": "file"}, {"files": {"config.json": "a"}}, ROOT) is None
    assert check_tree({}, {"files": {}}, ROOT) is None


@pytest.mark.parametrize(
    ("rel", "what", "message"),
    [
        (
            "config.json",
            "symlink",
            "/art/config.json is a symbolic link; artifacts never contain links (tampered with)",
        ),
        (
            "tables",
            "symlink",
            "/art/tables is a symbolic link; artifacts never contain links (tampered with)",
        ),
        ("evil", "symlink", "/art/evil is a symbolic link; artifacts never contain links (tampered with)"),
        ("other", "dir", "/art/other is a directory the manifest does not list; tampered with"),
        (
            "tables/t0.arrow",
            "dir",
            "/art/tables/t0.arrow is a directory the manifest does not list; tampered with",
        ),
        (
            "tables/deep/more",
            "dir",
            "/art/tables/deep/more is a directory the manifest does not list; tampered with",
        ),
        ("evil.py", "file", "/art/evil.py is not listed in the manifest; the artifact was tampered with"),
        ("tables", "file", "/art/tables is not listed in the manifest; the artifact was tampered with"),
        (
            "tables/manifest.json",
            "file",
            "/art/tables/manifest.json is not listed in the manifest; the artifact was tampered with",
        ),
        ("config.json", "other", "/art/config.json is not a regular file; the artifact is corrupted"),
        ("manifest.json", "other", "/art/manifest.json is not a regular file; the artifact is corrupted"),
        ("evil", "other", "/art/evil is not listed in the manifest; the artifact was tampered with"),
    ],
)
def test_each_bad_entry_is_named(rel, what, message):
    found = {**GOOD, rel: what}
    with pytest.raises(ArtifactError) as info:
        check_tree(found, FILES, ROOT)
    assert str(info.value) == message


def test_the_first_bad_entry_in_sorted_order_is_reported():
    found = {**GOOD, "zz": "file", "aa": "file"}
    with pytest.raises(ArtifactError) as info:
        check_tree(found, FILES, ROOT)
    assert str(info.value) == "/art/aa is not listed in the manifest; the artifact was tampered with"


def test_only_parents_of_listed_files_are_directories():
    # "tables/deep/t1.arrow" makes "tables" and "tables/deep" directories, not the file itself
    manifest = {"files": {"a/b/c/d.txt": "x"}}
    ok = {"a": "dir", "a/b": "dir", "a/b/c": "dir", "a/b/c/d.txt": "file"}
    assert check_tree(ok, manifest, ROOT) is None
    with pytest.raises(ArtifactError, match=r"^/art/a/b/c/d\.txt is a directory the manifest does not list"):
        check_tree({**ok, "a/b/c/d.txt": "dir"}, manifest, ROOT)
    with pytest.raises(ArtifactError, match=r"^/art/b is a directory the manifest does not list"):
        check_tree({**ok, "b": "dir"}, manifest, ROOT)
    with pytest.raises(ArtifactError, match=r"^/art/a/b/c/d\.txt/e is not listed"):
        check_tree({**ok, "a/b/c/d.txt/e": "file"}, manifest, ROOT)
