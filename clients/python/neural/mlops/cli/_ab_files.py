"""Input files of ``neural-mlops ab``: request records (JSON lines) and covariates (CSV)."""

from __future__ import annotations

import csv
import json
from typing import Any

from neural.mlops.server.errors import InvalidArgument


def read_jsonl(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                raise InvalidArgument(f"{path}:{n} is not a JSON object", field="file") from None
    return records


def read_covariates(path: str) -> dict[str, float]:
    """Rows ``unit id, value`` of a CSV file; a first row whose value is not a number is a
    header. A unit listed twice keeps its last value."""
    out: dict[str, float] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh), 1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise InvalidArgument(f"{path}:{n}: expected 'unit id,value'", field="file")
            unit, raw = row[0].strip(), row[1].strip()
            try:
                out[unit] = float(raw)
            except ValueError:
                if n == 1:
                    continue  # the header
                raise InvalidArgument(f"{path}:{n}: {raw!r} is not a number",
                                      field="file") from None
    return out
