"""The benchmark scripts' ``--quick`` modes run end to end and write complete tables.

``benchmarks/env_throughput.py`` compares with gym-anytrading, a bench-only extra that
``pip install -e ".[dev]"`` does not install, so it is not run here.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sb3_trading
from sb3_trading.vec import SUPPORTED_ENV_IDS

# each script trains every env x algorithm: about a minute together, so they run with `pytest -m slow`
pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in ``text``, split into stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| env |")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_compare_algos_quick_writes_every_env_and_algorithm(tmp_path):
    run_script("compare_algos.py", "--quick", "--results", str(tmp_path))
    rows = table_rows((tmp_path / "compare_algos.md").read_text())
    envs = ("MaskedTrading-v0", "MultiAsset-v0", "LeveragedPair-v0")
    algos = ("PPO", "MaskablePPO", "RecurrentPPO", "QuantilePPO")
    assert [(row[0], row[1]) for row in rows] == [(env, algo) for env in envs for algo in algos]
    for env, algo, *cells in rows:
        if algo == "MaskablePPO" and env != "MaskedTrading-v0":
            assert cells[0].startswith("n/a"), (env, algo)
            continue
        assert all("±" in cell for cell in cells[:4]), (env, algo, cells)  # return, Sharpe, max DD, CVaR
        assert float(cells[4].split()[0].replace(",", "")) > 0, (env, algo)  # training fps
        masked = env == "MaskedTrading-v0"
        assert ("±" in cells[5]) == masked, (env, algo, cells[5])  # invalid-action rate on the masked env only
    masked_rate = {algo: float(cells[5].split()[0]) for env, algo, *cells in rows if env == "MaskedTrading-v0"}
    assert masked_rate["MaskablePPO"] == 0.0  # the masks keep it from choosing a masked action
    for env in envs:
        assert (tmp_path / f"learning_curves_{env}.png").stat().st_size > 1000


def test_training_profile_quick_splits_wall_time_for_every_env():
    rows = table_rows(run_script("training_profile.py", "--quick"))
    expected = []
    for env_id in sorted(sb3_trading.ENV_ENTRY_POINTS):
        name = env_id.split("/")[1]
        expected += [(name, "DummyVecEnv", "8"), (name, "DummyVecEnv", "64")]
        if env_id in SUPPORTED_ENV_IDS:  # every env: 64 accounts, and a large batch (256 in quick mode)
            expected += [(name, "batched", "64"), (name, "batched", "256")]
    assert [tuple(row[:3]) for row in rows] == expected
    for row in rows:
        shares = [float(cell.rstrip("%")) for cell in row[3:7]]  # env, inference, update, other
        assert all(share >= 0.0 for share in shares[:3]), row
        assert abs(sum(shares) - 100.0) < 0.5, row
        assert float(row[7].replace(",", "")) > 0, row  # fps


def test_normalizer_learning_quick_compares_every_normaliser_on_the_same_bars(tmp_path):
    run_script("normalizer_learning.py", "--quick", "--results", str(tmp_path))
    text = (tmp_path / "normalizer_learning.md").read_text()
    names = [row[0] for row in table_rows(text) if row[0] != "seed" and not row[0].isdigit()]
    assert {"fit (slice)", "expanding (slice)", "expanding (history)", "rolling (slice)"} <= set(names)
    assert "signal follower Sharpe" in text  # the learnable edge the normalisers are compared against


def test_learnability_quick_reports_every_env_and_algorithm_and_the_null_markets(tmp_path):
    run_script("learnability.py", "--quick", "--results", str(tmp_path))
    text = (tmp_path / "learnability.md").read_text()
    expected = [
        ("MultiAsset-v0", "PPO"),
        ("LeveragedPair-v0", "PPO"),
        ("MaskedTrading-v0", "MaskablePPO"),
        ("SingleAsset-v0", "MaskablePPO"),
        ("MarketImpact-v0", "PPO"),
        ("YieldAllocation-v0", "PPO"),
        ("MultiAsset-v0", "QuantilePPO"),
    ]
    targets, rest = text.split("## Learnable markets")
    learnable, null = rest.split("## Null markets")
    assert [tuple(row[:2]) for row in table_rows(targets)] == expected
    for row in table_rows(targets):
        assert all(cell.split()[0] in ("PASS", "FAIL") for cell in row[2:5]), row  # skill, driftless, permuted
    summary, per_seed = learnable.split("Per seed")
    assert [tuple(row[:2]) for row in table_rows(summary)] == expected
    assert all(row[-1] in ("PASS", "FAIL") for row in table_rows(summary))
    assert [tuple(row[:3]) for row in table_rows(per_seed)] == [(*row, "0") for row in expected]  # --quick: 1 seed
    null_summary, null_per_seed = null.split("Per seed")
    markets = ("driftless", "permuted")
    assert [tuple(row[:3]) for row in table_rows(null_summary)] == [(*row, m) for row in expected for m in markets]
    for row in table_rows(null_summary):
        assert row[3] == "2" and row[5] == "1" and row[-1] in ("PASS", "FAIL"), row  # 2 null seeds, ceil(2 / 10) allowed
    assert len(table_rows(null_per_seed)) == len(expected) * len(markets) * 2
    raw = json.loads((tmp_path / "learnability.json").read_text())
    assert [(row["env_id"], row["algo"]) for row in raw["rows"]][0] == ("sb3_trading/MultiAsset-v0", "ppo")
    for row in raw["rows"]:
        assert len(row["learnable"]) == 1 and sorted(row["null"]) == list(markets)
        for runs in row["null"].values():
            assert all(r["low"] <= r["high"] for r in runs), runs
            assert all(abs(r["sharpe"] - r["report_sharpe"]) < 1e-6 * max(1.0, abs(r["sharpe"])) for r in runs), runs


def test_compare_quantile_ppo_quick_compares_every_mode_on_every_env():
    text = run_script("compare_quantile_ppo.py", "--quick")
    body = [row for row in table_rows(text) if len(row) == 8]  # the results table (not the paired differences)
    envs = {row[0] for row in body}
    assert {"MultiAsset-v0", "YieldAllocation-v0", "MarketImpact-v0"} <= envs
    for env in envs:
        algos = {row[1] for row in body if row[0] == env}
        assert len(algos) >= 3, (env, algos)  # PPO, QuantilePPO mean, QuantilePPO CVaR
    assert "CVaR mode minus mean mode" in text
