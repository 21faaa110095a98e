"""The one run recipe: train, backtest, walk-forward and tuning build the same things and agree."""

import json

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.cli import main
from sb3_trading.envs.registration import ENV_ENTRY_POINTS
from sb3_trading.evaluation import backtest, buy_and_hold, yield_rates
from sb3_trading.recipe import (
    DEFAULT_HYPERPARAMS,
    check_hyperparams,
    default_hyperparams,
    default_market,
    load_env_data,
    make_backtest_env,
    split_train_test,
)

ENV_IDS = sorted(ENV_ENTRY_POINTS)
TINY = ["--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=1", "policy_kwargs={'net_arch': [16]}"]
TINY_PARAMS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_market_is_the_market_the_env_builds(env_id):
    market = default_market(env_id, seed=5)
    env = gym.make(env_id, synthetic_seed=5)
    built = env.unwrapped.data
    np.testing.assert_array_equal(market.prices, built.prices)
    np.testing.assert_array_equal(market.features, built.features)
    assert market.asset_names == built.asset_names and market.periods_per_year == built.periods_per_year
    env.close()


def test_default_market_refuses_a_non_trading_env():
    with pytest.raises(ValueError, match="not an sb3_trading trading env"):
        default_market("CartPole-v1")


def test_default_hyperparams_are_a_deep_copy():
    params = default_hyperparams("ppo", {"n_steps": 32})
    params["policy_kwargs"]["net_arch"].append(1)
    assert DEFAULT_HYPERPARAMS["ppo"]["policy_kwargs"]["net_arch"] == [64, 64] and params["n_steps"] == 32


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_steps": 0}, "n_steps must be an integer >= 1"),
        ({"learning_rate": "fast"}, "learning_rate must be a number > 0"),
        ({"gamma": 1.5}, "hyperparameter gamma must be >= 0 and <= 1"),
        ({"policy_kwargs": {"net_arch": "big"}}, "net_arch"),
        ({"n_stepz": 64}, "did you mean 'n_steps'"),
    ],
)
def test_hyperparams_are_validated_before_the_model_is_built(params, match):
    from stable_baselines3 import PPO

    with pytest.raises(ValueError, match=match):
        check_hyperparams("ppo", PPO, default_hyperparams("ppo", params))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``sb3-trading train`` of every registered env (256 steps, 2 envs), then ``sb3-trading backtest MODEL.zip``."""
    out = tmp_path_factory.mktemp("runs")
    reports = {}
    for env_id in ENV_IDS:
        name = env_id.split("/")[-1]
        code = main(
            ["train", "--env", env_id, "--timesteps", "256", "--n-envs", "2", "--device", "cpu", "--no-progress"]
            + ["--output-dir", str(out), "--run-name", name, *TINY]
        )
        assert code == 0
        code = main(["backtest", str(out / name / "model.zip"), "--n-boot", "0", "--no-plots"])
        assert code == 0
        trained = json.loads((out / name / "report.json").read_text())
        backtested = json.loads((out / name / "backtest" / "report.json").read_text())
        reports[env_id] = trained, backtested
    return reports


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_train_then_backtest_of_its_model_gives_the_same_held_out_metrics(runs, env_id):
    """No flag but the model: env, env arguments, data, split and normaliser come from the run folder."""
    trained, backtested = runs[env_id]
    agent = backtested["strategies"][trained["algo"]]
    assert (agent["start_t"], agent["end_t"]) == (trained["agent"]["start_t"], trained["agent"]["end_t"])
    assert agent["metrics"] == trained["agent"]["metrics"]
    for name, baseline in trained["baselines"].items():
        assert backtested["strategies"][name]["metrics"] == baseline["metrics"], name
        assert backtested["strategies"][name]["final_equity"] == baseline["final_equity"], name
    assert backtested["config"]["env_id"] == env_id and backtested["config"]["env_config"] == trained["env_config"]


def test_yield_allocation_baselines_earn_the_yield(runs):
    """The held-out buy-and-hold of YieldAllocation-v0 earns the assets' APY (it showed -0.1 % without it)."""
    env_id = "sb3_trading/YieldAllocation-v0"
    trained, _ = runs[env_id]
    data = load_env_data(env_id, None, 0)
    _, test_data = split_train_test(data, 0.2)
    env = make_backtest_env(env_id, test_data, None)
    base = env.unwrapped
    start, stop = trained["baselines"]["buy_and_hold"]["start_t"], trained["baselines"]["buy_and_hold"]["end_t"]
    traded = test_data.select_assets(list(base.traded_assets))
    independent = buy_and_hold(
        traded, start, stop, base.initial_cash, base.costs, rates=yield_rates(traded, base.periods_per_year)
    )
    without_yield = buy_and_hold(traded, start, stop, base.initial_cash, base.costs)
    env.close()
    reported = trained["baselines"]["buy_and_hold"]["metrics"]["total_return"]
    assert reported == pytest.approx(independent.metrics["total_return"], rel=1e-12)
    assert reported > without_yield.metrics["total_return"] + 0.01


class ConstantPolicy:
    """Always the same action (SB3's ``predict`` signature)."""

    def __init__(self, action):
        self.action = np.asarray(action, dtype=np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.action, None


def test_reported_baseline_equals_an_independent_backtest_of_the_baseline_policy(tmp_path):
    """MultiAsset-v0's action 1 in every asset is E/N in each: the equal-weight baseline, run through the env itself;
    env arguments (cash, costs, window) reach the env and the report records them as the env used them."""
    env_kwargs = ["window=4", "commission_bps=5", "initial_cash=50000.0"]
    code = main(
        ["train", "--timesteps", "128", "--n-envs", "2", "--device", "cpu", "--no-progress", "--env-kwargs", *env_kwargs]
        + ["--output-dir", str(tmp_path), "--run-name", "ew", *TINY]
    )
    assert code == 0
    report = json.loads((tmp_path / "ew" / "report.json").read_text())
    assert report["env_config"]["window"] == 4 and report["env_config"]["initial_cash"] == 50000.0
    assert report["env_config"]["costs"]["commission_bps"] == 5
    assert report["env_config"]["data_periods_per_year"] == 252

    data = load_env_data("sb3_trading/MultiAsset-v0", None, 0)
    train_data, test_data = split_train_test(data, 0.2)
    normalizer = gym.make("sb3_trading/MultiAsset-v0", data=train_data, normalizer="fit", window=4).unwrapped.normalizer
    env = make_backtest_env(
        "sb3_trading/MultiAsset-v0", test_data, normalizer, {"window": 4, "commission_bps": 5, "initial_cash": 50000.0}
    )
    assert env.unwrapped.initial_cash == 50000.0 and env.unwrapped.window == 4
    assert env.unwrapped.costs.commission_bps == 5
    independent = backtest(ConstantPolicy(np.ones(data.n_assets)), env, name="equal_weight")
    env.close()
    reported = report["baselines"]["equal_weight"]
    assert (reported["start_t"], reported["end_t"]) == (int(independent.t[0]), int(independent.t[-1]))
    assert reported["final_equity"] == pytest.approx(float(independent.equity[-1]), rel=1e-9)
    assert reported["metrics"]["sharpe"] == pytest.approx(independent.metrics["sharpe"], rel=1e-9)
    assert independent.equity[0] == 50000.0  # baselines start from the cash, not the agent's first equity


def _spy(monkeypatch, module, calls):
    """Record what ``module`` builds through the recipe, then stop before any training (a sentinel)."""

    class Built(Exception):
        pass

    def make_training_vec_env(env_id, env_kwargs, n_envs, seed, vec="auto", reward=(), sizing=()):
        from sb3_trading import recipe

        vec_env = recipe.make_training_vec_env(env_id, env_kwargs, n_envs, seed, vec, reward, sizing)
        calls["env_kwargs"], calls["vec_class"], calls["n_envs"], calls["seed"] = dict(env_kwargs), type(vec_env), n_envs, seed
        return vec_env

    def make_model(algo_name, algo_class, hyperparams, vec_env, seed, device="auto"):
        calls["hyperparams"], calls["algo_class"] = dict(hyperparams), algo_class
        raise Built

    monkeypatch.setattr(module, "make_training_vec_env", make_training_vec_env)
    monkeypatch.setattr(module, "make_model", make_model)
    return Built


def _comparable(calls):
    kwargs = dict(calls["env_kwargs"])
    data, normalizer = kwargs.pop("data"), kwargs.pop("normalizer")
    return kwargs, data, normalizer, calls["vec_class"], calls["n_envs"], calls["seed"]


def test_walk_forward_and_the_tuning_objective_build_what_train_builds(monkeypatch, tmp_path):
    pytest.importorskip("optuna")
    import sb3_trading.training
    import sb3_trading.walk_forward
    from sb3_trading.training import TrainConfig
    from sb3_trading.tuning.objective import TradingObjective

    env_id = "sb3_trading/MultiAsset-v0"
    env_kwargs = {"window": 5, "commission_bps": 2}
    built = {}
    calls = built.setdefault("train", {})
    sentinel = _spy(monkeypatch, sb3_trading.training, calls)
    config = TrainConfig(
        env_id=env_id, timesteps=128, n_envs=2, seed=7, eval_freq=64, output_dir=str(tmp_path), run_name="spy",
        progress_bar=False, device="cpu", hyperparams=TINY_PARAMS, env_kwargs=env_kwargs,
        resample="bootstrap",  # the same resampled training market in all three (seeded by the run's seed)
    )  # fmt: skip
    with pytest.raises(sentinel):
        sb3_trading.training.train(config)
    assert not (tmp_path / "spy").exists()

    data = load_env_data(env_id, None, 7)
    n_fit = calls["env_kwargs"]["data"].path_bounds[0][1]  # the training slice: the bank's first path
    calls = built.setdefault("walk_forward", {})
    sentinel = _spy(monkeypatch, sb3_trading.walk_forward, calls)
    with pytest.raises(sentinel):
        sb3_trading.walk_forward.walk_forward(
            "ppo", env_id, data, n_splits=1, train_size=n_fit, timesteps=128, seed=7, env_kwargs=env_kwargs,
            hyperparams=TINY_PARAMS, n_envs=2, device="cpu",
        )  # fmt: skip

    objective = TradingObjective(
        env_id, "ppo", data, timesteps=128, eval_freq=64, n_envs=2, seed=7, env_kwargs=env_kwargs, choices={"n_steps": [64]}
    )
    vec_env = objective.make_training_vec_env()
    built["tune"] = {
        "env_kwargs": objective.train_env_kwargs,
        "vec_class": type(vec_env),
        "n_envs": vec_env.num_envs,
        "seed": objective.seed,
    }
    vec_env.close()

    reference = _comparable(built["train"])
    for name in ("walk_forward", "tune"):
        kwargs, train_data, normalizer, vec_class, n_envs, seed = _comparable(built[name])
        assert kwargs == reference[0], name
        np.testing.assert_array_equal(train_data.prices, reference[1].prices)
        np.testing.assert_array_equal(normalizer.mean, reference[2].mean)
        np.testing.assert_array_equal(normalizer.std, reference[2].std)
        assert (vec_class, n_envs, seed) == reference[3:], name
    assert reference[3].__name__ == "BatchedVecEnv"  # batched where supported, for all three callers
    assert built["walk_forward"]["hyperparams"] == built["train"]["hyperparams"]
    assert built["walk_forward"]["algo_class"] is built["train"]["algo_class"]
