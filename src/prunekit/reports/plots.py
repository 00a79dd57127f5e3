"""Plots for people: NetAdapt's accuracy against resource trade-off."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from prunekit.io import atomic_write
from prunekit.resources.metric import resource_label


def plot_tradeoff(history: Sequence[dict[str, Any]], start: dict[str, Any], resource: str, path: str | Path,
                  title: str = "NetAdapt", metric: str = "accuracy") -> Path:
    """PNG of the validation metric (accuracy, or the one ``metric`` names) against resource, one point per
    iteration (and the starting network)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [start["resource"]] + [h["resource"] for h in history]
    ys = [start["accuracy"]] + [h["accuracy"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2)
    ax.annotate("start", (xs[0], ys[0]), textcoords="offset points", xytext=(-10, 6), fontsize=8)
    if history:
        ax.annotate(f"iter {history[-1]['iteration']}", (xs[-1], ys[-1]), textcoords="offset points",
                    xytext=(4, -10), fontsize=8)
    ax.invert_xaxis()
    ax.set_xlabel(f"{resource_label(resource)} (lower is smaller)")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return Path(path)
