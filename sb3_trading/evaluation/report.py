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
* per strategy with ``positions`` and its ``market`` (every backtest): ``trades``, the FIFO round-trip
  statistics of :func:`~sb3_trading.evaluation.trades.trade_analytics` (count, win rate, average win / loss,
  payoff ratio, profit factor, expectancy, holding period, costs in bps of traded notional, per asset; fills
  at the marks' closes, costs allocated by traded notional, open lots apart), shown in the HTML as a table.
* per strategy: ``significance``, its per-bar excess-return Sharpe ratio, the number of returns and its
  probabilistic Sharpe ratio against 0 (PSR, :func:`~sb3_trading.evaluation.overfitting.probabilistic_sharpe_ratio`;
  ``None`` for a constant series such as cash); for the **first** strategy only (the one that was selected)
  also the deflated Sharpe ratio (DSR) when a trial count is known: ``write_report(n_trials=...)`` or
  ``extra["n_trials"]``. The DSR's variance of the trials' per-bar Sharpe ratios is ``sharpe_variance`` (or
  ``extra["sharpe_variance"]``) when given, else ``1 / (n - 1)``, the sampling variance of a per-bar Sharpe
  estimate over ``n`` bars under the null of no skill; ``"overfitting"`` of the report states which.
  Without a trial count there is no DSR (``"overfitting"`` is ``None``).
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
from sb3_trading.evaluation.overfitting import deflated_sharpe_ratio, probabilistic_sharpe_ratio
from sb3_trading.evaluation.reference import format_skill_ratio
from sb3_trading.evaluation.regimes import REGIMES, regime_breakdown
from sb3_trading.evaluation.trades import MAX_RATIO, trade_analytics
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
    ("total_financing", "financing", "{:,.2f}"),
)
#: trade statistics shown in the HTML trades table: (key, header, format)
TABLE_TRADES = (
    ("n_trades", "round trips", "{:.0f}"),
    ("win_rate", "win rate", "{:.1%}"),
    ("avg_win_return", "avg win", "{:+.2%}"),
    ("avg_loss_return", "avg loss", "{:+.2%}"),
    ("payoff_ratio", "payoff", "{:.2f}"),
    ("profit_factor", "profit factor", "{:.2f}"),
    ("expectancy", "expectancy", "{:,.2f}"),
    ("expectancy_return", "expectancy/trade", "{:+.2%}"),
    ("mean_holding_bars", "mean hold bars", "{:.1f}"),
    ("total_costs", "costs", "{:,.2f}"),
    ("costs_bps", "costs bps", "{:.1f}"),
    ("mean_trade_costs_bps", "bps/trade", "{:.1f}"),
    ("n_open", "open lots", "{:.0f}"),
    ("open_pnl", "open PnL", "{:,.2f}"),
)
#: the DSR's default variance of the trials' per-bar Sharpe ratios (stated in the report)
NULL_SHARPE_VARIANCE = "1 / (n - 1): the sampling variance of a per-bar Sharpe estimate over n bars under no skill"


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


def _html_trades(strategies: Mapping[str, Any]) -> list[str]:
    """The trades table (strategies with a ``trades`` section)."""
    esc = html.escape
    rows = {name: s["trades"] for name, s in strategies.items() if s.get("trades")}
    if not rows:
        return []
    parts = [
        "<h2>Trades</h2><p>FIFO round trips per asset; fills at the close of each step's bar (mid), each step's "
        "costs allocated to its trades by traded notional; returns are PnL / entry notional net of entry and exit "
        "costs; costs in bps of traded notional. Lots still open at the end are not round trips (open PnL marked at "
        f"the last close). A profit factor or payoff of {MAX_RATIO:g} means no losing trade.</p>"
        "<table><tr><th>strategy</th>" + "".join(f"<th>{esc(header)}</th>" for _, header, _ in TABLE_TRADES) + "</tr>"
    ]
    per_trade = {key for key, _, _ in TABLE_TRADES[1:9]} | {"mean_trade_costs_bps"}  # undefined without round trips
    for name, t in rows.items():
        cells = "".join(
            f"<td>{_fmt(None if key in per_trade and not t.get('n_trades') else t.get(key), spec)}</td>"
            for key, _, spec in TABLE_TRADES
        )
        parts.append(f"<tr><td>{esc(name)}</td>{cells}</tr>")
    parts.append("</table>")
    return parts


def _html_significance(report: Mapping[str, Any]) -> list[str]:
    """The PSR / DSR table (strategies with a ``significance`` section)."""
    esc = html.escape
    rows = {name: s["significance"] for name, s in report["strategies"].items() if s.get("significance")}
    if not rows:
        return []
    overfit = report.get("overfitting")
    text = (
        "<h2>Sharpe ratio significance</h2><p>PSR: probability that the true Sharpe ratio of the excess returns "
        "exceeds 0, given its sampling error under their skewness and kurtosis (Bailey &amp; López de Prado 2012).</p>"
    )
    if overfit:
        text += (
            f'<p class="dsr">DSR of {esc(str(overfit["applies_to"]))}: the PSR against the Sharpe ratio the best of '
            f"{overfit['n_trials']} skill-less trials is expected to reach (Bailey &amp; López de Prado 2014), with "
            f"the trials' per-bar Sharpe variance {overfit['sharpe_variance']:.3g} "
            f"({esc(str(overfit['sharpe_variance_source']))}).</p>"
        )
    else:
        text += (
            '<p class="dsr">DSR: not shown, the number of trials is unknown (<code>write_report(n_trials=...)</code>, '
            "<code>sb3-trading backtest --n-trials N</code>).</p>"
        )
    parts = [text, "<table><tr><th>strategy</th><th>Sharpe/bar</th><th>bars</th><th>PSR (SR &gt; 0)</th><th>DSR</th></tr>"]
    for name, sig in rows.items():
        parts.append(
            f"<tr><td>{esc(name)}</td><td>{_fmt(sig.get('sharpe_per_period'), '{:.4f}')}</td>"
            f"<td>{_fmt(sig.get('n'), '{:.0f}')}</td><td>{_fmt(sig.get('psr'), '{:.1%}')}</td>"
            f"<td>{_fmt(sig.get('dsr'), '{:.1%}')}</td></tr>"
        )
    parts.append("</table>")
    return parts


def sharpe_significance(
    result: BacktestResult, n_trials: int | None = None, sharpe_variance: float | None = None
) -> dict[str, Any]:
    """PSR (against 0) and, with ``n_trials``, DSR of a result's excess returns over its per-bar risk-free rate.

    :param result: the backtest.
    :param n_trials: trials the result was selected from (``None``: no DSR).
    :param sharpe_variance: variance of the trials' per-bar Sharpe ratios (default ``1 / (n - 1)``).
    :return: ``{"sharpe_per_period", "n", "psr"[, "dsr", "n_trials", "sharpe_variance"]}``; ``None`` values where
        the ratio is undefined (a constant series, fewer than 2 returns).
    """
    excess = np.asarray(result.returns, dtype=np.float64) - risk_free_per_period(result.risk_free, result.periods_per_year)
    n = int(excess.size)
    out: dict[str, Any] = {"sharpe_per_period": None, "n": n, "psr": None}
    try:
        sd = float(np.std(excess, ddof=1))
        out["sharpe_per_period"] = float(excess.mean() / sd) if sd > 0 else None
        out["psr"] = probabilistic_sharpe_ratio(excess)
    except ValueError as exc:
        logger.debug("no PSR for %s: %s", result.name, exc)
    if n_trials is not None:
        variance = 1.0 / max(n - 1, 1) if sharpe_variance is None else float(sharpe_variance)
        out.update(n_trials=int(n_trials), sharpe_variance=variance, dsr=None)
        try:
            out["dsr"] = deflated_sharpe_ratio(excess, n_trials=int(n_trials), sharpe_variance=variance)
        except ValueError as exc:
            logger.debug("no DSR for %s: %s", result.name, exc)
    return out


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

    parts += _html_trades(strategies)
    parts += _html_significance(report)

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
    trades: bool = True,
    n_trials: int | None = None,
    sharpe_variance: float | None = None,
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
    :param trades: add each strategy's FIFO trade statistics (``"trades"``; needs its positions and market).
    :param n_trials: number of trials (configurations, seeds, checkpoints) the first strategy was selected from:
        adds its deflated Sharpe ratio; default ``extra["n_trials"]`` when present, else no DSR.
    :param sharpe_variance: variance of those trials' per-bar Sharpe ratios for the DSR (default
        ``extra["sharpe_variance"]``, else ``1 / (n - 1)``, the null's sampling variance).
    :return: the report as written to ``report.json``, plus ``files`` (paths of everything written).
    """
    if not results:
        raise ValueError("write_report needs at least one BacktestResult")
    for name, result in results.items():
        if not isinstance(result, BacktestResult):
            raise TypeError(f"results[{name!r}] must be a BacktestResult, got {type(result).__name__}")
    config = dict(extra or {})
    if n_trials is None and config.get("n_trials") is not None:
        n_trials = config["n_trials"]
    if sharpe_variance is None and config.get("sharpe_variance") is not None:
        sharpe_variance = config["sharpe_variance"]
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 (the trials the strategy was selected from), got {n_trials!r}")
    if sharpe_variance is not None and not (isinstance(sharpe_variance, (int, float)) and 0 <= sharpe_variance < math.inf):
        raise ValueError(f"sharpe_variance must be a finite number >= 0 (per-bar Sharpe variance), got {sharpe_variance!r}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    strategies: dict[str, Any] = {}
    first_name = next(iter(results))
    for name, result in results.items():
        entry = result.to_dict()
        entry["name"] = name
        if trades and result.positions is not None and result.market is not None:
            try:
                entry["trades"] = trade_analytics(result).to_dict()
            except ValueError as exc:
                logger.warning("no trade analytics for %s: %s", name, exc)
        entry["significance"] = sharpe_significance(result, n_trials if name == first_name else None, sharpe_variance)
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
    overfitting = None
    if n_trials is not None:
        first_significance = strategies[first_name]["significance"]
        overfitting = {
            "applies_to": first_name,
            "n_trials": int(n_trials),
            "sharpe_variance": first_significance["sharpe_variance"],
            "sharpe_variance_source": "given" if sharpe_variance is not None else NULL_SHARPE_VARIANCE,
            "dsr": first_significance["dsr"],
        }
    report: dict[str, Any] = {
        "title": title,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sb3_trading_version": __version__,
        "calendar": calendar,
        "risk_free": risk_free,
        "config": config,
        "bootstrap": {"n_boot": n_boot, "alpha": alpha, "mean_block": mean_block, "seed": seed} if n_boot else None,
        "strategies": strategies,
        "references": {name: {**result.to_dict(), "name": name} for name, result in (references or {}).items()},
        "skill_ratio": dict(skill_ratio) if skill_ratio is not None else None,
        "overfitting": overfitting,
        "plots": {key: path.name for key, path in plot_paths.items()},
    }
    report = jsonable(report)
    json_path = atomic_write_json(out / REPORT_JSON, report)
    html_path = atomic_write(out / REPORT_HTML, lambda tmp: tmp.write_text(_html(report, plot_paths), encoding="utf-8"))
    logger.info("wrote %s and %s", json_path, html_path)
    report["files"] = {"json": str(json_path), "html": str(html_path), **{k: str(p) for k, p in plot_paths.items()}}
    return report
