"""Map a TOML key path to a line number of the source text.

tomlkit keeps comments and layout but no positions, so this small scanner tracks table
headers and ``key =`` lines. It is used only to point at problems; a miss falls back to the
nearest enclosing table's line.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'""")


def _norm(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


class Locator:
    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._keys: dict[str, int] = {}
        table = ""
        for number, line in enumerate(self._lines, start=1):
            header = _HEADER.match(line)
            if header:
                table = _norm(header.group(1))
                self._keys.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                full = f"{table}.{_norm(key.group(1))}" if table else _norm(key.group(1))
                self._keys.setdefault(full, number)

    def line_of(self, key_path: str) -> int | None:
        """Line of ``a.b.c`` or ``a.b[3]`` (the 4th string after ``a.b =``)."""
        match = re.fullmatch(r"(.+)\[(\d+)\]", key_path)
        if match:
            base, index = match.group(1), int(match.group(2))
            start = self._keys.get(base)
            if start is None:
                return self.line_of(base)
            return _array_item_line(self._lines, start, index) or start
        parts = key_path.split(".")
        while parts:
            line = self._keys.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
            if parts and parts[-1].endswith("]"):  # a key of a table in an array: the table
                return self.line_of(".".join(parts))
        return None


def _array_item_line(lines: list[str], start: int, index: int) -> int | None:  # noqa: PLR0912
    """Line where item ``index`` of the array assigned on line ``start`` begins."""
    depth = 0
    seen = -1
    expecting = False
    for number in range(start, len(lines) + 1):
        text = lines[number - 1]
        if number == start:
            text = text.split("=", 1)[1] if "=" in text else text
        pos = 0
        while pos < len(text):
            char = text[pos]
            if char in "\"'":
                if depth == 1 and expecting:
                    seen += 1
                    expecting = False
                    if seen == index:
                        return number
                match = _STRING.match(text, pos)
                pos = match.end() if match else len(text)
                continue
            if char == "#":
                break
            if char in "[{":
                depth += 1
                if depth == 1:
                    expecting = True
                elif depth == 2 and expecting:
                    seen += 1
                    expecting = False
                    if seen == index:
                        return number
            elif char in "]}":
                depth -= 1
                if depth == 0:
                    return None
            elif char == "," and depth == 1:
                expecting = True
            elif not char.isspace() and depth == 1 and expecting:
                seen += 1
                expecting = False
                if seen == index:
                    return number
            pos += 1
    return None
