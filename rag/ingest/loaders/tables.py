"""Render a table as text that reads well on its own inside a chunk."""

from __future__ import annotations


def rows_to_text(rows: list[list[str]]) -> str:
    """First row is the header; each later row becomes `Header: value; Header: value`.

    Repeating the header on every row keeps a row meaningful after chunking splits the table.
    Tables without a usable header (blank or repeated names) fall back to `a | b | c` rows.
    """
    cleaned = [[" ".join(cell.split()) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    header, body = cleaned[0], cleaned[1:]
    if not body or len(set(header)) < len(header) or not all(header):
        return "\n".join(" | ".join(row) for row in cleaned)
    lines = [" | ".join(header)]
    for row in body:
        if len(row) == len(header):
            lines.append("; ".join(f"{name}: {value}" for name, value in zip(header, row) if value))
        else:
            lines.append(" | ".join(row))
    return "\n".join(lines)
