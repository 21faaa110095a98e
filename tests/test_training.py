"""The main job end to end: learning beats random on held-out data; saved models reload elsewhere."""

import json
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.data import make_regime_market
from sb3_trading.evaluation import RandomPolicy, backtest
from sb3_trading.training import TrainConfig, split_train_test, train

ENV_ID = "sb3_trading/MultiAsset-v0"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The default main job (resampled training market, validation-selected model), shortened: a small budget
    learns the regime market's signal when the observation holds the signal columns only."""
    out = tmp_path_factory.mktemp("runs")
    config = TrainConfig(
        timesteps=LEARN_STEPS, seed=0, output_dir=str(out), run_name="ppo", progress_bar=False, env_kwargs=ENV_KWARGS
    )
    return train(config)


LEARN_STEPS = 40_000
ENV_KWARGS = {"indicators": ()}  # the data's own signal[...] columns only


def held_out_env(seed: int):
    train_data, test_data = split_train_test(make_regime_market(seed=seed), 0.2)
    normalizer = gym.make(ENV_ID, data=train_data, normalizer="fit", **ENV_KWARGS).unwrapped.normalizer
    return gym.make(ENV_ID, data=test_data, normalizer=normalizer, **ENV_KWARGS)


def test_ppo_beats_random_and_flat_on_held_out_data(trained):
    env = held_out_env(seed=0)
    random_returns = [backtest(RandomPolicy(env.action_space, seed=s), env).metrics["total_return"] for s in range(5)]
    agent = trained["agent"]["metrics"]
    assert agent["total_return"] > max(random_returns)
    assert agent["total_return"] > 0.01  # a flat book (cash) earns 0
    assert trained["agent"]["start_t"] == env.unwrapped.first_t  # backtested over the held-out slice
    # the signal follower has the market's edge; the agent captured part of it
    skill = trained["skill_ratio"]
    assert skill["reference"] == "signal_follower" and skill["reference_sharpe"] > 1.0
    assert skill["estimate"] == pytest.approx(agent["sharpe"] / skill["reference_sharpe"])
    assert skill["estimate"] > 0.1


def test_ppo_learned_the_signal(trained):
    """Not just "trade less than random": held-out positions follow the regime signal more often than not."""
    from stable_baselines3 import PPO

    model = PPO.load(trained["model_path"], device="cpu")
    env = held_out_env(seed=0)
    signal_columns = [i for i, name in enumerate(env.unwrapped.feature_names) if name.startswith("signal[")]
    obs, _ = env.reset()
    agreement, done = [], False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        agreement.append(np.mean(np.sign(action) == np.sign(obs["market"][-1, signal_columns])))
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    assert np.mean(agreement) > 0.55  # a policy ignoring the signal agrees half of the time


def test_report_contents(trained):
    with open(f"{trained['run_dir']}/report.json") as f:
        report = json.load(f)
    assert report["env_id"] == ENV_ID and report["algo"] == "ppo"
    assert set(report["baselines"]) == {"buy_and_hold", "equal_weight"}
    for result in [report["agent"], *report["baselines"].values()]:
        assert {"total_return", "sharpe", "max_drawdown", "mean_turnover"} <= set(result["metrics"])
    assert report["data"]["train_rows"] + report["data"]["test_rows"] == report["data"]["n_steps"]
    # the defaults: a resampled training market, and the model validation picked
    assert report["training_market"] == {"resample": "synthetic", "paths": 16, "rows": 16 * report["data"]["fit_rows"]}
    assert report["model"] == "best on validation" and report["validation"]["best_timestep"] > 0
    assert report["data"]["fit_rows"] + report["validation"]["rows"] == report["data"]["train_rows"]
    assert set(report["references"]) == {"signal_follower"} and report["skill_ratio"]["low"] <= report["skill_ratio"]["high"]


def test_model_reloads_in_fresh_process_with_identical_actions(trained, tmp_path):
    from stable_baselines3 import PPO

    model = PPO.load(trained["model_path"], device="cpu")
    env = held_out_env(seed=0)
    obs, _ = env.reset()
    observations = []
    for _ in range(25):
        observations.append(obs)
        obs, *_ = env.step(env.action_space.sample())
    market = np.stack([o["market"] for o in observations])
    portfolio = np.stack([o["portfolio"] for o in observations])
    np.savez(tmp_path / "obs.npz", market=market, portfolio=portfolio)
    expected, _ = model.predict({"market": market, "portfolio": portfolio}, deterministic=True)

    script = textwrap.dedent(
        f"""
        import numpy as np
        import sb3_trading
        from stable_baselines3 import PPO
        obs = dict(np.load({str(tmp_path / "obs.npz")!r}))
        model = PPO.load({trained["model_path"]!r}, device="cpu")
        actions, _ = model.predict(obs, deterministic=True)
        np.save({str(tmp_path / "actions.npy")!r}, actions)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "actions.npy"), expected)


def test_recurrent_ppo_trains_and_backtests(tmp_path):
    report = train(
        TrainConfig(
            algo="ppo_lstm",
            timesteps=256,
            n_envs=2,
            output_dir=str(tmp_path),
            run_name="lstm",
            progress_bar=False,
            hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        )
    )
    assert report["algo"] == "ppo_lstm"
    assert report["agent"]["metrics"]["n_periods"] > 100


def test_ppo_mask_on_continuous_env_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="action_masks"):
        train(TrainConfig(algo="ppo_mask", timesteps=64, output_dir=str(tmp_path), progress_bar=False))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"algo": "ppo2"}, "unknown algorithm 'ppo2'; did you mean 'ppo'"),
        ({"env_id": "sb3_trading/MultiAset-v0"}, "did you mean 'sb3_trading/MultiAsset-v0'"),
        ({"timesteps": 0}, "timesteps"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"risk_free": -2.0}, "risk_free"),
        ({"join": "outer"}, "join"),
        ({"data_path": []}, "empty list"),
    ],
)
def test_bad_config_raises(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(TrainConfig(output_dir=str(tmp_path), progress_bar=False, **kwargs))
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_batched_and_dummy_vec_envs_train_the_same_model(tmp_path):
    """The batched env equals DummyVecEnv step for step, so the same seed trains the same agent."""
    reports = {
        vec: train(
            TrainConfig(
                timesteps=512,
                n_envs=4,
                seed=3,
                vec=vec,
                output_dir=str(tmp_path),
                run_name=vec,
                progress_bar=False,
                hyperparams={"n_steps": 64, "batch_size": 128, "n_epochs": 2},
            )
        )  # fmt: skip
        for vec in ("batched", "dummy")
    }
    assert reports["batched"]["vec_env"] == "batched" and reports["dummy"]["vec_env"] == "dummy"
    assert reports["batched"]["agent"]["metrics"] == pytest.approx(reports["dummy"]["agent"]["metrics"], rel=1e-6)


def test_vec_choice_is_explicit():
    from sb3_trading.training import choose_vec_env

    assert choose_vec_env("sb3_trading/MultiAsset-v0", "auto", []) == "batched"
    assert choose_vec_env("sb3_trading/MultiAsset-v0", "auto", ["drawdown"]) == "dummy"  # wrappers need single envs
    for env_id in ("sb3_trading/YieldAllocation-v0", "sb3_trading/MarketImpact-v0"):  # every env is batched now
        assert choose_vec_env(env_id, "auto", []) == "batched"
    assert choose_vec_env("CartPole-v1", "auto", []) == "dummy"
    with pytest.raises(ValueError, match="supports"):
        choose_vec_env("CartPole-v1", "batched", [])
    with pytest.raises(ValueError, match="reward wrappers"):
        choose_vec_env("sb3_trading/MultiAsset-v0", "batched", ["drawdown"])


def test_hourly_data_is_annualised_with_8760_bars_and_the_risk_free_rate_is_reported(tmp_path):
    """Issue 15: hourly 24/7 bars are 8,760 a year (they were annualised with 6,048); the report says so."""
    import pandas as pd

    data = make_regime_market(n_steps=400, n_assets=2, seed=3)
    csv = tmp_path / "hourly.csv"
    frame = data.to_frame()[list(data.asset_names)]
    frame.index = pd.date_range("2021-01-01", periods=data.n_steps, freq="h", name="date")
    frame.to_csv(csv)
    tiny = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}
    config = TrainConfig(
        data_path=str(csv), timesteps=64, n_envs=1, episode_length=32, output_dir=str(tmp_path), run_name="hourly",
        progress_bar=False, device="cpu", hyperparams=tiny, risk_free=0.04,
    )  # fmt: skip
    report = train(config)
    assert report["calendar"]["periods_per_year"] == 8760 and "24/7" in report["calendar"]["calendar"]
    assert report["risk_free"] == {
        "annual": 0.04,
        "per_period": pytest.approx(1.04 ** (1 / 8760) - 1, rel=1e-12),
        "formula": "risk_free_per_period = (1 + risk_free) ** (1 / periods_per_year) - 1",
    }
    for result in (report["agent"], *report["baselines"].values()):
        assert result["periods_per_year"] == 8760 and result["risk_free"] == 0.04
    written = json.loads((tmp_path / "hourly" / "report.json").read_text())
    assert written["calendar"] == report["calendar"] and written["config"]["risk_free"] == 0.04


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"device": "tpu"}, "unknown torch device 'tpu'"),
        ({"hyperparams": {"n_steps": 0}}, "n_steps must be an integer >= 1"),
        ({"hyperparams": {"learning_rate": "fast"}}, "learning_rate must be a number > 0"),
        ({"hyperparams": {"policy_kwargs": {"net_arch": [64, "x"]}}}, "net_arch"),
        ({"env_id": "CartPole-v1"}, "not an sb3_trading trading env"),
        ({"episode_length": 0}, "episode_length"),
    ],
)
def test_bad_config_is_refused_before_any_work(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(output_dir=str(tmp_path), progress_bar=False, **kwargs).validate()
    assert not any(tmp_path.iterdir())


def test_train_and_tune_share_the_recipe_defaults():
    from sb3_trading import recipe
    from sb3_trading.training import DEFAULT_HYPERPARAMS

    config = TrainConfig()
    assert DEFAULT_HYPERPARAMS is recipe.DEFAULT_HYPERPARAMS
    assert (config.test_fraction, config.validation_fraction, config.episode_length) == (
        recipe.DEFAULT_TEST_FRACTION,
        recipe.DEFAULT_VALIDATION_FRACTION,
        recipe.DEFAULT_EPISODE_LENGTH,
    )


def test_the_report_records_the_effective_env_and_hyperparameters(tmp_path):
    tiny = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}
    report = train(
        TrainConfig(
            env_id="sb3_trading/LeveragedPair-v0", timesteps=64, n_envs=1, output_dir=str(tmp_path), run_name="pair",
            progress_bar=False, device="cpu", hyperparams=tiny, env_kwargs={"initial_cash": 20_000.0, "commission_bps": 3},
        )
    )  # fmt: skip
    env_config = report["env_config"]
    assert env_config["initial_cash"] == 20_000.0 and env_config["costs"]["commission_bps"] == 3
    assert env_config["traded_assets"] and env_config["data_periods_per_year"] == 252
    assert report["hyperparams"]["n_steps"] == 64 and report["hyperparams"]["policy"] == "MultiInputPolicy"
    # LeveragedPair invests at reset (paying costs): the baselines still start from the cash, not the agent's equity
    for baseline in report["baselines"].values():
        start_equity = baseline["final_equity"] / (1.0 + baseline["metrics"]["total_return"])
        assert start_equity == pytest.approx(20_000.0, rel=1e-9)
