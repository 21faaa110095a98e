"""Trading callbacks: logged keys, hand-checked episode metrics, best model, early stop, rl-zoo3 yml."""

import math
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import (
    BaseCallback,
    StopTrainingOnNoModelImprovement,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_trading.callbacks import BacktestEvalCallback, TradingMetricsCallback, make_eval_callback
from sb3_trading.callbacks.backtest_eval import _ObsNormalizingPolicy
from sb3_trading.data import make_regime_market
from sb3_trading.evaluation import backtest, compute_metrics
from sb3_trading.wrappers import wrap_reward

ENV_ID = "sb3_trading/MultiAsset-v0"
TINY_PPO = dict(n_steps=64, batch_size=64, n_epochs=1, policy_kwargs=dict(net_arch=[16]), seed=0, device="cpu")


class ReturnPathEnv(gym.Env):
    """Replays ``returns`` (and ``turnover``, ``costs``) through the standard info keys; actions are ignored."""

    metadata = {"render_modes": []}

    def __init__(self, returns, turnover, costs, initial_equity=100.0):
        self.returns, self.turnover, self.costs = list(returns), list(turnover), list(costs)
        self.initial_equity = initial_equity
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def _info(self, r, turnover, costs):
        keys = ("equity", "cash", "portfolio_return", "log_return", "turnover", "costs", "drawdown", "t")
        values = (self.equity, self.equity, r, math.log1p(r), turnover, costs, 1 - self.equity / self.peak, self.k)
        return {**dict(zip(keys, values, strict=True)), "positions": np.zeros(1), "weights": np.zeros(1)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k, self.equity, self.peak = 0, self.initial_equity, self.initial_equity
        return np.zeros(1, dtype=np.float32), self._info(0.0, 0.0, 0.0)

    def step(self, action):
        r = self.returns[self.k]
        self.equity *= 1 + r
        self.peak = max(self.peak, self.equity)
        info = self._info(r, self.turnover[self.k], self.costs[self.k])
        self.k += 1
        return np.zeros(1, dtype=np.float32), r, self.k == len(self.returns), False, info


@pytest.fixture(scope="module")
def market():
    """A short seeded market: training slice and held-out slice."""
    return make_regime_market(n_steps=400, n_assets=2, seed=0).split(0.7)


def train_env(market, n_envs=2, reward=None):
    train, _ = market
    kwargs = dict(data=train, episode_length=32, random_start=True, render_mode=None)
    return make_vec_env(
        ENV_ID, n_envs=n_envs, seed=0, env_kwargs=kwargs, wrapper_class=wrap_reward, wrapper_kwargs={"specs": reward}
    )


def test_trading_metrics_match_hand_computation_per_env():
    paths = [
        ([0.01, -0.02, 0.03], [0.5, 0.1, 0.0], [1.0, 0.2, 0.0]),
        ([0.02, 0.01, -0.05, 0.04, 0.0], [1.0, 0.0, 0.3, 0.2, 0.0], [2.0, 0.0, 0.5, 0.1, 0.0]),
    ]
    vec_env = DummyVecEnv([lambda p=p: ReturnPathEnv(*p) for p in paths])
    callback = TradingMetricsCallback(periods_per_year=252, stats_window_size=1000)
    model = PPO("MlpPolicy", vec_env, **{**TINY_PPO, "n_steps": 15, "batch_size": 30})
    model.learn(total_timesteps=30, callback=callback)  # 15 steps per env: 5 episodes of env 0, 3 of env 1
    expected = {}
    for i, (returns, turnover, costs) in enumerate(paths):
        m = compute_metrics(returns, 252, turnover=turnover, costs=costs)
        expected[i] = {
            "episode_return": np.prod(1 + np.asarray(returns)) - 1,
            "sharpe": np.mean(returns) / np.std(returns, ddof=1) * math.sqrt(252),
            "max_drawdown": m["max_drawdown"],
            "turnover": np.mean(turnover),
            "cost_share": sum(costs) / 100.0,
            "episode_length": len(returns),
        }
    assert callback.n_episodes == 8
    lengths = [episode["episode_length"] for episode in callback.episodes]
    assert sorted(lengths) == [3] * 5 + [5] * 3
    for episode in callback.episodes:
        want = expected[0 if episode["episode_length"] == 3 else 1]
        assert episode == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert expected[1]["max_drawdown"] == pytest.approx(0.05)  # peak after +2 %, +1 %, then -5 %


def test_callbacks_log_to_csv_and_keep_the_best_model(market, tmp_path):
    _, test = market
    vec_env = train_env(market, reward=["differential_sharpe:0.1", "drawdown:0.5"])
    model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
    model.set_logger(configure(str(tmp_path / "log"), ["csv"]))
    normalizer = vec_env.get_attr("normalizer", indices=[0])[0]
    evaluation = BacktestEvalCallback(
        ENV_ID,  # the ID form: built at training start with the training env's normaliser
        eval_freq=64,
        best_model_save_path=tmp_path / "best",
        eval_env_kwargs={"data": test},
    )
    model.learn(total_timesteps=384, callback=[TradingMetricsCallback(), evaluation])

    assert evaluation.eval_env.unwrapped.normalizer is normalizer
    progress = pd.read_csv(tmp_path / "log" / "progress.csv")
    for key in ["episode_return", "sharpe", "max_drawdown", "turnover", "cost_share", "episode_length"]:
        assert progress[f"trading/{key}"].notna().any(), key
    for key in ["sharpe", "max_drawdown", "total_return", "sortino", "final_equity", "best_sharpe"]:
        # 384 steps / (64 calls x 2 envs) periodic evaluations, then the final model after the last update
        assert progress[f"eval/{key}"].notna().sum() == 4, key
    assert np.isfinite(progress["trading/sharpe"].dropna()).all()
    assert progress["eval/best_sharpe"].dropna().is_monotonic_increasing
    assert evaluation.best_mean_reward == max(metrics["sharpe"] for _, metrics in evaluation.evaluations)
    assert [t for t, _ in evaluation.evaluations] == [128, 256, 384, 384]
    # the periodic one at 384 ran before PPO's last update; the last one scored the weights training ended with
    assert evaluation.evaluate() == evaluation.evaluations[-1][1]

    files = sorted(p.name for p in (tmp_path / "best").iterdir())
    assert files == ["best_model.zip"]  # written atomically: no temp file left behind
    best = PPO.load(tmp_path / "best" / "best_model.zip", device="cpu")
    obs, _ = evaluation.eval_env.reset(seed=0)
    action, _ = best.predict(obs, deterministic=True)
    assert evaluation.eval_env.action_space.contains(action)


def test_early_stop_when_the_metric_cannot_improve(market, tmp_path):
    _, test = market
    vec_env = train_env(market, n_envs=1)
    model = PPO("MultiInputPolicy", vec_env, **{**TINY_PPO, "learning_rate": 0.0})  # the policy never changes
    eval_env = gym.make(ENV_ID, data=test, normalizer=vec_env.get_attr("normalizer", indices=[0])[0])
    callback = make_eval_callback(eval_env, eval_freq=32, best_model_save_path=tmp_path, patience=2, n_envs=1)
    assert isinstance(callback.callback, StopTrainingOnNoModelImprovement) and callback.callback.parent is callback
    total = 10_000
    model.learn(total_timesteps=total, callback=callback)
    # evaluation 1 sets the best; 2, 3, 4 do not improve; the 3rd non-improvement (> patience) stops
    assert model.num_timesteps < total
    assert [t for t, _ in callback.evaluations] == [32, 64, 96, 128]
    assert len({metrics["sharpe"] for _, metrics in callback.evaluations}) == 1
    assert (tmp_path / "best_model.zip").exists()


def test_lower_is_better_metric_and_stop_on_new_best(market):
    _, test = market
    vec_env = train_env(market, n_envs=1)
    model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
    eval_env = gym.make(ENV_ID, data=test, normalizer=vec_env.get_attr("normalizer", indices=[0])[0])
    stop = StopTrainingOnRewardThreshold(reward_threshold=-1.0)  # any drawdown below 100 % is good enough
    callback = BacktestEvalCallback(eval_env, eval_freq=32, metric="max_drawdown", callback_on_new_best=stop)
    model.learn(total_timesteps=1000, callback=callback)
    assert stop.parent is callback
    assert model.num_timesteps == 32
    assert callback.best_mean_reward == -callback.best_metrics["max_drawdown"] < 0


def test_vecnormalize_models_are_evaluated_on_normalised_observations(market):
    _, test = market
    vec_env = VecNormalize(train_env(market, n_envs=1))
    model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
    eval_env = gym.make(ENV_ID, data=test, normalizer=vec_env.get_attr("normalizer", indices=[0])[0])
    callback = BacktestEvalCallback(eval_env, eval_freq=64)
    model.learn(total_timesteps=64, callback=callback)
    assert callback.evaluations and np.isfinite(callback.best_mean_reward)
    policy = _ObsNormalizingPolicy(model, vec_env)
    obs, _ = eval_env.reset(seed=0)
    expected, _ = model.predict(vec_env.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], expected)


def test_several_episodes_are_averaged(market):
    _, test = market
    vec_env = train_env(market, n_envs=1)
    model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
    eval_env = gym.make(
        ENV_ID, data=test, normalizer=vec_env.get_attr("normalizer", indices=[0])[0], episode_length=20, random_start=True
    )
    callback = BacktestEvalCallback(eval_env, eval_freq=10**9, n_eval_episodes=2, seed=5)
    model.learn(total_timesteps=1, callback=callback)  # sets callback.model; no evaluation due yet
    assert callback.evaluations == []
    metrics = callback.evaluate()
    runs = [backtest(model, eval_env, seed=seed).metrics["total_return"] for seed in (5, 6)]
    assert runs[0] != runs[1]  # two different random starts
    assert metrics["total_return"] == pytest.approx(np.mean(runs), rel=1e-12)


def test_bad_arguments():
    env = gym.make(ENV_ID)
    with pytest.raises(ValueError, match="did you mean 'sharpe'"):
        BacktestEvalCallback(env, metric="sharp")
    with pytest.raises(TypeError, match="not a VecEnv"):
        BacktestEvalCallback(DummyVecEnv([lambda: gym.make(ENV_ID)]))
    with pytest.raises(ValueError, match="unknown env ID"):
        BacktestEvalCallback("sb3_trading/MultiAset-v0")
    with pytest.raises(ValueError, match="only used when eval_env is an env ID"):
        BacktestEvalCallback(env, eval_env_kwargs={"window": 2})
    with pytest.raises(ValueError, match="eval_freq must be"):
        make_eval_callback(env, eval_freq=0)
    with pytest.raises(ValueError, match="patience must be"):
        make_eval_callback(env, eval_freq=10, patience=-1)
    with pytest.raises(ValueError, match="periods_per_year"):
        TradingMetricsCallback(periods_per_year=0)
    assert make_eval_callback(env, eval_freq=1000, n_envs=8).eval_freq == 125
    assert isinstance(TradingMetricsCallback(), BaseCallback)


def test_rl_zoo3_yml_with_wrappers_and_callbacks(tmp_path):
    """rl-zoo3 resolves ``env_wrapper:`` and ``callback:`` entries by dotted path: both must work from a yml."""
    conf = tmp_path / "ppo.yml"
    conf.write_text(
        textwrap.dedent(
            f"""\
            {ENV_ID}:
              n_envs: 2
              n_timesteps: 256
              policy: 'MultiInputPolicy'
              n_steps: 64
              batch_size: 64
              n_epochs: 1
              gamma: 0.5
              learning_rate: !!float 3e-4
              ent_coef: 0.0
              policy_kwargs: "dict(net_arch=[16])"
              env_kwargs:
                random_start: True
                episode_length: 32
              env_wrapper:
                - sb3_trading.wrappers.DifferentialSharpeReward: {{eta: 0.05}}
                - sb3_trading.wrappers.DrawdownPenalty: {{coef: 0.5}}
              callback:
                - sb3_trading.callbacks.TradingMetricsCallback
                - sb3_trading.callbacks.BacktestEvalCallback:
                    eval_env: {ENV_ID}
                    eval_env_kwargs: {{synthetic_seed: 1, episode_length: 64}}
                    eval_freq: 64
                    best_model_save_path: {tmp_path / "best"}
            """
        )
    )
    # fmt: off
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", ENV_ID, "--gym-packages", "sb3_trading",
           "--conf-file", str(conf), "-f", str(tmp_path / "logs"), "-n", "256", "--eval-freq", "-1", "--seed", "0",
           "--device", "cpu", "--log-interval", "1"]
    # fmt: on
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = [p for p in (tmp_path / "logs").rglob("*.zip") if p.name != "best_model.zip"]
    assert models, result.stdout[-2000:]
    assert (tmp_path / "best" / "best_model.zip").exists()
    # SB3's stdout table groups keys by prefix: "| trading/ |" then "|    episode_return | ..."
    for text in ("| trading/", "episode_return", "cost_share", "| eval/", "best_sharpe"):
        assert text in result.stdout, text
    PPO.load(models[0], device="cpu")


def test_callbacks_annualise_with_the_env_data_calendar_and_the_risk_free_rate():
    """Issue 15: no caller passes periods_per_year; hourly 24/7 data is annualised with 8,760 bars a year."""
    from sb3_trading.data import MarketData
    from sb3_trading.vec import make_vec_env as make_batched_vec_env

    base = make_regime_market(n_steps=300, n_assets=2, seed=1)
    hourly = MarketData(
        prices=base.prices,
        features=base.features,
        feature_names=base.feature_names,
        asset_names=base.asset_names,
        timestamps=pd.date_range("2021-01-01", periods=base.n_steps, freq="h").values,
    )
    assert hourly.periods_per_year == 8760
    kwargs = dict(data=hourly, episode_length=16, random_start=True)
    for vec_env in (
        make_vec_env(ENV_ID, n_envs=2, seed=0, env_kwargs={**kwargs, "render_mode": None}),
        make_batched_vec_env(ENV_ID, n_envs=2, seed=0, env_kwargs=kwargs),
    ):
        metrics = TradingMetricsCallback(risk_free=0.04, stats_window_size=1000)
        evaluation = BacktestEvalCallback(gym.make(ENV_ID, data=hourly), eval_freq=32, risk_free=0.04)
        model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
        model.learn(total_timesteps=64, callback=[metrics, evaluation])
        assert metrics.periods_per_year == 8760 and metrics.n_episodes > 0
        assert evaluation.evaluations  # it evaluated during training; now the final model, against a hand-set calendar
        expected = backtest(model, gym.make(ENV_ID, data=hourly), periods_per_year=8760, risk_free=0.04)
        assert evaluation.evaluate()["sharpe"] == pytest.approx(expected.metrics["sharpe"])
        vec_env.close()
    # an episode's Sharpe is on excess returns over the hourly rate
    path = ([0.01, -0.02, 0.03], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    callback = TradingMetricsCallback(periods_per_year=8760, risk_free=0.04, stats_window_size=10)
    model = PPO("MlpPolicy", DummyVecEnv([lambda: ReturnPathEnv(*path)]), **{**TINY_PPO, "n_steps": 3, "batch_size": 3})
    model.learn(total_timesteps=3, callback=callback)
    excess = np.asarray(path[0]) - (1.04 ** (1 / 8760) - 1)
    assert callback.episodes[0]["sharpe"] == pytest.approx(excess.mean() / excess.std(ddof=1) * math.sqrt(8760))


def test_trading_metrics_of_an_env_without_a_calendar_warn_and_assume_252():
    vec_env = DummyVecEnv([lambda: ReturnPathEnv([0.01, 0.02, -0.01], [0.0] * 3, [0.0] * 3)])
    callback = TradingMetricsCallback()
    model = PPO("MlpPolicy", vec_env, **{**TINY_PPO, "n_steps": 3, "batch_size": 3})
    with pytest.warns(UserWarning, match="252 bars a year"):
        model.learn(total_timesteps=3, callback=callback)
    assert callback.periods_per_year == 252


class ScriptedEvaluations(BacktestEvalCallback):
    """Replays scripted validation results (``sharpe``, ``psr``) instead of backtesting: the selection rule alone."""

    def __init__(self, script, **kwargs):
        super().__init__(gym.make(ENV_ID), **kwargs)
        self.script = list(script)

    def evaluate(self):
        sharpe, psr, *exposure = self.script.pop(0)
        self.last_metrics = {"sharpe": sharpe, "psr": psr, "exposure": exposure[0] if exposure else 0.0}
        return self.last_metrics


def test_validation_gate_keeps_the_untrained_policy_until_a_checkpoint_is_significant(market, tmp_path):
    vec_env = train_env(market, n_envs=1)
    # start (flat), then 4 periodic evaluations and the final one: high Sharpe without confidence is not enough
    script = [(0.0, 0.0), (1.5, 0.7), (0.8, 0.95), (2.0, 0.93), (1.0, 0.99), (3.0, 0.5)]
    gated = ScriptedEvaluations(script, eval_freq=64, min_confidence=0.9, best_model_save_path=tmp_path / "gated")
    PPO("MultiInputPolicy", vec_env, **TINY_PPO).learn(total_timesteps=256, callback=gated)
    assert [t for t, _ in gated.evaluations] == [0, 64, 128, 192, 256, 256]
    # 0.8 (psr 0.95) replaces the fallback although its Sharpe is below 1.5's; then 2.0 (0.93) is the best that passes
    assert gated.best_timestep == 192 and gated.best_metrics == {"sharpe": 2.0, "psr": 0.93, "exposure": 0.0}
    assert gated.gate_active and not gated.selected_initial and (tmp_path / "gated" / "best_model.zip").exists()

    never = ScriptedEvaluations([(0.0, 0.0), (1.5, 0.7), (2.5, 0.89), (0.5, 0.2)], eval_freq=64, min_confidence=0.9)
    PPO("MultiInputPolicy", vec_env, **TINY_PPO).learn(total_timesteps=128, callback=never)
    assert never.selected_initial and never.best_timestep == 0 and never.best_metrics["sharpe"] == 0.0

    ungated = ScriptedEvaluations(script[1:], eval_freq=64)  # no gate: nothing at the start, the best Sharpe wins
    PPO("MultiInputPolicy", vec_env, **TINY_PPO).learn(total_timesteps=256, callback=ungated)
    assert [t for t, _ in ungated.evaluations] == [64, 128, 192, 256, 256]
    assert ungated.best_metrics["sharpe"] == 3.0 and not ungated.selected_initial and not ungated.gate_active

    # an untrained policy that holds a book is no flat fallback: the gate switches itself off, Sharpe alone decides
    not_flat = ScriptedEvaluations([(-1.0, 0.2, 0.01), *script[1:]], eval_freq=64, min_confidence=0.9)
    PPO("MultiInputPolicy", vec_env, **TINY_PPO).learn(total_timesteps=256, callback=not_flat)
    assert not not_flat.gate_active and not not_flat.selected_initial
    assert not_flat.best_metrics["sharpe"] == 3.0 and not_flat.best_timestep == 256


def test_validation_gate_on_a_real_backtest_keeps_a_flat_untrained_policy(tmp_path):
    """MultiAsset-v0 with a dead zone: the untrained policy holds nothing, so the fallback is exactly flat."""
    train_data, validation = make_regime_market(n_steps=400, n_assets=2, seed=3, drift=0.0).split(0.6)
    kwargs = dict(episode_length=32, random_start=True, dead_zone=0.5)
    vec_env = make_vec_env(ENV_ID, n_envs=1, seed=0, env_kwargs={**kwargs, "data": train_data, "render_mode": None})
    normalizer = vec_env.get_attr("normalizer", indices=[0])[0]
    eval_env = gym.make(ENV_ID, data=validation, normalizer=normalizer, dead_zone=0.5)
    callback = BacktestEvalCallback(eval_env, eval_freq=64, min_confidence=0.9, best_model_save_path=tmp_path)
    model = PPO("MultiInputPolicy", vec_env, **TINY_PPO)
    model.learn(total_timesteps=192, callback=callback)
    start_t, start = callback.evaluations[0]
    assert start_t == 0 and start["psr"] == 0.0 and start["exposure"] == 0.0 and start["total_return"] == 0.0
    # 192 steps on a driftless market learn nothing significant: the flat untrained policy stays the best
    assert all(metrics["psr"] < 0.9 for _, metrics in callback.evaluations[1:])
    assert callback.gate_active and callback.selected_initial and callback.best_timestep == 0
    kept = backtest(PPO.load(tmp_path / "best_model.zip", device="cpu"), eval_env).metrics
    assert kept["exposure"] == 0.0 and kept["total_return"] == 0.0


def test_validation_psr_matches_the_probabilistic_sharpe_ratio_and_treats_a_flat_book_as_no_evidence():
    from sb3_trading.callbacks import validation_psr
    from sb3_trading.evaluation import probabilistic_sharpe_ratio

    returns = np.random.default_rng(0).normal(0.001, 0.01, 300)
    assert validation_psr(returns) == pytest.approx(probabilistic_sharpe_ratio(returns))
    assert validation_psr(returns, 0.0005) == pytest.approx(probabilistic_sharpe_ratio(returns - 0.0005))
    assert validation_psr(returns, 0.0005) < validation_psr(returns)
    assert validation_psr(np.zeros(100)) == 0.0  # cash: no variance, no evidence of skill
    assert validation_psr(np.full(100, 0.001), 0.0002) == 0.0  # a constant excess return has no variance either
    assert validation_psr(np.array([0.01, 0.02])) == 0.0
    with pytest.raises(ValueError, match=r"min_confidence must be in \(0, 1\)"):
        BacktestEvalCallback(gym.make(ENV_ID), min_confidence=1.0)
    with pytest.raises(TypeError, match="min_confidence must be a probability"):
        BacktestEvalCallback(gym.make(ENV_ID), min_confidence="0.9")
