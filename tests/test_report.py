"""The report renders: report.json (metrics, CIs, regimes, config), PNG plots, one self-contained report.html."""

import base64
import json
import sys

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.data import make_gbm_market
from sb3_trading.evaluation import env_baselines, random_baseline, write_report
from sb3_trading.evaluation.report import PLOTS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results():
    env = gym.make("sb3_trading/MultiAsset-v0", data=make_gbm_market(n_steps=160, n_assets=3, seed=7))
    agent = random_baseline(env, seed=1, name="agent")
    return {"agent": agent, **env_baselines(env, int(agent.t[0]), int(agent.t[-1]))}


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_report_renders(results, tmp_path):
    pytest.importorskip("matplotlib")
    report = write_report(results, tmp_path / "out", title="Unit <report>", extra={"env_id": "x", "seed": 1}, n_boot=200)
    out = tmp_path / "out"
    written = _strict_json(out / "report.json")  # no NaN/Infinity: strict JSON
    assert written["title"] == "Unit <report>" and written["config"] == {"env_id": "x", "seed": 1}
    assert list(written["strategies"]) == ["agent", "cash", "buy_and_hold", "equal_weight"]
    agent = written["strategies"]["agent"]
    assert agent["metrics"] == pytest.approx(results["agent"].metrics)
    assert agent["ci"]["sharpe"]["low"] <= agent["ci"]["sharpe"]["estimate"] <= agent["ci"]["sharpe"]["high"]
    assert set(agent["regimes"]["regimes"]) == {"low", "mid", "high"}
    assert written["plots"] == {name: f"{name}.png" for name in PLOTS}

    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "Unit &lt;report&gt;" in html  # escaped
    for name in PLOTS:
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
        # embedded (self-contained) and linked by file name
        assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
        assert f'href="{name}.png"' in html
    for label in ("buy_and_hold", "Bootstrap confidence intervals", "Volatility regimes", "max DD bars"):
        assert label in html
    assert report["files"]["html"] == str(out / "report.html")
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_report_has_trade_analytics_and_sharpe_significance(results, tmp_path):
    from sb3_trading.commands.backtest import format_summary
    from sb3_trading.evaluation import probabilistic_sharpe_ratio, trade_analytics

    report = write_report(results, tmp_path, n_boot=0, plots=False, regimes=False)
    written = _strict_json(tmp_path / "report.json")
    for name, entry in written["strategies"].items():
        expected = trade_analytics(results[name]).to_dict()
        assert set(entry["trades"]) == set(expected), name
        assert {k: v for k, v in entry["trades"].items() if k != "by_asset"} == pytest.approx(
            {k: v for k, v in expected.items() if k != "by_asset"}
        ), name
    agent = written["strategies"]["agent"]
    assert agent["trades"]["n_trades"] > 0 and set(agent["trades"]["by_asset"]) <= set(results["agent"].asset_names)
    assert agent["significance"]["psr"] == pytest.approx(probabilistic_sharpe_ratio(results["agent"].returns))
    assert "dsr" not in agent["significance"] and written["overfitting"] is None
    assert written["strategies"]["cash"]["significance"]["psr"] is None  # constant returns: no PSR, no NaN
    html = (tmp_path / "report.html").read_text()
    for label in ("<h2>Trades</h2>", "profit factor", "costs bps", "Sharpe ratio significance", "PSR (SR &gt; 0)"):
        assert label in html
    assert "number of trials is unknown" in html
    text = format_summary(report)
    assert "trades (FIFO round trips" in text and f"{agent['trades']['n_trades']} trades, win" in text and "PSR" in text
    assert "DSR" not in text

    # a known trial count adds the first strategy's DSR (only its), from the argument or the config
    for kwargs in ({"n_trials": 20}, {"extra": {"n_trials": 20}}):
        deflated = write_report(results, tmp_path / str(len(kwargs)), n_boot=0, plots=False, regimes=False, **kwargs)
        sig = deflated["strategies"]["agent"]["significance"]
        assert sig["n_trials"] == 20 and sig["sharpe_variance"] == pytest.approx(1 / (results["agent"].n_steps - 1))
        assert 0.0 <= sig["dsr"] <= sig["psr"] and "dsr" not in deflated["strategies"]["buy_and_hold"]["significance"]
        assert deflated["overfitting"]["applies_to"] == "agent" and deflated["overfitting"]["dsr"] == sig["dsr"]
        assert "DSR of agent" in (tmp_path / str(len(kwargs)) / "report.html").read_text()
        assert "DSR of agent over 20 trials" in format_summary(deflated)
    given = write_report(results, tmp_path / "v", n_boot=0, plots=False, regimes=False, n_trials=5, sharpe_variance=1e-3)
    assert given["overfitting"]["sharpe_variance"] == 1e-3 and given["overfitting"]["sharpe_variance_source"] == "given"
    with pytest.raises(ValueError, match="n_trials"):
        write_report(results, tmp_path / "bad", n_boot=0, plots=False, n_trials=0)
    with pytest.raises(ValueError, match="sharpe_variance"):
        write_report(results, tmp_path / "bad", n_boot=0, plots=False, n_trials=3, sharpe_variance=-1.0)
    plain = write_report(results, tmp_path / "no_trades", n_boot=0, plots=False, regimes=False, trades=False)
    assert "trades" not in plain["strategies"]["agent"] and "trades (FIFO" not in format_summary(plain)


def test_report_without_plots_or_cis(results, tmp_path):
    report = write_report({"agent": results["agent"]}, tmp_path, n_boot=0, plots=False, regimes=False)
    written = _strict_json(tmp_path / "report.json")
    assert written["plots"] == {} and written["bootstrap"] is None and "ci" not in written["strategies"]["agent"]
    assert "<img" not in (tmp_path / "report.html").read_text()
    assert set(report["files"]) == {"json", "html"}


def test_missing_matplotlib_raises_with_the_install_hint(results, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r'pip install "sb3-trading\[report\]"'):
        write_report(results, tmp_path, n_boot=0)
    write_report(results, tmp_path, n_boot=0, plots=False)  # JSON and HTML need no matplotlib


def test_report_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_report({}, tmp_path)
    with pytest.raises(TypeError, match="BacktestResult"):
        write_report({"x": np.zeros(3)}, tmp_path)
