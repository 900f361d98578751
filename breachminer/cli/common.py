"""Options and helpers shared by the CLI commands (database path, errors, table printing)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from breachminer.settings import get_settings

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB warehouse file \\[default: $BREACHMINER_DB or ./breachminer.duckdb]",
                 show_default=False),
]


# The fetch and retry flags that `ingest` and `serve` share (None: the BREACHMINER_* setting decides).
RetryFailedOption = Annotated[bool, typer.Option(
    "--retry-failed", help="retry every failed source at once, even given-up ones")]
AllowPrivateOption = Annotated[bool | None, typer.Option(
    "--allow-private/--no-allow-private", help="fetch from private/loopback addresses "
    "\\[default: $BREACHMINER_ALLOW_PRIVATE or no]", show_default=False)]
IgnoreRobotsOption = Annotated[bool, typer.Option("--ignore-robots", help="do not obey robots.txt")]
OfflineOption = Annotated[bool | None, typer.Option(
    "--offline/--online", help="no network: URLs come from the raw cache or are skipped "
    "\\[default: $BREACHMINER_OFFLINE or online]", show_default=False)]
WaitOption = Annotated[float, typer.Option(help="seconds to wait for another run writing the same warehouse")]
ExportDirOption = Annotated[Path | None, typer.Option(
    "--export-dir", help="after the run, write the top techniques and priorities there (CSV files, Navigator "
                         "layers and summary.html, each replaced whole)", show_default=False)]
ExportLimitOption = Annotated[int, typer.Option("--export-limit", min=1, help="techniques in each export")]

# Which reports a read command counts (warehouse.db.ReportScope); every number it prints is over those.
TitleScopeOption = Annotated[list[str] | None, typer.Option(
    "--title", help="count only reports whose title contains this (case-insensitive; repeat for any of several)",
    show_default=False)]
PublisherScopeOption = Annotated[list[str] | None, typer.Option(
    "--publisher", help="count only reports whose publisher contains this (repeat for any of several)",
    show_default=False)]
SinceScopeOption = Annotated[int | None, typer.Option(
    "--since", help="count only reports published in this year or later", show_default=False)]
UntilScopeOption = Annotated[int | None, typer.Option(
    "--until", help="count only reports published in this year or earlier", show_default=False)]


def db_path(option: Path | None) -> Path:
    return option or get_settings().db_path


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def write_or_fail(target: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(target)``; a file that cannot be written (no such folder, no permission) is a one-line
    error, not a traceback."""
    try:
        write(target)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")


def compact_table(title: str | None = None, caption: str | None = None) -> Table:
    """A rich table without side borders or edge padding, so more text fits an 80-column log."""
    return Table(title=title, caption=caption, show_lines=False, box=box.SIMPLE_HEAD, pad_edge=False,
                 show_edge=False, collapse_padding=True)


HEADER_WIDTH = 14  # a column header up to this long is not folded ("technique_na / me") when the table fits
READABLE_WIDTH = 8  # below this many characters per column a table is unreadable: records instead
TEXT_WIDTH = 13  # a text column gets at least this many characters (or its widest cell) when the table fits


def print_frame(frame: Any, title: str | None = None) -> None:
    """Print a pandas DataFrame as a rich table (no side borders, so more text fits an 80-column log); a
    frame whose columns cannot all fit the terminal at a readable width (``select *`` of a wide view) is
    printed one record at a time instead, a line per column."""
    def fits(minimum: dict[str, int]) -> bool:
        return sum(minimum.values()) + 2 * (len(minimum) - 1) <= console.width

    # a list column (one item per line) is as wide as its longest item
    items = {column: max([0, *(len(str(item)) for value in frame[column] if _is_list(value)
                               for item in _as_list(value))]) for column in frame.columns}
    if len(frame.columns) > 1 and not fits({c: max(items[c], min(len(str(c)), READABLE_WIDTH)) for c in items}):
        _print_records(frame, title)
        return
    for cap in range(HEADER_WIDTH, READABLE_WIDTH - 1, -1):  # the longest headers fold first, as little as need be
        widths = {column: max(items[column], min(len(str(column)), cap)) for column in frame.columns}
        if fits(widths):
            break
    # then every text column at least TEXT_WIDTH wide where the width allows, and the rest of the width to
    # the columns that want more, the least wanting first (a tactic before a name); the widths are then
    # fixed, so a word too long for its column can be broken after a hyphen, underscore or slash
    # ("defense-" / "evasion") rather than anywhere ("defense-evasi" / "on")
    cells = {column: ["" if is_missing(v) else _fmt(v) for v in frame[column]] for column in frame.columns}
    natural = {column: max([len(str(column)), *(len(line) for cell in cells[column] for line in cell.splitlines())])
               for column in frame.columns}
    numeric = {column: str(frame[column].dtype).startswith(("int", "float", "Int", "Float"))
               for column in frame.columns}
    for column in frame.columns:
        if not numeric[column]:
            wider = {**widths, column: max(widths[column], min(natural[column], TEXT_WIDTH))}
            if fits(wider):
                widths = wider
    spare = console.width - (sum(widths.values()) + 2 * (len(widths) - 1))
    for column in sorted(frame.columns, key=lambda c: natural[c] - widths[c]):
        grant = max(0, min(natural[column] - widths[column], spare))
        widths[column] += grant
        spare -= grant
    table = compact_table(title)
    for column in frame.columns:
        table.add_column(_folded_header(str(column), widths[column]), justify="right" if numeric[column] else "left",
                         overflow="fold", min_width=widths[column], max_width=widths[column])
    for row in zip(*(cells[column] for column in frame.columns), strict=True):
        table.add_row(*(_breakable(cell, widths[column]) for cell, column in zip(row, frame.columns, strict=True)))
    console.print(table)


def _breakable(cell: str, width: int) -> str:
    """A cell whose words longer than ``width`` may break after a hyphen, underscore or slash that fits (a
    space is put there for the table to wrap at; a word with none is folded by the table)."""
    def split(word: str) -> str:
        pieces = []
        while len(word) > width:
            cut = max(word.rfind(mark, 0, width) for mark in "-_/")
            if cut <= 0:
                break
            pieces.append(word[:cut + 1])
            word = word[cut + 1:]
        return " ".join([*pieces, word])

    return "\n".join(" ".join(split(word) for word in line.split(" ")) for line in cell.split("\n"))


def print_techniques(label: str, techniques: list[dict[str, Any]]) -> None:
    """A document's techniques as ``tag`` and ``report`` show them: ID, name, score and methods, then each
    evidence sentence quoted under it."""
    import textwrap

    from rich.markup import escape

    console.print(f"[bold]{escape(label)}[/bold]: {len(techniques)} techniques")
    for item in techniques:
        console.print(f"  {item['id']:<10} {item['name']:<45} {item['score']:.2f}  {','.join(item['methods'])}",
                      highlight=False)
        for sentence, matched in zip(item["evidence"], item.get("matched") or [""] * len(item["evidence"]),
                                     strict=True):
            quoted = excerpt(" ".join(sentence.split()), " ".join(matched.split()))
            console.print(escape(textwrap.fill(f"“{quoted}”", width=100, initial_indent="      ",
                                               subsequent_indent="       ")), highlight=False)


EXCERPT_CHARS = 300


def excerpt(sentence: str, matched: str = "", width: int = EXCERPT_CHARS) -> str:
    """At most about ``width`` characters of a sentence, cut at spaces with "…": its start, or, when the
    words that matched lie beyond that, a window around them, so what was matched is always shown."""
    if len(sentence) <= width:
        return sentence
    at = sentence.find(matched) if matched else -1
    if at < 0 or at + len(matched) <= width - 2:
        start, end = 0, width - 2
    else:
        start = max(0, at - (width - len(matched)) // 2)
        end = min(len(sentence), start + width)
    after = at + len(matched) if at >= 0 else 0
    if start > 0 and " " in sentence[start:max(start, at)]:
        start = sentence.find(" ", start) + 1  # whole words only
    if end < len(sentence) and " " in sentence[after:end]:
        end = sentence.rfind(" ", after, end)
    return ("… " if start > 0 else "") + sentence[start:end] + (" …" if end < len(sentence) else "")


def _folded_header(name: str, width: int) -> str:
    """A header longer than its column, broken after an underscore that fits ("share_in_" / "tactic")
    rather than mid-word by the table ("share_in_tact" / "ic")."""
    lines = []
    while len(name) > width:
        cut = name.rfind("_", 0, width)
        if cut <= 0:
            break
        lines.append(name[:cut + 1])
        name = name[cut + 1:]
    return "\n".join([*lines, name])


def _print_records(frame: Any, title: str | None) -> None:
    """Each row as a block of ``column  value`` lines (like psql's expanded display)."""
    from rich.markup import escape

    if title:
        console.print(f"[italic]{escape(title)}[/italic]")
    label = max(len(str(column)) for column in frame.columns)
    for number, row in enumerate(frame.itertuples(index=False), start=1):
        console.print(f"[dim]── record {number} ──[/dim]")
        for column, value in zip(frame.columns, row, strict=True):
            text = "" if is_missing(value) else _fmt(value).replace("\n", "; ")
            console.print(f"{escape(str(column)).ljust(label)}  {escape(text)}", highlight=False)
    if frame.empty:
        console.print("(no rows)")


def is_missing(value: Any) -> bool:
    """A NULL/NaN cell (a list or array is never missing)."""
    import pandas as pd

    if isinstance(value, (list, tuple, dict)) or (hasattr(value, "__len__") and not isinstance(value, str)):
        return False
    return bool(pd.isna(value))


def _is_list(value: Any) -> bool:
    """A list cell: a Python list or tuple, or the numpy array pandas makes of a LIST column (a numpy
    scalar, e.g. an INTEGER in a column with NULLs, also has ``tolist`` but is no list)."""
    import numpy as np

    return isinstance(value, (list, tuple, np.ndarray))


def _as_list(value: Any) -> list:
    return value.tolist() if hasattr(value, "tolist") else list(value)


def _fmt(value: Any) -> str:
    if _is_list(value):  # numpy arrays from list columns too
        value = _as_list(value)
    if isinstance(value, list):  # one item per line: a narrow column never splits an item or strands a comma
        return "\n".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value < 1 else f"{value:g}"
    return str(value)


def quiet_prefect() -> None:
    """Keep Prefect's own logging off the terminal unless asked for (BREACHMINER_VERBOSE=1)."""
    if os.environ.get("BREACHMINER_VERBOSE", "0").strip().lower() in ("", "0", "false", "no", "off"):
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
