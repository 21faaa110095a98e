"""Backtest report: ``report.json``, PNG plots and one self-contained ``report.html``.

:func:`write_report` takes named :class:`~sb3_trading.evaluation.backtest.BacktestResult` s (the
agent first, then its baselines) and writes, atomically, into ``output_dir``:

* ``report.json`` — ``calendar`` (``periods_per_year`` and how it was obtained: the data's
  calendar, inferred from its timestamps or given) and ``risk_free`` (the annual rate, its per-bar
  rate ``(1 + risk_free) ** (1 / periods_per_year) - 1`` and that formula) the metrics use; per
  strategy: span, the same calendar and rate, metrics, stationary-bootstrap CIs of Sharpe, total and
  annual return, the volatility-regime table; the plots' file names; ``extra`` as ``config``.
* ``equity.png`` (equity of every strategy, rebased to 1), ``drawdown.png``,
  ``rolling_sharpe.png`` and ``positions.png`` (the first strategy's weights and gross exposure).
* with ``references`` / ``skill_ratio`` (:func:`~sb3_trading.evaluation.reference.skill_report`): the
  reference policies' results under ``"references"`` (``{name: result.to_dict()}``) and the agent's skill
  ratio under ``"skill_ratio"``, shown in the HTML as their own table and line.
* ``report.html`` — the tables and the four plots embedded as base64 ``data:image/png`` URIs, so
  the one file is self-contained; each figure's caption links the PNG file beside it.

Plots need matplotlib (``pip install "sb3-trading[report]"``); it is imported lazily and drawn on
its Agg canvas without pyplot, so a caller's backend is left alone.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sb3_trading.evaluation.backtest import BacktestResult
from sb3_trading.evaluation.bootstrap import metric_cis
from sb3_trading.evaluation.metrics import risk_free_per_period, rolling_sharpe
from sb3_trading.evaluation.reference import format_skill_ratio
from sb3_trading.evaluation.regimes import REGIMES, regime_breakdown
from sb3_trading.utils import atomic_write, atomic_write_json, jsonable
from sb3_trading.version import __version__

logger = logging.getLogger(__name__)

#: how an annual risk-free rate becomes a per-bar rate (stated in every report)
RISK_FREE_FORMULA = "risk_free_per_period = (1 + risk_free) ** (1 / periods_per_year) - 1"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
PLOTS = ("equity", "drawdown", "rolling_sharpe", "positions")
#: metrics shown in the HTML summary table: (key, header, format)
TABLE_METRICS = (
    ("total_return", "total return", "{:.2%}"),
    ("annual_return", "CAGR", "{:.2%}"),
    ("annual_volatility", "volatility", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("max_drawdown", "max DD", "{:.2%}"),
    ("max_drawdown_duration", "max DD bars", "{:.0f}"),
    ("var_5", "VaR 5%", "{:.2%}"),
    ("cvar_5", "CVaR 5%", "{:.2%}"),
    ("hit_rate", "hit rate", "{:.1%}"),
    ("mean_turnover", "turnover/bar", "{:.3f}"),
    ("exposure", "exposure", "{:.2f}"),
)


def _require_matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or ImportError with the install hint."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            'report plots need matplotlib: pip install "sb3-trading[report]" (or write_report(..., plots=False))'
        ) from exc
    return Figure, FigureCanvasAgg


def _x_axis(result: BacktestResult, use_time: bool) -> np.ndarray:
    return result.timestamps if use_time else result.t


def _save_figure(fig: Any, path: Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _plot_all(results: Mapping[str, BacktestResult], output_dir: Path, rolling_window: int) -> dict[str, Path]:
    Figure, FigureCanvasAgg = _require_matplotlib()
    use_time = all(r.timestamps is not None for r in results.values())
    xlabel = "date" if use_time else "data row"
    paths: dict[str, Path] = {}

    def new_axes(title: str, ylabel: str) -> tuple[Any, Any]:
        fig = Figure(figsize=(9, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        return fig, ax

    fig, ax = new_axes("Equity (rebased to 1)", "equity / initial equity")
    for name, r in results.items():
        ax.plot(_x_axis(r, use_time), r.equity / r.equity[0], label=name, lw=1.6 if name == next(iter(results)) else 1.0)
    ax.legend(loc="best", fontsize="small")
    paths["equity"] = _save_figure(fig, output_dir / "equity.png")

    fig, ax = new_axes("Drawdown", "1 - equity / peak")
    for name, r in results.items():
        ax.plot(_x_axis(r, use_time), r.drawdown, label=name, lw=1.0)
    ax.invert_yaxis()
    ax.legend(loc="best", fontsize="small")
    paths["drawdown"] = _save_figure(fig, output_dir / "drawdown.png")

    fig, ax = new_axes(f"Rolling Sharpe ({rolling_window} bars, annualised)", "Sharpe")
    for name, r in results.items():
        if r.n_steps >= 1:
            sharpe = rolling_sharpe(r.returns, rolling_window, r.periods_per_year, r.risk_free)
            ax.plot(_x_axis(r, use_time)[1:], sharpe, label=name, lw=1.0)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.legend(loc="best", fontsize="small")
    paths["rolling_sharpe"] = _save_figure(fig, output_dir / "rolling_sharpe.png")

    main_name, main = next(iter(results.items()))
    fig, ax = new_axes(f"Positions of {main_name} (weight = position value / equity)", "weight")
    x = _x_axis(main, use_time)[1:]
    names = main.asset_names or tuple(f"asset_{i}" for i in range(main.weights.shape[1]))
    for j, asset in enumerate(names):
        ax.plot(x, main.weights[:, j], label=asset, lw=0.9)
    ax.plot(x, np.abs(main.weights).sum(axis=1), label="gross exposure", color="black", lw=1.2, ls="--")
    ax.legend(loc="best", fontsize="small", ncol=min(4, len(names) + 1))
    paths["positions"] = _save_figure(fig, output_dir / "positions.png")
    return paths


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return spec.format(value)


def calendar_summary(results: Mapping[str, BacktestResult]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``calendar`` and ``risk_free`` entries of a report, from its results (the first one's, with the
    others' values listed when they differ).

    :return: ``({"periods_per_year", "calendar"[, "by_strategy"]}, {"annual", "per_period", "formula"[, "by_strategy"]})``.
    """
    first = next(iter(results.values()))
    calendar: dict[str, Any] = {"periods_per_year": float(first.periods_per_year), "calendar": first.calendar}
    if first.market is not None and getattr(first.market, "timezone", None):
        calendar["timezone"] = first.market.timezone
    risk_free: dict[str, Any] = {
        "annual": float(first.risk_free),
        "per_period": risk_free_per_period(first.risk_free, first.periods_per_year),
        "formula": RISK_FREE_FORMULA,
    }
    if len({float(r.periods_per_year) for r in results.values()}) > 1:
        calendar["by_strategy"] = {name: float(r.periods_per_year) for name, r in results.items()}
    if len({float(r.risk_free) for r in results.values()}) > 1:
        risk_free["by_strategy"] = {name: float(r.risk_free) for name, r in results.items()}
    return calendar, risk_free


def describe_calendar(report: Mapping[str, Any]) -> str:
    """One line stating a report's calendar and risk-free rate, e.g.
    ``calendar: 8760 bars/year (intraday bars, 24/7: ...); risk-free rate 4.00%/year = 0.000448% per bar``."""
    calendar = report.get("calendar") or {}
    rf = report.get("risk_free") or {}
    ppy = calendar.get("periods_per_year")
    text = f"calendar: {ppy:g} bars/year" if ppy is not None else "calendar: unknown"
    if calendar.get("calendar"):
        text += f" ({calendar['calendar']})"
    annual = rf.get("annual", 0.0) or 0.0
    text += f"; risk-free rate {annual:.2%}/year"
    if annual:
        text += f" = {rf.get('per_period', 0.0):.6%} per bar; Sharpe and Sortino on excess returns"
    return text


def _html(report: dict[str, Any], plots: Mapping[str, Path]) -> str:
    esc = html.escape
    strategies: dict[str, Any] = report["strategies"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(report['title'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,td:first-child{text-align:left}"
        "figure{margin:1.5em 0}img{max-width:100%}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
        "</head><body>",
        f"<h1>{esc(report['title'])}</h1>",
        f"<p>Generated {esc(report['created'])} by sb3_trading {esc(report['sb3_trading_version'])}.</p>",
        f'<p class="calendar">{esc(describe_calendar(report))}. Metrics are annualised with periods_per_year; '
        f"the per-bar risk-free rate is <code>{esc(RISK_FREE_FORMULA)}</code>.</p>",
        "<h2>Metrics</h2><table><tr><th>strategy</th><th>span</th>"
        + "".join(f"<th>{esc(header)}</th>" for _, header, _ in TABLE_METRICS)
        + "</tr>",
    ]
    for name, s in strategies.items():
        span = f"{s.get('start', s['start_t'])} .. {s.get('end', s['end_t'])}"
        cells = "".join(f"<td>{_fmt(s['metrics'].get(key), spec)}</td>" for key, _, spec in TABLE_METRICS)
        parts.append(f"<tr><td>{esc(name)}</td><td>{esc(str(span))}</td>{cells}</tr>")
    parts.append("</table>")

    references = report.get("references") or {}
    if references:
        parts.append(
            "<h2>Reference policies</h2><p>Simple causal rules of this market (see "
            "<code>sb3_trading.evaluation.reference</code>), backtested on the same bars.</p>"
            "<table><tr><th>reference</th><th>span</th>"
            + "".join(f"<th>{esc(header)}</th>" for _, header, _ in TABLE_METRICS)
            + "</tr>"
        )
        for name, s in references.items():
            span = f"{s.get('start', s['start_t'])} .. {s.get('end', s['end_t'])}"
            cells = "".join(f"<td>{_fmt(s['metrics'].get(key), spec)}</td>" for key, _, spec in TABLE_METRICS)
            parts.append(f"<tr><td>{esc(name)}</td><td>{esc(str(span))}</td>{cells}</tr>")
        parts.append("</table>")
    if report.get("skill_ratio"):
        parts.append(f'<p class="skill-ratio"><strong>{esc(format_skill_ratio(report["skill_ratio"]))}</strong></p>')

    boot = report.get("bootstrap")
    if boot:
        level = 1.0 - boot["alpha"]
        parts.append(
            f"<h2>Bootstrap confidence intervals ({level:.0%})</h2><p>Stationary block bootstrap (Politis &amp; Romano 1994),"
            f" {boot['n_boot']} resamples, mean block length {esc(str(boot['mean_block'] or 'n^(1/3)'))} bars.</p>"
            "<table><tr><th>strategy</th><th>Sharpe</th><th>Sharpe CI</th><th>total return</th><th>CI</th>"
            "<th>CAGR</th><th>CI</th></tr>"
        )
        for name, s in strategies.items():
            ci = s.get("ci") or {}
            cells = []
            for key, spec in (("sharpe", "{:.2f}"), ("total_return", "{:.2%}"), ("annual_return", "{:.2%}")):
                c = ci.get(key)
                if c is None:
                    cells += ["<td>–</td>", "<td>–</td>"]
                else:
                    cells += [
                        f"<td>{_fmt(c['estimate'], spec)}</td>",
                        f"<td>[{_fmt(c['low'], spec)}, {_fmt(c['high'], spec)}]</td>",
                    ]
            parts.append(f"<tr><td>{esc(name)}</td>{''.join(cells)}</tr>")
        parts.append("</table>")

    if any(s.get("regimes") for s in strategies.values()):
        first = next(s["regimes"] for s in strategies.values() if s.get("regimes"))
        parts.append(
            f"<h2>Volatility regimes</h2><p>Method {esc(str(first['method']))}, window {esc(str(first['window']))} bars, "
            f"thresholds {esc(str(first['thresholds']))} (per-bar std of the equal-weight market return).</p>"
            "<table><tr><th>strategy</th>"
            + "".join(f"<th>{r} bars</th><th>{r} Sharpe</th><th>{r} return</th><th>{r} max DD</th>" for r in REGIMES)
            + "</tr>"
        )
        for name, s in strategies.items():
            table = (s.get("regimes") or {}).get("regimes", {})
            cells = []
            for regime in REGIMES:
                m = table.get(regime, {})
                cells += [
                    f"<td>{_fmt(m.get('n_periods'), '{:.0f}')}</td>",
                    f"<td>{_fmt(m.get('sharpe'), '{:.2f}')}</td>",
                    f"<td>{_fmt(m.get('total_return'), '{:.2%}')}</td>",
                    f"<td>{_fmt(m.get('max_drawdown'), '{:.2%}')}</td>",
                ]
            parts.append(f"<tr><td>{esc(name)}</td>{''.join(cells)}</tr>")
        parts.append("</table>")

    if plots:
        parts.append("<h2>Plots</h2>")
        for key, path in plots.items():
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            file_name = esc(Path(path).name)
            parts.append(
                f'<figure id="{esc(key)}"><img src="data:image/png;base64,{data}" alt="{file_name}">'
                f'<figcaption><a href="{file_name}">{file_name}</a></figcaption></figure>'
            )
    if report.get("config"):
        parts.append("<h2>Configuration</h2><pre>" + esc(json.dumps(report["config"], indent=2)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    results: Mapping[str, BacktestResult],
    output_dir: str | os.PathLike[str],
    title: str = "Backtest report",
    extra: Mapping[str, Any] | None = None,
    *,
    n_boot: int = 1000,
    alpha: float = 0.1,
    mean_block: float | None = None,
    seed: int = 0,
    regime_window: int = 20,
    regimes: bool = True,
    regime_method: str = "rolling",
    rolling_window: int | None = None,
    plots: bool = True,
    references: Mapping[str, BacktestResult] | None = None,
    skill_ratio: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``report.json``, the PNG plots and ``report.html`` for ``results`` into ``output_dir``.

    :param results: ``{name: result}``; the first is the strategy under test (its positions are plotted).
    :param output_dir: folder, created if needed; files are replaced atomically.
    :param title: report title.
    :param extra: JSON-able configuration stored under ``"config"`` (env, algorithm, data, seeds...).
    :param n_boot: bootstrap resamples per CI (``0`` skips the CIs).
    :param alpha: ``1 -`` confidence level of the CIs.
    :param mean_block: mean block length of the stationary bootstrap (default ``n ** (1/3)``).
    :param seed: bootstrap seed.
    :param regime_window: rolling-volatility window of the regime table, bars.
    :param regimes: add the volatility-regime table (for results that carry their ``market``).
    :param regime_method: ``"rolling"`` (causal volatility terciles) or ``"hmm"`` (needs ``hmmlearn``).
    :param rolling_window: rolling-Sharpe window, bars (default ``clip(n // 4, 2, 63)``).
    :param plots: draw the PNGs (needs matplotlib) and embed them in the HTML.
    :param references: the reference policies' results on the same bars (``"references"`` of the report).
    :param skill_ratio: the skill ratio dict of :func:`~sb3_trading.evaluation.reference.skill_report`
        (``"skill_ratio"`` of the report).
    :return: the report as written to ``report.json``, plus ``files`` (paths of everything written).
    """
    if not results:
        raise ValueError("write_report needs at least one BacktestResult")
    for name, result in results.items():
        if not isinstance(result, BacktestResult):
            raise TypeError(f"results[{name!r}] must be a BacktestResult, got {type(result).__name__}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    strategies: dict[str, Any] = {}
    for name, result in results.items():
        entry = result.to_dict()
        entry["name"] = name
        if n_boot:
            entry["ci"] = metric_cis(
                result.returns, result.periods_per_year, n_boot, mean_block, alpha, seed, risk_free=result.risk_free
            )
        if regimes and result.market is not None and result.n_steps >= 3:
            entry["regimes"] = regime_breakdown(result, window=regime_window, method=regime_method, seed=seed)
        strategies[name] = entry

    plot_paths: dict[str, Path] = {}
    if plots:
        n_min = min(r.n_steps for r in results.values())
        window = rolling_window or int(np.clip(n_min // 4, 2, 63))
        plot_paths = _plot_all(results, out, window)

    calendar, risk_free = calendar_summary(results)
    report: dict[str, Any] = {
        "title": title,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sb3_trading_version": __version__,
        "calendar": calendar,
        "risk_free": risk_free,
        "config": dict(extra or {}),
        "bootstrap": {"n_boot": n_boot, "alpha": alpha, "mean_block": mean_block, "seed": seed} if n_boot else None,
        "strategies": strategies,
        "references": {name: {**result.to_dict(), "name": name} for name, result in (references or {}).items()},
        "skill_ratio": dict(skill_ratio) if skill_ratio is not None else None,
        "plots": {key: path.name for key, path in plot_paths.items()},
    }
    report = jsonable(report)
    json_path = atomic_write_json(out / REPORT_JSON, report)
    html_path = atomic_write(out / REPORT_HTML, lambda tmp: tmp.write_text(_html(report, plot_paths), encoding="utf-8"))
    logger.info("wrote %s and %s", json_path, html_path)
    report["files"] = {"json": str(json_path), "html": str(html_path), **{k: str(p) for k, p in plot_paths.items()}}
    return report
