"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any, Sequence


def human(n: float) -> str:
    """1234567 -> '1.23M' (K, M, G)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.3g}"


def fmt(value: Any) -> str:
    """A cell: percentages for 0-1 accuracies are left to the caller; floats get 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Align ``rows`` under ``header`` in columns (first column left, the others right)."""
    cells = [[str(h) for h in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for j, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def metric_of(metrics: dict) -> str:
    """The name of the metric a metrics record's ``accuracy`` fields hold (``accuracy`` unless it says another)."""
    return str(metrics.get("metric") or "accuracy")


def model_summary_table(named_metrics: Sequence[tuple[str, dict]]) -> str:
    """One row per (label, metrics): MACs, params, validation and test accuracy (or the metric the metrics name),
    with ratios to the first row."""
    base = named_metrics[0][1] if named_metrics else {}
    rows = []
    for label, m in named_metrics:
        macs, params = m.get("macs"), m.get("params")
        rows.append([
            label,
            human(macs) if macs is not None else None,
            f"{macs / base['macs']:.1%}" if macs and base.get("macs") else None,
            human(params) if params is not None else None,
            f"{params / base['params']:.1%}" if params and base.get("params") else None,
            f"{m['val_accuracy']:.2%}" if m.get("val_accuracy") is not None else None,
            f"{m['test_accuracy']:.2%}" if m.get("test_accuracy") is not None else None,
        ])
    metric = next((metric_of(m) for _, m in named_metrics if m.get("metric")), "accuracy")
    acc = "acc" if metric == "accuracy" else metric
    return format_table(rows, ["model", "MACs", "MACs %", "params", "params %", f"val {acc}", f"test {acc}"])
