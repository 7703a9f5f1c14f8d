"""What a training run records: per-step metrics as plain arrays, plus events.

``history["d_loss"]`` is a NumPy array with one value per generator step. Quantities
measured less often (the sample diversity) live in ``history.checks`` with the step
at which each was taken. ``history.events`` lists the diagnostics raised during the
run, each a dict with ``step``, ``kind`` and ``message``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METRICS = ("d_loss", "g_loss", "d_acc_real", "d_acc_fake", "penalty", "d_grad_norm",
           "g_grad_norm", "augment_p")


class History:
    """Per-step training metrics (see :data:`METRICS`), stored as growing arrays."""

    def __init__(self):
        self._rows: list[np.ndarray] = []
        self.checks: dict[str, list[tuple[int, float]]] = {}
        self.events: list[dict] = []

    def append(self, rows: np.ndarray) -> None:
        """Add rows of shape (k, len(METRICS)), one per step."""
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, len(METRICS))
        self._rows.extend(rows)

    def add_check(self, name: str, step: int, value: float) -> None:
        self.checks.setdefault(name, []).append((int(step), float(value)))

    def add_event(self, step: int, kind: str, message: str) -> None:
        self.events.append({"step": int(step), "kind": kind, "message": message})

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "step":
            return np.arange(1, len(self) + 1)
        if name not in METRICS:
            raise KeyError(f"no metric {name!r}; the history has {', '.join(METRICS)}.")
        if not self._rows:
            return np.zeros(0)
        return np.asarray(self._rows)[:, METRICS.index(name)]

    def keys(self):
        return list(METRICS)

    def truncate(self, steps: int) -> None:
        """Forget everything after ``steps`` steps (used when resuming a checkpoint)."""
        del self._rows[steps:]
        self.checks = {k: [(s, v) for s, v in vals if s <= steps]
                       for k, vals in self.checks.items()}
        self.events = [e for e in self.events if e["step"] <= steps]

    def as_dict(self) -> dict:
        out = {name: self[name].tolist() for name in METRICS}
        out["checks"] = {k: [list(p) for p in v] for k, v in self.checks.items()}
        out["events"] = list(self.events)
        return out

    def save(self, path) -> None:
        """Write the history as JSON (non-finite values become null)."""
        def clean(value):
            if isinstance(value, float) and not np.isfinite(value):
                return None
            if isinstance(value, list):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        Path(path).write_text(json.dumps(clean(self.as_dict()), indent=1))

    @classmethod
    def load(cls, path) -> History:
        data = json.loads(Path(path).read_text())
        h = cls()
        length = len(data.get("d_loss", []))
        # a history saved before a metric existed reads it as 0 (augment_p: no augmentation)
        columns = [[np.nan if v is None else v for v in data.get(name, [0.0] * length)]
                   for name in METRICS]
        if columns and columns[0]:
            h.append(np.stack(columns, axis=1))
        h.checks = {k: [tuple(p) for p in v] for k, v in data.get("checks", {}).items()}
        h.events = list(data.get("events", []))
        return h
