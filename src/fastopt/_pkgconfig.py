"""Read fastopt.pc (pkg-config's file format) for ``python -m fastopt config --cflags/--libs``.

Only what fastopt's own generated file uses: ``name=value`` variables (which may refer to
earlier ones and to ``${pcfiledir}``, the file's directory), ``Field: value`` lines and
``#`` comments. ``-I``/``-L`` paths come out absolute and normalised.
"""

from __future__ import annotations

import os
import re

_LINE = re.compile(r"^([A-Za-z_][\w.]*)\s*([:=])\s*(.*)$")
_VARIABLE = re.compile(r"\$\{(\w+)\}")


def _expand(text: str, variables: dict[str, str], path: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise ValueError(f"{path}: ${{{name}}} is not defined")
        return variables[name]

    return _VARIABLE.sub(value, text)


def read(path: str) -> tuple[dict[str, str], dict[str, str]]:
    """(variables, fields) of a .pc file; variables expanded, fields as written."""
    variables = {"pcfiledir": os.path.dirname(os.path.abspath(path))}
    fields: dict[str, str] = {}
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            match = _LINE.match(line)
            if match is None:
                raise ValueError(f"{path}:{number}: not a pkg-config line: {raw.strip()!r}")
            name, kind, text = match.groups()
            if kind == "=":
                variables[name] = _expand(text, variables, path)
            else:
                fields[name] = text
    return variables, fields


def flags(path: str, field: str) -> list[str]:
    """The words of `field` ("Cflags" or "Libs"), variables expanded, paths normalised.

    Words are split before expansion, so a directory with spaces stays one word.
    """
    variables, fields = read(path)
    words = []
    for word in fields.get(field, "").split():
        word = _expand(word, variables, path)
        for prefix in ("-I", "-L"):
            if word.startswith(prefix) and len(word) > len(prefix):
                word = prefix + os.path.normpath(word[len(prefix):])
        words.append(word)
    return words
