"""Reading reaction CSV/TSV files into a validated :class:`ReactionTable`.

Everything a user can get wrong in a file (missing column, bad SMILES, blank or out-of-range yield, wrong
delimiter) becomes a :class:`DataError` naming the file, the 1-based file row (header = row 1) and the column,
before any training starts.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yieldtune.data.table import DataSpec, ReactionTable
from yieldtune.data.validate import Problem, SmilesCache, split_reaction, write_problem_report
from yieldtune.errors import DataError

DELIMITERS = (",", "\t", ";")
# A plain decimal number; float() alone also takes "1_0", "infinity" and non-ASCII digits.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_ROLES = ("reactants", "agents", "products")


@dataclass
class LoadResult:
    """A loaded table plus what was dropped on the way (empty unless ``drop_invalid``)."""

    table: ReactionTable
    problems: list[Problem] = field(default_factory=list)
    n_rows: int = 0  # data rows read from the file, before dropping

    @property
    def dropped_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems})


def required_columns(spec: DataSpec) -> list[str]:
    """Columns the file must have under ``spec`` (target included when there is one)."""
    if spec.layout == "rxn":
        cols = [spec.rxn_column]
    else:
        cols = [*spec.reactant_columns, *spec.agent_columns, *spec.product_columns]
    if spec.target is not None:
        cols.append(spec.target)
    return cols


def sniff_delimiter(line: str) -> str:
    """The candidate delimiter that splits the header line most often (',' when none does)."""
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first on ties: ','
    return best if counts[best] else ","


MAX_FILE_BYTES = 1 << 30  # the reader holds a file in memory; reaction tables are far smaller
MAX_CELL_CHARS = 131_072  # csv's default field limit; no SMILES or yield is anywhere near it
_SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # xlsx (zip), xls (OLE)


def _row_of_offset(data: bytes | str, offset: int) -> int:
    """1-based file row holding position ``offset``."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1


def _decode(path: Path) -> str:
    """The text of a reaction file: UTF-8 (BOM allowed) or UTF-16 with a BOM, else a DataError naming the row."""
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if path.is_dir():
        raise DataError("is a directory, expected a CSV/TSV file", path=str(path))
    if not path.is_file():
        raise DataError("not a regular file (a device or pipe?), expected a CSV/TSV file", path=str(path))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataError(f"file is {size / 2**30:.1f} GiB, more than the {MAX_FILE_BYTES / 2**30:.0f} GiB a "
                        "reaction file may have (wrong file?)", path=str(path))
    data = path.read_bytes()
    if data.startswith(_SPREADSHEET_MAGIC):
        raise DataError("is a spreadsheet, not CSV/TSV text: export it as CSV", path=str(path))
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"not {encoding.upper().removesuffix('-SIG')} text ({err.reason} at byte {err.start}); "
                        "save the file as UTF-8", path=str(path), row=_row_of_offset(data, err.start)) from None
    nul = text.find("\0")
    if nul >= 0:
        raise DataError("contains a NUL byte (a binary file, or UTF-16 without a BOM?)", path=str(path),
                        row=_row_of_offset(text, nul))
    return text


def _cells(text: str, delimiter: str, path: Path):
    """(file row where the record starts, cells) per CSV record; rows count physical lines (``\\n``, ``\\r\\n``,
    ``\\r``), so a quoted newline inside a cell keeps the rows after it right."""
    old_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FILE_BYTES)  # cell size is checked below, with the row and column named
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        start = 1
        try:
            for cells in reader:
                yield start, cells
                start = reader.line_num + 1
        except csv.Error as err:
            raise DataError(f"not valid CSV ({err}; an unclosed quote?)", path=str(path), row=start) from None
    finally:
        csv.field_size_limit(old_limit)


def read_csv_rows(path: Path, delimiter: str | None = None) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """Header, (file line, cells) for every non-blank data row, and the delimiter (sniffed when not given).

    The one reader of reaction files, so row numbers in errors and in prediction output always agree. Anything
    that would make the rows ambiguous (duplicate column names, a header repeated mid-file, a giant cell) is a
    DataError naming the row and column.
    """
    path = Path(path)
    text = _decode(path)
    if not text.strip():
        raise DataError("empty file", path=str(path))
    first_line = next(line for line in text.splitlines() if line.strip())
    delimiter = delimiter or sniff_delimiter(first_line)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for line, cells in _cells(text, delimiter, path):
        if not any(c.strip() for c in cells):
            continue
        for i, cell in enumerate(cells):
            if len(cell) > MAX_CELL_CHARS:
                name = header[i] if header is not None and i < len(header) else f"#{i + 1}"
                raise DataError(f"a cell of {len(cell):,} characters (more than {MAX_CELL_CHARS:,}; an unclosed "
                                "quote?)", path=str(path), row=line, column=name)
        if header is None:
            if line != 1:
                raise DataError("blank lines before the header", path=str(path), row=1)
            header = [c.strip() for c in cells]
            _check_header(header, path)
            continue
        if [c.strip() for c in cells] == header:
            raise DataError("repeats the header (two files concatenated?)", path=str(path), row=line)
        rows.append((line, cells))
    assert header is not None
    return header, rows, delimiter


def _check_header(header: list[str], path: Path) -> None:
    """Every named column once: with a name twice, which one holds the data would be a guess."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, start=1):
        if name and name in seen:
            raise DataError(f"column name {name!r} appears twice (columns {seen[name]} and {i}); rename one",
                            path=str(path), row=1, column=name)
        seen[name] = i


def require_varying_target(table: ReactionTable, column: str | None) -> ReactionTable:
    """``table`` unchanged, or a DataError when every training target is the same (nothing to learn, R² 0)."""
    ys = table.yields
    if ys is not None and len(ys) and float(ys.min()) == float(ys.max()):
        raise DataError(f"the target is constant: all {len(ys)} rows have {float(ys[0]):g}, there is nothing to "
                        "learn (wrong column?)", path=table.source, column=column)
    return table


def read_reactions(path: str | Path, spec: DataSpec | None = None, *, drop_invalid: bool = False,
                   validate: bool = True) -> LoadResult:
    """Read and check a reaction file; with ``drop_invalid`` bad rows are dropped and listed, else the first raises.

    File-level problems (missing file or column, empty file, wrong delimiter) always raise.
    """
    spec = spec or DataSpec()
    path = Path(path)
    header, rows, delimiter = read_csv_rows(path, spec.delimiter)
    required = required_columns(spec)
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    if len(header) == 1 and len(required) > 1 and header[0] not in required:
        raise DataError(f"header parses into a single column {header[0][:60]!r} with delimiter {shown}, "
                        f"expected columns {', '.join(required)} (wrong delimiter?)", path=str(path), row=1)
    missing = [c for c in required if c not in header]
    if missing:
        hint = " (unlabelled file? give no target)" if missing == [spec.target] else ""
        raise DataError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                        f"the header has {', '.join(header)}{hint}", path=str(path), row=1, column=missing[0])
    if not rows:
        raise DataError("empty file: a header but no data rows", path=str(path))

    col = {name: i for i, name in enumerate(header)}
    id_index = col.get(spec.id_column) if spec.id_column else None
    cache = SmilesCache()
    problems: list[Problem] = []
    reactions: list[str] = []
    yields: list[float] = []
    ids: list[str] = []
    kept_rows: list[int] = []
    keys: list[str | None] = []
    for line, cells in rows:
        row_problems: list[Problem] = []
        if len(cells) != len(header):
            spans_lines = any("\n" in c or "\r" in c for c in cells)
            hint = " (an unclosed quote runs over several lines?)" if spans_lines else ""
            row_problems.append(Problem(line, "(row)", f"has {len(cells)} fields, the header has {len(header)}{hint}",
                                        _join_cells(cells, delimiter)))
        else:
            rxn, key = _build_reaction(cells, col, spec, line, cache, validate, row_problems)
            y = _parse_target(cells[col[spec.target]], spec, line, row_problems) if spec.target else None
        if row_problems:
            problems.extend(row_problems)
            if not drop_invalid:
                break
            continue
        reactions.append(rxn)
        keys.append(key)
        if y is not None:
            yields.append(y)
        ids.append(cells[id_index].strip() if id_index is not None else "")
        kept_rows.append(line)

    if problems and not drop_invalid:
        p = problems[0]
        raise DataError(f"{p.reason} (fix it, or drop bad rows with drop_invalid / --drop-invalid)",
                        path=str(path), row=p.row, column=None if p.column == "(row)" else p.column)
    if not reactions:
        raise DataError(f"no valid rows: all {len(rows)} data rows have problems (first: row {problems[0].row}, "
                        f"{problems[0].reason})", path=str(path))
    table = ReactionTable(
        reactions=reactions,
        yields=np.asarray(yields, dtype=np.float32) if spec.target else None,
        ids=ids if id_index is not None else [],
        rows=kept_rows,
        source=str(path),
        canonical=keys if validate else None,
    )
    return LoadResult(table=table, problems=problems, n_rows=len(rows))


def _join_cells(cells: list[str], delimiter: str) -> str:
    return delimiter.join(cells)[:200]


def _role_key(canon: list[str]) -> str:
    return ".".join(sorted(m for c in canon for m in c.split(".")))


def _build_reaction(cells, col, spec: DataSpec, line: int, cache: SmilesCache, validate: bool,
                    problems: list[Problem]) -> tuple[str, str | None]:
    """``reactants>agents>products`` from one row and its canonical key (None without ``validate``).

    Every molecule is checked with RDKit when ``validate``; its canonical form is kept so that duplicate
    detection later needs no second parse.
    """
    keys: list[str] = []
    if spec.layout == "rxn":
        value = cells[col[spec.rxn_column]].strip()
        roles = split_reaction(value)
        if roles is None:
            problems.append(Problem(line, spec.rxn_column, "not a reaction SMILES (expected reactants>agents>products)",
                                    value))
            return "", None
        for role, part in zip(_ROLES, roles):
            if role != "agents" and not part:
                problems.append(Problem(line, spec.rxn_column, f"reaction has no {role}", value))
                return "", None
            if validate:
                canon, bad = cache.check_part(part, canonical=True)
                if bad is not None:
                    problems.append(Problem(line, spec.rxn_column, f"invalid SMILES {bad!r} in the {role}", bad))
                    return "", None
                keys.append(_role_key(canon))
        return ">".join(roles), ">".join(keys) if validate else None

    joined = []
    for role, columns in zip(_ROLES, (spec.reactant_columns, spec.agent_columns, spec.product_columns)):
        parts: list[str] = []
        role_canon: list[str] = []
        for name in columns:
            value = cells[col[name]].strip()
            if not value:
                continue  # an empty cell (no additive) is simply left out
            if ">" in value:
                problems.append(Problem(line, name, f"invalid SMILES {value!r} (contains '>')", value))
                return "", None
            if validate:
                canon, bad = cache.check_part(value, canonical=True)
                if bad is not None:
                    problems.append(Problem(line, name, f"invalid SMILES {bad!r}", bad))
                    return "", None
                role_canon.extend(canon)
            parts.append(value)
        if role != "agents" and not parts:
            problems.append(Problem(line, ", ".join(columns), f"reaction has no {role} (all of "
                                    f"{', '.join(columns)} are empty)", ""))
            return "", None
        joined.append(".".join(parts))
        keys.append(_role_key(role_canon))
    return ">".join(joined), ">".join(keys) if validate else None


def _parse_target(raw: str, spec: DataSpec, line: int, problems: list[Problem]) -> float | None:
    """A yield as a fraction in [0, 1]; percent values are divided by 100 only when the spec says so."""
    value = raw.strip()
    name = spec.target or ""
    if not value:
        problems.append(Problem(line, name, "blank target", raw))
        return None
    special = value.lower().lstrip("+-")
    if special in ("nan", "inf", "infinity"):
        problems.append(Problem(line, name, "target is NaN" if special == "nan" else f"target {value} is infinite",
                                raw))
        return None
    if not _NUMBER.fullmatch(value):
        hint = " (decimal comma? use '.')" if re.fullmatch(r"[+-]?\d+,\d+", value) else ""
        problems.append(Problem(line, name, f"target {value[:40]!r} is not a number{hint}", raw))
        return None
    y = float(value)
    if not math.isfinite(y):
        problems.append(Problem(line, name, f"target {value} overflows a float", raw))
        return None
    upper = 100.0 if spec.percent else 1.0
    if not (0.0 <= y <= upper):
        hint = ""
        if not spec.percent and 1.0 < y <= 100.0:
            hint = " (yields in percent? declare percent=True / --percent)"
        problems.append(Problem(line, name, f"target {value} is outside [0, {upper:g}]{hint}", raw))
        return None
    return y / 100.0 if spec.percent else y


def load_reactions(path: str | Path, spec: DataSpec | None = None, *, drop_invalid: bool = False,
                   report_path: str | Path | None = None, validate: bool = True) -> ReactionTable:
    """Load a reaction CSV/TSV as a validated :class:`ReactionTable`.

    ``drop_invalid`` drops bad rows instead of raising; ``report_path`` then receives a CSV
    ``row,column,reason,value`` of what was dropped (written even when nothing was).
    """
    result = read_reactions(path, spec, drop_invalid=drop_invalid, validate=validate)
    if drop_invalid and report_path is not None:
        write_problem_report(report_path, result.problems)
    return result.table


def infer_spec(path: str | Path, *, layout: str | None = None, target: str | None = "",
               percent: bool = False) -> DataSpec:
    """A DataSpec guessed from a file's header: an ``rxn`` column means the rxn layout, else components.

    ``target=""`` means "the column named yield (any case) if there is one, else unlabelled"; ``None`` means
    unlabelled; any other string is required to exist.
    """
    path = Path(path)
    header, _, _ = read_csv_rows(path) if path.exists() else ([], [], ",")
    lower = {h.lower(): h for h in header}
    for wanted in ("yield", "rxn"):
        same = [h for h in header if h.lower() == wanted]
        if len(same) > 1:
            raise DataError(f"columns {', '.join(map(repr, same))} differ only in case; which is the "
                            f"{'target' if wanted == 'yield' else 'reaction'} is ambiguous: rename one",
                            path=str(path), row=1, column=same[1])
    if layout is None:
        layout = "rxn" if "rxn" in lower and "reactant1" not in lower else "components"
    if target == "":
        target = lower.get("yield")
    if layout == "rxn":
        return DataSpec(layout="rxn", rxn_column=lower.get("rxn", "rxn"), target=target, id_column=None,
                        percent=percent)
    return DataSpec(target=target, percent=percent)
