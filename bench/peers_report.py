"""``bench/peers.py``'s markdown report and plots, written from ``results.json``'s records alone."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any, Callable

from common import machine_line, md_table, spread_cell
from peers_measure import NETADAPT_LATENCY, latency_keys
from peers_settings import METHODS_ORDER, PEERS, Settings

from prunekit.io import atomic_write

MARKERS = "osD^vPX"


# -- small helpers ------------------------------------------------------------------------------


def mean_of(runs: list[dict], get: Callable[[dict], float | None]) -> float | None:
    """Mean of a figure over seeds (None when no run has it)."""
    values = [v for v in map(get, runs) if v is not None]
    return statistics.fmean(values) if values else None


def num(v: float | None, fmt: str = ".1f") -> str:
    """A number, or ``-`` when missing."""
    return "-" if v is None else format(v, fmt)


def lat(figs: dict[str, Any], key: str) -> float | None:
    """Median latency in ms of ``platform@batch`` (None when not measured)."""
    return figs.get("latency", {}).get(key, {}).get("median_ms")


def group_runs(records: list[dict], model: str) -> list[tuple[float, str, list[dict]]]:
    """(budget, method, runs over seeds) of one base model, budgets descending, methods in the usual order."""
    mine = [r for r in records if r["model"] == model]
    keys = sorted({(r["budget"], r["method"]) for r in mine}, key=lambda k: (-k[0], METHODS_ORDER.index(k[1])))
    return [(b, m, sorted((r for r in mine if (r["budget"], r["method"]) == (b, m)), key=lambda r: r["seed"]))
            for b, m in keys]


def accuracies(runs: list[dict], which: str) -> list[float]:
    """Test accuracies of ``runs`` after the equal fine-tuning (``after``) or at equal compute (``compute``; NetAdapt's
    own equal fine-tuning is its equal-compute figure, the reference)."""
    if which == "compute":
        runs = [r for r in runs if r["method"] == "netadapt" or r.get("compute")]
        return [(r["compute"] if r["method"] != "netadapt" else r["after"])["test_accuracy"] for r in runs]
    return [r["after"]["test_accuracy"] for r in runs]


def seeds_cell(runs: list[dict]) -> str:
    """``0 1 2``, the seeds a cell holds."""
    return " ".join(str(r["seed"]) for r in runs)


# -- the headline -------------------------------------------------------------------------------


def headline_table(records: list[dict], model: str) -> str:
    """Every method's test accuracy at equal fine-tuning and at equal compute, with the extra epochs it got."""
    header = ["budget", "method", "seeds", "equal fine-tuning", "equal compute", "extra FT epochs", "pruning s",
              "FT s / epoch"]
    rows = []
    for budget, method, runs in group_runs(records, model):
        extra = [r["compute_plan"]["extra_epochs"] for r in runs if r.get("compute")]
        planned = [r["compute_plan"]["extra_epochs"] for r in runs if r.get("compute_plan") and not r.get("compute")]
        parts = [f"{statistics.fmean(extra):.1f} ({min(extra):.1f}-{max(extra):.1f})"] if extra else []
        parts += [f"{', '.join(f'{p:.1f}' for p in planned)} still to run"] if planned else []
        extra_cell = "(reference)" if method == "netadapt" else "; ".join(parts) or "-"
        compute = spread_cell(accuracies(runs, "compute")) if method in (*PEERS, "netadapt") else "-"
        per_epoch = mean_of(runs, lambda r: r["after"].get("train_seconds", 0) / r["after"].get("epochs", 1))
        rows.append([f"{budget:.0%}", f"**{method}**" if method == "netadapt" else method, seeds_cell(runs),
                     spread_cell(accuracies(runs, "after")), compute, extra_cell,
                     num(mean_of(runs, lambda r: r["search_s"])),
                     num(per_epoch, ".0f")])
    return md_table(header, rows)


def verdict(netadapt: list[float], peers: dict[str, list[float]]) -> str:
    """Whether NetAdapt leads every peer beyond the seed spread (its worst seed above every peer's best)."""
    if not netadapt or not peers:
        return "not run"
    best = max(peers, key=lambda m: statistics.fmean(peers[m]))
    gap = 100 * (statistics.fmean(netadapt) - statistics.fmean(peers[best]))
    beaten = [m for m, v in peers.items() if max(v) >= min(netadapt)]
    if not beaten:
        return f"**yes**: {gap:+.2f} points over {best}"
    if gap > 0:
        return f"ahead of {best} by {gap:+.2f} points, within the seed spread of {', '.join(beaten)}"
    return f"**no**: {best} leads by {-gap:.2f} points"


def verdict_table(records: list[dict], model: str, seeds: int) -> str:
    """Per budget: NetAdapt against the best peer at equal fine-tuning and at equal compute."""
    header = ["budget", "NetAdapt", "lead at equal fine-tuning", "lead at equal compute",
              f"cells under {seeds} seed(s)"]
    rows = []
    for budget in sorted({r["budget"] for r in records if r["model"] == model}, reverse=True):
        cell = [(m, runs) for b, m, runs in group_runs(records, model) if b == budget]
        na = next((runs for m, runs in cell if m == "netadapt"), [])
        short = [f"{m} ({len(runs)})" for m, runs in cell if len(runs) < seeds]
        leads = [verdict(accuracies(na, which), {m: v for m, runs in cell if m in PEERS
                                                 if (v := accuracies(runs, which))})
                 for which in ("after", "compute")]
        rows.append([f"{budget:.0%}", spread_cell(accuracies(na, "after")), *leads, ", ".join(short) or "none"])
    return md_table(header, rows)


def latency_table(latency_records: list[dict], model: str) -> str:
    """The latency-budget runs: measured latency against the budget, accuracy against the MACs-budget network of
    the same seed that is first as fast for real."""
    header = ["budget", "seed", "base ms", "budget ms", "measured ms (of budget)", "test acc (fine-tuned)", "MACs",
              "as-fast MACs-run network: iteration, ms", "its MACs", "its test acc (fine-tuned)"]
    rows = []
    for r in sorted((r for r in latency_records if r["model"] == model), key=lambda r: (-r["budget"], r["seed"])):
        m = r.get("match") or {}
        ms = r.get("measured_ms")
        rows.append([f"{r['budget']:.0%} latency", str(r["seed"]), num(r.get("base_ms"), ".3f"),
                     num(r.get("budget_ms"), ".3f"),
                     f"{ms:.3f} ({ms / r['budget_ms']:.0%})" if ms else "-", spread_cell([r["after"]["test_accuracy"]]),
                     f"{r['after']['macs'] / 1e6:.2f} M",
                     f"{m['iteration']}, {m['measured_ms']:.3f}" if m else
                     f"none as fast among {r['searched']}" if r.get("searched") else "-",
                     f"{m['before']['macs'] / 1e6:.2f} M" if m else "-",
                     spread_cell([m["after"]["test_accuracy"]]) if m.get("after") else "-"])
    return md_table(header, rows)


# -- the details --------------------------------------------------------------------------------


def size_cells(runs: list[dict], base: dict) -> list[str]:
    """Mean MACs, MACs as a share of the base's, and mean parameters of the final networks."""
    macs = mean_of(runs, lambda r: r["after"]["macs"])
    params = mean_of(runs, lambda r: r["after"]["params"])
    return [f"{macs / 1e6:.2f} M", f"{100 * macs / base['macs']:.1f} %", f"{params / 1e6:.3f} M"]


def latency_cells(runs: list[dict]) -> list[str]:
    """Mean median latencies (ms) on every platform and batch."""
    return [num(mean_of(runs, lambda r, k=k: lat(r["after"], k)), ".3f") for k in latency_keys()]


def quality_table(bases: dict[str, Any], records: list[dict], model: str) -> str:
    """Accuracy before and after fine-tuning, size, latency and time of every method at every budget."""
    base = bases["base"]
    header = ["method", "budget", "test acc (fine-tuned)", "test acc (before FT)", "MACs", "MACs % of base", "params",
              *[f"{k.replace('@', ' b')} ms" for k in latency_keys()], "search s", "FT s"]
    rows = []
    for label, figs in (("base", base), ("base (sparsity, for slimming)", bases.get("slim"))):
        if figs:
            runs = [{"after": figs}]
            rows.append([label, "-", spread_cell([figs["test_accuracy"]]), "-", *size_cells(runs, base),
                         *latency_cells(runs), "-", "-"])
    for budget, method, runs in group_runs(records, model):
        before = [r["before"]["test_accuracy"] for r in runs if r["before"]]
        rows.append([method, f"{budget:.0%}", spread_cell(accuracies(runs, "after")), spread_cell(before),
                     *size_cells(runs, base), *latency_cells(runs), num(mean_of(runs, lambda r: r["search_s"])),
                     num(mean_of(runs, lambda r: r["after"].get("train_seconds")), ".0f")])
    return md_table(header, rows)


def speedup_table(base: dict, records: list[dict], model: str) -> str:
    """Measured speed-up over the base on every platform and batch, next to the MACs ratio (the ideal)."""
    header = ["method", "budget", "MACs speed-up (ideal)",
              *[f"{k.replace('@', ' b')} speed-up" for k in latency_keys()]]
    rows = []
    for budget, method, runs in group_runs(records, model):
        ideal = base["macs"] / mean_of(runs, lambda r: r["after"]["macs"])
        real = [(lat(base, k) or 0) / (mean_of(runs, lambda r, k=k: lat(r["after"], k)) or float("inf"))
                for k in latency_keys()]
        rows.append([method, f"{budget:.0%}", f"{ideal:.2f}x", *[f"{v:.2f}x" if v else "-" for v in real]])
    return md_table(header, rows)


def cost_table(records: list[dict], model: str) -> str:
    """Each NetAdapt search's wall time split into short-term fine-tuning, evaluation (candidates' and kept
    networks'), BatchNorm re-estimation and the framework."""
    def cell(v: float | None, whole: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} ({v / whole:.0%})" if whole else f"{v:.1f}"
    header = ["budget", "seed", "iterations", "candidates", "total s", "short-term FT s (%)", "evaluation s (%)",
              "BN re-estimation s (%)", "framework s (%)", "of which: planning", "candidate surgery + counting", "saving",
              "outside iterations"]
    rows = []
    searches = [r for r in records if r["model"] == model and "cost" in r]
    for r in sorted(searches, key=lambda r: (-r["budget"], r["seed"])):
        c = r["cost"]
        rows.append([f"{r['budget']:.0%}", str(r["seed"]), str(c["iterations"]), str(c["candidates"]),
                     num(c["total_s"]), *[cell(c[k], c["total_s"]) for k in (
                         "finetune_s", "evaluate_s", "calibrate_s", "framework_s", "plan_s", "surgery_s", "save_s",
                         "outside_s")]])
    return md_table(header, rows)


def time_table(bases: dict[str, Any], records: list[dict], model: str) -> str:
    """Where the machine's time went for one base model: bases, searches and prunes, fine-tuning runs."""
    parts: dict[str, list[float]] = {}
    for label, figs in (("base training", bases["base"]), ("slimming base training", bases.get("slim"))):
        if figs and figs.get("train_seconds"):
            parts[label] = [figs["train_seconds"]]
    for r in (r for r in records if r["model"] == model):
        for label, value in ((f"{r['method']}: search / pruning", r["search_s"]),
                             (f"{r['method']}: equal fine-tuning", r["after"].get("train_seconds")),
                             (f"{r['method']}: equal-compute fine-tuning",
                              (r.get("compute") or {}).get("train_seconds"))):
            if value:
                parts.setdefault(label, []).append(value)
    rows = [[label, str(len(v)), f"{sum(v) / 3600:.2f}", f"{statistics.fmean(v) / 60:.1f}"]
            for label, v in parts.items()]
    return md_table(["part", "runs", "total h", "mean min / run"], rows)


def changed_options(recorded_json: str) -> list[str]:
    """The recorded NetAdapt options (a ``search/config.json``'s, as JSON) that differ from this prunekit's defaults."""
    from prunekit.algorithms.netadapt import NetAdaptConfig

    defaults, recorded = NetAdaptConfig().to_dict(), json.loads(recorded_json)
    return [f"{k} {recorded[k]!r} (default {defaults[k]!r})" for k in sorted(recorded)
            if k in defaults and defaults[k] != recorded[k]]


def netadapt_line(options: list[tuple[str, int]]) -> str:
    """The report's NetAdapt line: the options the searches recorded, and whether they are the defaults of the
    prunekit writing the report (a cache made by another version, or a modified copy, says so here)."""
    recorded = "; ".join(f"`{o}` ({n} searches)" for o, n in options) if options else "none yet"
    changed = [(changes, n) for o, n in options if (changes := changed_options(o))]
    if not changed:
        return ("- NetAdapt: prunekit's default options; only `--budget-ratio`, `--resource` and `--seed` are given. "
                f"The options the searches recorded (`search/config.json`): {recorded}")
    what = "; ".join(f"{', '.join(c)} ({n} searches)" for c, n in changed)
    return (f"- NetAdapt: **not this prunekit's default options** in {sum(n for _, n in changed)} of "
            f"{sum(n for _, n in options)} searches: {what}. The options the searches recorded "
            f"(`search/config.json`): {recorded}")


def plot(base: dict, records: list[dict], model: str, title: str, path: Path) -> None:
    """Test accuracy against MACs (% of base): equal fine-tuning (solid) and equal compute (dashed) per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, method in enumerate(METHODS_ORDER):
        groups = [runs for _, m, runs in group_runs(records, model) if m == method]
        for which, style in (("after", "-"), ("compute", "--")):
            points = [(mean_of(runs, lambda r: 100 * r["after"]["macs"] / base["macs"]),
                       [100 * a for a in accuracies(runs, which)]) for runs in groups]
            points = [(x, a) for x, a in points if a and (which == "after" or method in PEERS)]
            if not points:
                continue
            y = [statistics.fmean(a) for _, a in points]
            err = [[m - min(a) for m, (_, a) in zip(y, points)], [max(a) - m for m, (_, a) in zip(y, points)]]
            ax.errorbar([x for x, _ in points], y, yerr=err, marker=MARKERS[i], linestyle=style, capsize=3,
                        color=f"C{i}", label=method if which == "after" else f"{method}, equal compute")
    ax.plot([100.0], [100 * base["test_accuracy"]], "k*", markersize=12, label="base")
    ax.set_xlabel("MACs (% of base)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


# -- the whole report ---------------------------------------------------------------------------


def settings_lines(s: Settings, results: dict[str, Any]) -> list[str]:
    """How every figure was made, as markdown bullet points."""
    options = results.get("netadapt_options", [])
    return [
        f"- data: `{s.dataset}`, training images {s.train_subset or 'all'} less a hold-out validation split of "
        f"{s.val_size:g} (seeded), test images {s.test_subset or 'all'}"
        + (f" (**{s.dataset_note}**)" if s.dataset_note else ""),
        f"- bases (seed 0): `prunekit train {' '.join(s.base_flags())}`"
        + (" with `--augment`" if s.augment else "") + f"; the slimming base the same with `--sparsity {s.sparsity:g}`",
        f"- long-term fine-tuning, every method alike (**equal fine-tuning**): `prunekit finetune --epochs "
        f"{s.finetune_epochs:g} --lr {s.finetune_lr:g} --seed SEED` (the base's recipe otherwise: cosine, no sparsity)",
        "- **equal compute**: each one-shot method and Torch-Pruning pruner is also fine-tuned for "
        f"{s.finetune_epochs:g} + E epochs (one cosine run), E = (NetAdapt's search wall seconds - the method's own "
        "pruning seconds) / the method's seconds per epoch of its equal fine-tuning (its `train_log.jsonl`: training "
        "steps only, so the epoch's validation pass is not counted and the peers get slightly more epochs), same "
        "base, budget and seed; NetAdapt's own figure is its equal fine-tuning. Slimming's own seconds leave out "
        "its second, sparsity-trained base",
        netadapt_line(options),
        "- one-shot: `prunekit prune --criterion l1 --scope local|global` and slimming's `--criterion bn_scale --scope "
        "global` from the slimming base, to the MACs budget",
        "- Torch-Pruning's `MagnitudePruner` (`MagnitudeImportance(p=2)` or `TaylorImportance()`): global ranking, "
        f"classifier ignored, pruning_ratio 0.9 over {s.tp_steps} iterative steps, stepped until prunekit's MACs "
        f"count meets the budget; Taylor: gradients of {s.taylor_batches} training batches of 64 before each step; "
        "its network is replayed as a prunekit checkpoint (checked equal, tensor for tensor) and fine-tuned by "
        "`prunekit finetune` like the others",
        f"- rethinking (where it ran): NetAdapt's architecture re-initialised, trained with the base recipe for "
        f"{s.base_epochs + s.finetune_epochs:g} epochs",
        f"- latency: median of `prunekit.latency.measure_latency`, one thread, torch-cpu and onnxruntime-cpu at batch 1 and "
        f"32, at least {s.latency_min_time:g} s of timed runs each, the best of {s.latency_rounds} interleaved rounds",
        "- search s: NetAdapt's `prunekit netadapt` commands (summed over resumed parts) and one-shot's `prunekit "
        "prune` (both include loading the data and evaluating), Torch-Pruning's pruning loop alone",
    ]


def coverage_lines(records: list[dict], expected: list[tuple[str, float, str]], seeds: int) -> list[str]:
    """Which cells (model, budget, method) hold fewer than ``seeds`` seeds, or none: stated plainly."""
    have: dict[tuple, list[int]] = {}
    for r in records:
        have.setdefault((r["model"], r["budget"], r["method"]), []).append(r["seed"])
    missing = [f"{m} {b:.0%} {meth}" for m, b, meth in expected if (m, b, meth) not in have]
    short = [f"{m} {b:.0%} {meth} (seeds {' '.join(map(str, sorted(have[(m, b, meth)])))})"
             for m, b, meth in expected if 0 < len(have.get((m, b, meth), [])) < seeds]
    pending = [f"{r['model']} {r['budget']:.0%} {r['method']} seed {r['seed']}" for r in records
               if r["method"] in PEERS and not r.get("compute")]
    lines = [f"- cells run with fewer than {seeds} seed(s): " + ("; ".join(short) if short else "none"),
             "- cells not run yet: " + ("; ".join(missing) if missing else "none")]
    if pending:
        lines.append("- equal compute still to run (it waits for NetAdapt's search of the same cell, or was left "
                     "for later): " + "; ".join(pending))
    return lines


def invocation_lines(invocations: list[dict]) -> list[str]:
    """Every command that ran on this cache, once each, with how often and how long it ran."""
    seen: dict[str, list[dict]] = {}
    for i in invocations:
        seen.setdefault(i["command"], []).append(i)
    total = sum(i["wall_s"] for i in invocations) / 3600
    return [f"- {len(invocations)} invocations on this cache from {invocations[0]['date']} to "
            f"{invocations[-1]['date']}, {total:.1f} h in all (a cached step is not re-run):",
            *[f"  - `{command}`: {len(runs)} x ({sum(r.get('status') == 'stopped' for r in runs)} stopped before "
              f"the end), {sum(r['wall_s'] for r in runs) / 60:.0f} min" for command, runs in seen.items()]]


def model_section(s: Settings, model: str, bases: dict[str, Any], results: dict[str, Any], seeds: int) -> list[str]:
    """One base model's headline, latency rows, details and plot, as markdown lines."""
    runs, base = results["runs"], bases["base"]
    reference = (" (published Fashion-MNIST results for CNNs of this size: about 93-95 %, issue 15's reference "
                 "range)" if s.dataset == "fashion-mnist" and not s.train_subset else "")
    lines = [f"### {s.model_label(model)} on {s.dataset}: base {spread_cell([base['test_accuracy']])}{reference}", "",
             "Test accuracy, mean (min-max) over the seeds listed; equal compute adds NetAdapt's search time as "
             "fine-tuning epochs (E, mean (min-max)):", "", headline_table(runs, model), "",
             "NetAdapt's lead (beyond the seed spread: NetAdapt's worst seed above every peer's best):", "",
             verdict_table(runs, model, seeds), ""]
    if any(r["model"] == model for r in results["latency_runs"]):
        lines += [f"Latency budget (`--resource latency`, measured {NETADAPT_LATENCY.replace('@', ' batch ')}, one "
                  "thread), against the MACs-budget NetAdapt network of the same seed that is first as fast:", "",
                  latency_table(results["latency_runs"], model), ""]
    lines += ["Details (sizes, latency, time; test accuracy at equal fine-tuning):", "",
              quality_table(bases, runs, model), ""]
    if any("latency" in r["after"] for r in runs if r["model"] == model):
        lines += ["Real speed-up over the base against the MACs ratio:", "", speedup_table(base, runs, model), ""]
    if any(r["model"] == model and "cost" in r for r in runs):
        lines += ["NetAdapt's search cost (from `history.jsonl`):", "", cost_table(runs, model), ""]
    lines += ["Time spent:", "", time_table(bases, runs, model), ""]
    return lines + [f"![{model}]({os.path.relpath(bases['plot'], s.report.parent)})", ""]


def report(s: Settings, results: dict[str, Any], expected: list[tuple[str, float, str]], seeds: int) -> str:
    """The markdown report: when, where, how, which cells hold fewer than ``seeds`` seeds, then one section per
    base model."""
    lines = [
        f"## NetAdapt against its peers at equal fine-tuning and at equal compute (`{s.profile}` profile)", "",
        f"- date: {results['date']} (report written; every figure comes from the cache under `{s.out}`)",
        f"- machine: {machine_line(results['machine'])}",
        *invocation_lines(results["invocations"]),
        *settings_lines(s, results), *coverage_lines(results["runs"], expected, seeds), "",
    ]
    for model, bases in results["bases"].items():
        lines += model_section(s, model, bases, results, seeds)
    return "\n".join(lines)
