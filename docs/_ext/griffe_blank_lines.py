"""A griffe extension for the API reference: blank lines where Python-Markdown needs them.

jsyn's docstrings write `**Arguments:**` and the first list item on consecutive lines, and
sometimes a display equation `$$...$$` and the text after it too, as Jupyter's `?` and
GitHub render them. Python-Markdown (which mkdocs uses) needs a blank line before a list
and around a display equation, so this inserts them when the docstrings are loaded; it
changes only how the site renders them, never the source. Code blocks are left as they are.
"""

import re

import griffe

_ITEM = re.compile(r"\s*(?:[-*+]|\d+\.)\s")


def _needs_blank(out: list[str]) -> bool:
    return bool(out) and bool(out[-1].strip())


def add_blank_lines(text: str) -> str:
    """`text` with a blank line before each list that follows a paragraph line, and around
    each display equation."""
    out: list[str] = []
    in_code = in_math = close_math = False
    for line in text.splitlines():
        stripped = line.strip()
        if close_math and stripped:
            out.append("")
        close_math = False
        if stripped.startswith("```"):
            in_code = not in_code
        elif not in_code and stripped.count("$$") % 2:  # a display equation opens or closes
            if not in_math and _needs_blank(out):
                out.append("")
            in_math = not in_math
            close_math = not in_math
        elif not in_code and not in_math and stripped.startswith("$$"):  # one-line equation
            if _needs_blank(out):
                out.append("")
            close_math = True
        elif not (in_code or in_math) and _ITEM.match(line) and _needs_blank(out):
            previous = out[-1]
            if not _ITEM.match(previous) and not previous.startswith(" "):
                out.append("")
        out.append(line)
    return "\n".join(out)


class BlankLines(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = add_blank_lines(obj.docstring.value)
