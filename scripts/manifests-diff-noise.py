#!/usr/bin/env python3
"""Diff noise of a ruamel.yaml round trip against crowsnest, per fixture.

For each fixture, NOISE/NAME.edits.json lists the edits (document, path,
new value) and NOISE/NAME.crowsnest is crowsnest's output. This script
makes the same edits with ruamel.yaml's round-trip loader in two setups,
and counts, for every output, the lines changed beyond the target lines:
original lines changed or removed that hold no edited value, plus lines
added beyond one per changed target line.

  ruamel defaults: YAML() (round trip), preserve_quotes=True, new values
                   wrapped in the old value's quoting class;
  ruamel tuned:    the same plus width=4096, the file's own line break,
                   and indent(mapping=2, sequence=4, offset=2).
"""
import difflib
import io
import json
import sys
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString


def noise(original: str, patched: str, target_lines: set) -> int:
    a = original.splitlines(keepends=True)
    b = patched.splitlines(keepends=True)
    removed, added = set(), 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed.update(range(i1 + 1, i2 + 1))
        if tag in ("replace", "insert"):
            added += j2 - j1
    changed_targets = removed & target_lines
    return len(removed - target_lines) + max(0, added - len(changed_targets))


def ruamel_patch(text: str, edits: list, tuned: bool) -> str:
    yaml = YAML()
    yaml.preserve_quotes = True
    if tuned:
        yaml.width = 4096
        yaml.indent(mapping=2, sequence=4, offset=2)
        if "\r\n" in text:
            yaml.line_break = "\r\n"
    docs = list(yaml.load_all(text))
    for edit in edits:
        node = docs[edit["document"]]
        *parents, last = edit["path"]
        for step in parents:
            node = node[step]
        old = node[last]
        value = edit["value"]
        if isinstance(old, SingleQuotedScalarString):
            value = SingleQuotedScalarString(value)
        elif isinstance(old, DoubleQuotedScalarString):
            value = DoubleQuotedScalarString(value)
        node[last] = value
    stream = io.StringIO()
    yaml.dump_all(docs, stream)
    return stream.getvalue()


def main() -> None:
    fixtures, noise_dir = Path(sys.argv[1]), Path(sys.argv[2])
    rows, totals = [], [0, 0, 0]
    for edits_file in sorted(noise_dir.glob("*.edits.json")):
        name = edits_file.name[: -len(".edits.json")]
        original = (fixtures / name).read_bytes().decode("utf-8")
        edits = json.loads(edits_file.read_text())
        targets = {e["line"] for e in edits if e["old"] != e["value"]}
        ours = (noise_dir / f"{name}.crowsnest").read_bytes().decode("utf-8")
        results = [noise(original, ours, targets)]
        for tuned in (False, True):
            try:
                results.append(noise(original, ruamel_patch(original, edits, tuned), targets))
            except Exception as e:  # a fixture ruamel cannot round-trip
                results.append(f"error: {type(e).__name__}")
        for i, r in enumerate(results):
            if isinstance(r, int):
                totals[i] += r
        rows.append((name, len(targets), *results))
    print("| fixture | target lines | crowsnest | ruamel.yaml defaults | ruamel.yaml tuned |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(f"| **total** | {sum(r[1] for r in rows)} | **{totals[0]}** | {totals[1]} | {totals[2]} |")
    if totals[0] != 0:
        sys.exit("crowsnest changed lines beyond its targets")


if __name__ == "__main__":
    main()
