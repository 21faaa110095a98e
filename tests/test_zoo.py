"""zoo_configs/ run unchanged through rl-zoo3 (and the thin launcher for algorithms rl-zoo3 lacks)."""

import subprocess
import sys

import pytest
import yaml

import sb3_trading
from sb3_trading.zoo_configs import CONFIG_DIR

ZOO = CONFIG_DIR
TINY = ["-n", "256", "-params", "n_envs:2", "n_steps:64", "batch_size:64", "--seed", "0"]
# (algo, env for the run test, entry module): rl-zoo3 itself for the algorithms it lists, the launcher otherwise
# every run (~12-20 s each: a subprocess per command) with `pytest -m slow`; the default suite reads the zoo
# configs in-process (tests/test_callbacks.py::test_rl_zoo3_yml_with_wrappers_and_callbacks)
RUNS = [
    pytest.param("ppo", "sb3_trading/LeveragedPair-v0", "rl_zoo3", marks=pytest.mark.slow),
    pytest.param("ppo_lstm", "sb3_trading/MultiAsset-v0", "rl_zoo3", marks=pytest.mark.slow),
    pytest.param("ppo_mask", "sb3_trading/MaskedTrading-v0", "sb3_trading.zoo", marks=pytest.mark.slow),
    pytest.param("qppo", "sb3_trading/YieldAllocation-v0", "sb3_trading.zoo", marks=pytest.mark.slow),
    pytest.param("qppo_mask", "sb3_trading/MaskedTrading-v0", "sb3_trading.zoo", marks=pytest.mark.slow),
    pytest.param("ppo_mask", "sb3_trading/SingleAsset-v0", "sb3_trading.zoo", marks=pytest.mark.slow),
]


def zoo(entry: str, command: str, *args: str) -> subprocess.CompletedProcess:
    module = f"rl_zoo3.{command}" if entry == "rl_zoo3" else "sb3_trading.zoo"
    prefix = [] if entry == "rl_zoo3" else [command]
    gym_packages = ["--gym-packages", "sb3_trading"] if entry == "rl_zoo3" else []
    return subprocess.run(
        [sys.executable, "-m", module, *prefix, *args, *gym_packages], capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "algo, env_id, entry", RUNS, ids=["ppo", "ppo_lstm", "ppo_mask", "qppo", "qppo_mask", "ppo_mask-single"]
)
def test_zoo_trains_saves_and_enjoy_loads(tmp_path, algo, env_id, entry):
    logs = tmp_path / "logs"
    train = zoo(
        entry, "train", "--algo", algo, "--env", env_id, "--conf-file", str(ZOO / f"{algo}.yml"), "-f", str(logs), *TINY
    )
    assert train.returncode == 0, train.stderr[-3000:]
    saved = list(logs.glob(f"{algo}/*/{env_id.replace('/', '-')}.zip"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0
    enjoy = zoo(entry, "enjoy", "--algo", algo, "--env", env_id, "-f", str(logs), "--no-render", "-n", "20")
    assert enjoy.returncode == 0, enjoy.stderr[-3000:]
    assert "Loading" in enjoy.stdout


@pytest.mark.slow
def test_zoo_config_sets_the_market_rules(tmp_path):
    """A zoo config's env_kwargs set a venue preset and bracket orders (README "Market rules")."""
    config = yaml.safe_load((ZOO / "ppo.yml").read_text())
    entry = config["sb3_trading/MultiAsset-v0"]
    entry["env_kwargs"] = {**entry["env_kwargs"], "costs": "us_equities", "brackets": {"stop_loss": 0.05}}
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump({"sb3_trading/MultiAsset-v0": entry}))
    train = zoo(
        "rl_zoo3",
        "train",
        "--algo",
        "ppo",
        "--env",
        "sb3_trading/MultiAsset-v0",
        "--conf-file",
        str(path),
        "-f",
        str(tmp_path / "logs"),
        *TINY,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert "us_equities" in train.stdout


@pytest.mark.parametrize("config", ["ppo", "ppo_lstm", "qppo"])
def test_configs_are_keyed_by_every_env_id(config):
    keys = set(yaml.safe_load((ZOO / f"{config}.yml").read_text()))
    assert keys == set(sb3_trading.ENV_ENTRY_POINTS)


@pytest.mark.parametrize("config", ["ppo_mask", "qppo_mask"])
def test_masked_configs_cover_the_discrete_envs(config):
    assert set(yaml.safe_load((ZOO / f"{config}.yml").read_text())) == {
        "sb3_trading/MaskedTrading-v0",
        "sb3_trading/SingleAsset-v0",
    }


def test_launcher_rejects_unknown_commands():
    result = subprocess.run([sys.executable, "-m", "sb3_trading.zoo", "fly"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "usage" in result.stderr


def test_parse_zoo_dict_reads_torch_classes_and_nested_dicts() -> None:
    """rl-zoo3 evaluates policy_kwargs with th and nn in scope; the parser reads those names without eval."""
    import torch as th

    from sb3_trading.common.hyperparams import format_zoo_value, parse_zoo_dict

    text = (
        "dict(net_arch=[64, 64], optimizer_class=th.optim.AdamW, optimizer_kwargs=dict(weight_decay=0.5), "
        "activation_fn=nn.ReLU)"
    )
    parsed = parse_zoo_dict(text)
    assert parsed == {
        "net_arch": [64, 64],
        "optimizer_class": th.optim.AdamW,
        "optimizer_kwargs": {"weight_decay": 0.5},
        "activation_fn": th.nn.ReLU,
    }
    assert format_zoo_value(parsed) == (
        "dict(net_arch=[64, 64], optimizer_class=th.optim.AdamW, optimizer_kwargs=dict(weight_decay=0.5), "
        "activation_fn=th.nn.ReLU)"
    )
    assert parse_zoo_dict(format_zoo_value(parsed)) == parsed


@pytest.mark.parametrize(
    "text", ["dict(a=os.system)", "dict(a=th.load)", "dict(a=th.optim._functional)", "dict(a=foo)", "dict(a=print(1))"]
)
def test_parse_zoo_dict_evaluates_nothing_else(text: str) -> None:
    from sb3_trading.common.hyperparams import parse_zoo_dict

    with pytest.raises(ValueError, match="torch"):
        parse_zoo_dict(text)
