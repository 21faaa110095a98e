"""Reward terms of issue 21: thresholds on drawdown/CVaR, volatility penalty, rolling Sharpe, excess return, clipping.

Each term is checked by hand on a scripted return path (:class:`ScriptedReturnsEnv`), then through specs
(``NAME:VALUE,key=value``), stacking, pickling and every registered env.
"""

import math
import pickle
import warnings
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import sb3_trading
from sb3_trading.common.parsing import split_arguments
from sb3_trading.envs import INFO_KEYS
from sb3_trading.wrappers import (
    COMPONENTS_KEY,
    RAW_REWARD_KEY,
    REWARD_WRAPPERS,
    CVaRPenalty,
    DrawdownPenalty,
    ExcessReturnReward,
    LogReturnReward,
    RewardClip,
    RewardScale,
    RollingSharpeReward,
    TurnoverPenalty,
    VolatilityPenalty,
    parse_reward_spec,
    wrap_reward,
)

RETURNS = [0.01, -0.02, 0.03, -0.04, 0.05, 0.0, 0.012, -0.007, 0.02, -0.015]
# equity 100 -> 110 -> 104.5 -> 94.05 -> 95.931 -> 115.1172: drawdown 0, 0.05, 0.145, 0.1279, 0
FALLING = [0.1, -0.05, -0.1, 0.02, 0.2]


class ScriptedReturnsEnv(gym.Env):
    """Emits a prescribed return path through the standard ``info`` keys; the reward is the step's return.

    Equity compounds ``returns`` from 100; ``drawdown = 1 - E / peak``; the episode terminates after the
    last return (``episode_length`` steps); actions are ignored. ``periods_per_year`` (when given) is exposed
    as ``data.periods_per_year``, as the ``sb3_trading`` envs expose their data's calendar.
    """

    metadata = {"render_modes": []}

    def __init__(self, returns, turnover=None, periods_per_year=None):
        self.returns = [float(r) for r in returns]
        self.turnover = [0.0] * len(self.returns) if turnover is None else [float(x) for x in turnover]
        self.episode_length = len(self.returns)
        if periods_per_year is not None:
            self.data = SimpleNamespace(periods_per_year=periods_per_year)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def _info(self, r, turnover):
        return {
            "equity": self.equity,
            "cash": self.equity,
            "positions": np.zeros(1),
            "weights": np.zeros(1),
            "portfolio_return": r,
            "log_return": math.log1p(r),
            "turnover": turnover,
            "costs": 0.0,
            "drawdown": 1.0 - self.equity / self.peak,
            "t": self.k,
        }

    def _obs(self):
        return np.array([self.k / len(self.returns)], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k, self.equity, self.peak = 0, 100.0, 100.0
        return self._obs(), self._info(0.0, 0.0)

    def step(self, action):
        r = self.returns[self.k]
        self.equity *= 1.0 + r
        self.peak = max(self.peak, self.equity)
        info = self._info(r, self.turnover[self.k])
        self.k += 1
        return self._obs(), r, self.k >= len(self.returns), False, info


def run(env):
    """Rewards and infos of one whole episode (the action is always 0)."""
    env.reset(seed=0)
    rewards, infos, done = [], [], False
    while not done:
        _, reward, terminated, truncated, info = env.step(np.zeros(1, dtype=np.float32))
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return np.asarray(rewards), infos


def components(infos, key):
    return np.asarray([info[COMPONENTS_KEY][key] for info in infos])


def rolling(returns, window, min_periods, statistic):
    """``statistic`` of the trailing window at each step, written out independently of the wrappers (0 in warm-up)."""
    x = np.asarray(returns, dtype=np.float64)
    out = []
    for t in range(len(x)):
        chunk = x[max(0, t - window + 1) : t + 1]
        out.append(statistic(chunk) if chunk.size >= min_periods else 0.0)
    return np.asarray(out)


# ------------------------------------------------------------------ drawdown above a threshold
@pytest.mark.parametrize("mode", ["increase", "level"])
def test_drawdown_above_threshold_is_zero_below_it(mode):
    # drawdowns 0, 0.05, 0.145, 0.1279, 0 never reach 0.15
    rewards, infos = run(DrawdownPenalty(ScriptedReturnsEnv(FALLING), coef=5.0, mode=mode, above=0.15))
    assert (components(infos, "drawdown_penalty") == 0.0).all()
    assert rewards.tolist() == FALLING


def test_drawdown_above_threshold_by_hand():
    # beyond 8 %: e_t = 0, 0, 0.065, 0.0479, 0
    rewards, infos = run(DrawdownPenalty(ScriptedReturnsEnv(FALLING), coef=2.0, mode="level", above=0.08))
    level = 2.0 * np.array([0.0, 0.0, 0.065, 0.0479, 0.0])
    np.testing.assert_allclose(components(infos, "drawdown_penalty"), level, atol=1e-12)
    np.testing.assert_allclose(rewards, np.asarray(FALLING) - level, atol=1e-12)
    # increase mode charges the growth of e_t: only the fall from 5 % to 14.5 % below 8 %, i.e. 0.065, once
    rewards, infos = run(DrawdownPenalty(ScriptedReturnsEnv(FALLING), coef=2.0, mode="increase", above=0.08))
    increase = 2.0 * np.array([0.0, 0.0, 0.065, 0.0, 0.0])
    np.testing.assert_allclose(components(infos, "drawdown_penalty"), increase, atol=1e-12)
    np.testing.assert_allclose(rewards, np.asarray(FALLING) - increase, atol=1e-12)
    # above=0 is the plain penalty
    plain = run(DrawdownPenalty(ScriptedReturnsEnv(FALLING), coef=2.0, mode="level"))[0]
    zero = run(DrawdownPenalty(ScriptedReturnsEnv(FALLING), coef=2.0, mode="level", above=0.0))[0]
    np.testing.assert_array_equal(plain, zero)


# ------------------------------------------------------------------ CVaR above a threshold
def test_cvar_above_threshold_by_hand_and_zero_below_it():
    # window 3, alpha 0.5: CVaR -0.01, 0.02, 0.005, 0.03, 0.005 (see tests/test_wrappers.py); beyond 0.01: 0, .01, 0, .02, 0
    path = [0.01, -0.02, 0.03, -0.04, 0.05]
    rewards, infos = run(CVaRPenalty(ScriptedReturnsEnv(path), coef=10.0, alpha=0.5, window=3, above=0.01))
    penalties = [0.0, 0.1, 0.0, 0.2, 0.0]
    np.testing.assert_allclose(components(infos, "cvar_penalty"), penalties, atol=1e-12)
    np.testing.assert_allclose(rewards, np.asarray(path) - penalties, atol=1e-12)
    _, infos = run(CVaRPenalty(ScriptedReturnsEnv(path), coef=10.0, alpha=0.5, window=3, above=0.03))
    assert (components(infos, "cvar_penalty") == 0.0).all()


# ------------------------------------------------------------------ volatility
def test_volatility_penalty_by_hand():
    # two returns +-1 %: std(ddof=1) = sqrt(2) %; beyond 1 %: (sqrt(2) - 1) %
    rewards, infos = run(VolatilityPenalty(ScriptedReturnsEnv([0.01, -0.01]), coef=3.0, window=5, above=0.01))
    expected = [0.0, 3.0 * (math.sqrt(2) * 0.01 - 0.01)]
    np.testing.assert_allclose(components(infos, "volatility_penalty"), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rewards, np.array([0.01, -0.01]) - expected, atol=1e-15)


def test_volatility_penalty_matches_a_rolling_std_and_is_zero_below_threshold():
    std = rolling(RETURNS, 4, 2, lambda x: np.std(x, ddof=1))
    _, infos = run(VolatilityPenalty(ScriptedReturnsEnv(RETURNS), coef=2.0, window=4))
    np.testing.assert_allclose(components(infos, "volatility_penalty"), 2.0 * std, rtol=1e-12, atol=1e-15)
    assert components(infos, "volatility_penalty")[0] == 0.0  # warm-up: one return has no spread
    _, infos = run(VolatilityPenalty(ScriptedReturnsEnv(RETURNS), coef=2.0, window=4, above=0.03))
    np.testing.assert_allclose(components(infos, "volatility_penalty"), 2.0 * np.maximum(std - 0.03, 0.0), atol=1e-15)
    _, infos = run(VolatilityPenalty(ScriptedReturnsEnv(RETURNS), coef=2.0, window=4, above=0.1))
    assert (components(infos, "volatility_penalty") == 0.0).all()
    # warm-up of 3 returns; annualised with 4 bars a year (x 2), log returns
    _, infos = run(VolatilityPenalty(ScriptedReturnsEnv(RETURNS), window=4, min_periods=3, annualize=True, periods_per_year=4))
    np.testing.assert_allclose(
        components(infos, "volatility_penalty"), 2.0 * rolling(RETURNS, 4, 3, lambda x: np.std(x, ddof=1))
    )
    _, infos = run(VolatilityPenalty(ScriptedReturnsEnv(RETURNS), window=4, returns="log"))
    np.testing.assert_allclose(
        components(infos, "volatility_penalty"), rolling(np.log1p(RETURNS), 4, 2, lambda x: np.std(x, ddof=1))
    )


# ------------------------------------------------------------------ rolling Sharpe
def sharpe(x, rf=0.0):
    excess = x - rf
    std = np.std(excess, ddof=1)
    return float(np.mean(excess) / std) if std > 1e-10 else 0.0


def test_rolling_sharpe_by_hand():
    # returns 1 %, 3 %: mean 2 %, std sqrt(2) %, Sharpe sqrt(2); then 1 %, 3 %, 2 %: mean 2 %, std 1 %, Sharpe 2
    rewards, infos = run(RollingSharpeReward(ScriptedReturnsEnv([0.01, 0.03, 0.02]), window=3))
    np.testing.assert_allclose(rewards, [0.0, math.sqrt(2), 2.0], rtol=1e-12)
    np.testing.assert_allclose(components(infos, "rolling_sharpe"), rewards)
    assert [info[RAW_REWARD_KEY] for info in infos] == [0.01, 0.03, 0.02]


@pytest.mark.parametrize(("window", "min_periods"), [(3, 2), (4, 4), (168, 2)])
def test_rolling_sharpe_matches_numpy_over_a_scripted_path(window, min_periods):
    path = (RETURNS * 30)[:200]
    env = RollingSharpeReward(ScriptedReturnsEnv(path), window=window, min_periods=min_periods)
    rewards, _ = run(env)
    np.testing.assert_allclose(rewards, rolling(path, window, min_periods, sharpe), rtol=1e-9, atol=1e-12)
    assert (rewards[: min_periods - 1] == 0.0).all()
    np.testing.assert_array_equal(run(env)[0], rewards)  # the window empties at reset


def test_rolling_sharpe_options():
    # zero spread (a flat or constant path): 0, not a division by zero
    assert (run(RollingSharpeReward(ScriptedReturnsEnv([0.0] * 6), window=3))[0] == 0.0).all()
    assert (run(RollingSharpeReward(ScriptedReturnsEnv([0.001] * 6), window=3))[0] == 0.0).all()
    # a risk-free rate: annual over the env's calendar or per bar; annualised by sqrt(P); log returns
    rf = 1.04 ** (1 / 12) - 1
    env = RollingSharpeReward(ScriptedReturnsEnv(RETURNS, periods_per_year=12), window=4, rate=0.04)
    assert env.risk_free_per_bar == pytest.approx(rf, rel=1e-12)
    expected = rolling(RETURNS, 4, 2, lambda x: sharpe(x, rf))
    np.testing.assert_allclose(run(env)[0], expected, rtol=1e-9)
    per_bar = RollingSharpeReward(ScriptedReturnsEnv(RETURNS), window=4, per_bar=rf, annualize=True, periods_per_year=12)
    np.testing.assert_allclose(run(per_bar)[0], math.sqrt(12) * expected, rtol=1e-9)
    logs = RollingSharpeReward(ScriptedReturnsEnv(RETURNS), window=4, returns="log", per_bar=rf)
    np.testing.assert_allclose(run(logs)[0], rolling(np.log1p(RETURNS), 4, 2, lambda x: sharpe(x, math.log1p(rf))), rtol=1e-9)
    with pytest.warns(UserWarning, match="every reward would be 0"):
        RollingSharpeReward(ScriptedReturnsEnv(RETURNS), window=168, min_periods=168)


# ------------------------------------------------------------------ excess return
def test_excess_return_by_hand():
    rf = 1.04 ** (1 / 252) - 1  # 4 %/year over 252 bars: 0.01556 % a bar
    assert rf == pytest.approx(0.00015565, rel=1e-4)
    rewards, infos = run(ExcessReturnReward(ScriptedReturnsEnv(RETURNS, periods_per_year=252), rate=0.04))
    np.testing.assert_allclose(rewards, np.log1p(RETURNS) - math.log1p(rf), rtol=1e-12)
    np.testing.assert_allclose(components(infos, "excess_return"), rewards)
    # summed: log wealth relative to cash earning the rate
    assert rewards.sum() == pytest.approx(math.log(np.prod(1 + np.asarray(RETURNS))) - len(RETURNS) * math.log(1.04) / 252)
    simple = run(ExcessReturnReward(ScriptedReturnsEnv(RETURNS), rate=0.04, returns="simple", periods_per_year=252))[0]
    np.testing.assert_allclose(simple, np.asarray(RETURNS) - rf, rtol=1e-12, atol=1e-15)
    per_bar = run(ExcessReturnReward(ScriptedReturnsEnv(RETURNS), per_bar=0.001, returns="simple"))[0]
    np.testing.assert_allclose(per_bar, np.asarray(RETURNS) - 0.001, atol=1e-15)
    # rate 0 is LogReturnReward, and needs no calendar
    np.testing.assert_array_equal(
        run(ExcessReturnReward(ScriptedReturnsEnv(RETURNS)))[0], run(LogReturnReward(ScriptedReturnsEnv(RETURNS)))[0]
    )


def test_excess_return_reads_the_calendar_of_a_registered_env():
    env = gym.make("sb3_trading/MultiAsset-v0")
    wrapped = ExcessReturnReward(env, rate=0.04)
    assert wrapped.risk_free_per_bar == pytest.approx(math.log1p(1.04 ** (1 / env.unwrapped.data.periods_per_year) - 1))
    with pytest.raises(ValueError, match="pass periods_per_year="):
        ExcessReturnReward(ScriptedReturnsEnv(RETURNS), rate=0.04)


# ------------------------------------------------------------------ clipping
def test_clip():
    path = [0.05, -0.2, 0.3, 0.1, -0.1]
    rewards, infos = run(RewardClip(ScriptedReturnsEnv(path), bound=0.1))
    np.testing.assert_array_equal(rewards, [0.05, -0.1, 0.1, 0.1, -0.1])
    np.testing.assert_allclose(components(infos, "clip"), [0.0, -0.1, 0.2, 0.0, 0.0], atol=1e-15)  # r - clip(r)
    np.testing.assert_array_equal(
        run(RewardClip(ScriptedReturnsEnv(path), low=-0.05, high=0.2))[0], [0.05, -0.05, 0.2, 0.1, -0.05]
    )
    np.testing.assert_array_equal(run(RewardClip(ScriptedReturnsEnv(path), high=0.0))[0], [0.0, -0.2, 0.0, 0.0, -0.1])
    np.testing.assert_array_equal(run(RewardClip(ScriptedReturnsEnv(path)))[0], path)  # default [-1, 1]
    scaled = wrap_reward(ScriptedReturnsEnv(path), ["scale:10", "clip:-1,2"])
    np.testing.assert_allclose(run(scaled)[0], [0.5, -1.0, 2.0, 1.0, -1.0], atol=1e-15)


# ------------------------------------------------------------------ specs
@pytest.mark.parametrize(
    ("spec", "cls", "kwargs"),
    [
        ("drawdown:0.5,above=0.08", DrawdownPenalty, {"coef": 0.5, "above": 0.08}),
        ("drawdown:0.5,mode=level,above=0.08", DrawdownPenalty, {"coef": 0.5, "mode": "level", "above": 0.08}),
        ("drawdown:0.5", DrawdownPenalty, {"coef": 0.5}),
        ("drawdown:mode=level", DrawdownPenalty, {"mode": "level"}),
        ("cvar: 2 , above = 0.01", CVaRPenalty, {"coef": 2, "above": 0.01}),
        ("volatility:2,window=48,above=0.01", VolatilityPenalty, {"coef": 2, "window": 48, "above": 0.01}),
        ("rolling_sharpe:window=168", RollingSharpeReward, {"window": 168}),
        ("rolling_sharpe:168,rate=0.04,annualize=True", RollingSharpeReward, {"window": 168, "rate": 0.04, "annualize": True}),
        ("excess_return:rate=0.04", ExcessReturnReward, {"rate": 0.04}),
        ("excess_return:per_bar=1e-4,returns=simple", ExcessReturnReward, {"per_bar": 1e-4, "returns": "simple"}),
        ("clip:1.0", RewardClip, {"bound": 1.0}),
        ("clip:-0.5,2", RewardClip, {"low": -0.5, "high": 2}),
        ("clip:high=2", RewardClip, {"high": 2}),
        ("clip", RewardClip, {}),
        (("volatility", {"coef": 1.0, "above": 0.02}), VolatilityPenalty, {"coef": 1.0, "above": 0.02}),
    ],
)
def test_spec_forms(spec, cls, kwargs):
    parsed_cls, parsed = parse_reward_spec(spec)
    assert parsed_cls is cls and parsed == kwargs
    env = wrap_reward(ScriptedReturnsEnv(RETURNS, periods_per_year=252), [spec])
    assert isinstance(env, cls) and np.isfinite(run(env)[0]).all()


def test_split_arguments_keeps_brackets_and_quotes():
    assert split_arguments("0.5, w=[1, 2], m='a,b', d={'x': (1, 2)}") == ["0.5", "w=[1, 2]", "m='a,b'", "d={'x': (1, 2)}"]
    assert split_arguments("") == []
    with pytest.raises(ValueError, match="unterminated"):
        split_arguments("w=[1, 2")
    with pytest.raises(ValueError, match="unbalanced"):
        split_arguments("w=1]")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("drawdown:0.5,coef=1", "gives 'coef' twice"),
        ("drawdown:above=0.1,above=0.2", "gives 'above' twice"),
        ("drawdown:0.5,0.3", "takes one positional value (coef)"),
        ("drawdown:above=0.1,0.5", "value '0.5' after a key=value"),
        ("cvar:coef=1,alpha", "expected NAME:key=value"),
        ("drawdown:0.5,", "an empty argument"),
        ("clip:low=[1,", "unterminated"),
        ("drawdown:0.5,2x=1", "'2x' is not an argument name"),
        ("volatility:windw=3", "no argument 'windw'; did you mean 'window'? It takes ['coef', 'window', 'above'"),
        ("drawdown:thresh=0.1", "It takes ['coef', 'mode', 'above']"),
        ("log_return:3", "takes no argument"),
        ("clip:1,2,3", "clip:BOUND or clip:LOW,HIGH"),
        ("clip:0", "bound must be > 0"),
        ("clip:2,1", "low must be < high"),
        ("clip:bound=1,low=0", "give bound (for [-bound, bound]) or low/high, not both"),
        ("drawdown:above=1.2", "above must be in [0, 1)"),
        ("drawdown:above=-0.1", "above must be >= 0"),
        ("cvar:above=-0.1", "above must be >= 0"),
        ("volatility:above=nan", "above must be finite"),
        ("volatility:window=1", "window must be an integer >= 2"),
        ("volatility:min_periods=30", "min_periods must be an integer >= 2 and <= 20"),
        ("rolling_sharpe:min_periods=1", "min_periods must be an integer >= 2"),
        ("rolling_sharpe:returns=abs", "returns must be one of"),
        ("rolling_sharpe:std_epsilon=-1", "std_epsilon must be >= 0"),
        ("excess_return:rate=0.04,per_bar=0.001", "give rate (annual) or per_bar (per bar), not both"),
        ("excess_return:rate=-1", "rate must be a finite annual rate > -1"),
        ("excess_return:per_bar=-1", "per_bar must be > -1"),
        ("excess_return:0.04,periods_per_year=0", "periods_per_year must be a finite number of bars per year > 0"),
        ("volatility:annualize=True", "pass periods_per_year="),
    ],
)
def test_bad_specs_raise_value_error_naming_the_argument(spec, message):
    with pytest.raises(ValueError) as caught:
        wrap_reward(ScriptedReturnsEnv(RETURNS), [spec])
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("drawdown:above=high", "above must be a number"),
        ("volatility:window=2.5", "window must be an integer"),
        ("rolling_sharpe:annualize=1", "annualize must be True or False"),
        ("clip:low=a,high=1", "low must be a number"),
        ("excess_return:rate=four", "rate must be an annual rate"),
    ],
)
def test_wrong_types_raise_type_error(spec, message):
    with pytest.raises(TypeError, match=message):
        wrap_reward(ScriptedReturnsEnv(RETURNS, periods_per_year=252), [spec])


# ------------------------------------------------------------------ stacking, info, pickling
def test_stacking_order_warnings():
    for specs, name in [
        (["drawdown", "rolling_sharpe"], "RollingSharpeReward"),
        (["volatility", "excess_return"], "ExcessReturnReward"),
        (["rolling_sharpe", "differential_sharpe"], "DifferentialSharpeReward"),
    ]:
        with pytest.warns(UserWarning, match=f"{name} replaces the reward"):
            wrap_reward(ScriptedReturnsEnv(RETURNS), specs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wrap_reward(
            ScriptedReturnsEnv(RETURNS, periods_per_year=252), ["excess_return:0.04", "volatility", "scale:10", "clip:1"]
        )
        wrap_reward(ScriptedReturnsEnv(RETURNS), ["rolling_sharpe:window=4", "drawdown:0.5,above=0.08", "clip:1"])


def test_stacked_reward_is_the_fold_of_its_components():
    specs = [
        "excess_return:0.04",
        "drawdown:0.5,above=0.01",
        "cvar:1,above=0.005,window=3",
        "volatility:2,window=4",
        "turnover",
    ]
    specs += ["scale:20", "clip:0.2"]
    base = ScriptedReturnsEnv(RETURNS, turnover=[0.1 * k for k in range(len(RETURNS))], periods_per_year=252)
    rewards, infos = run(wrap_reward(base, specs))
    keys = ["excess_return", "drawdown_penalty", "cvar_penalty", "volatility_penalty", "turnover_penalty", "scale", "clip"]
    for reward, info in zip(rewards, infos, strict=True):
        assert list(info[COMPONENTS_KEY]) == keys
        c = info[COMPONENTS_KEY]
        inner = (
            c["excess_return"] - c["drawdown_penalty"] - c["cvar_penalty"] - c["volatility_penalty"] - c["turnover_penalty"]
        )
        assert reward == pytest.approx(c["scale"] * inner - c["clip"], abs=1e-12)
        assert -0.2 <= reward <= 0.2
    assert any(info[COMPONENTS_KEY]["clip"] != 0.0 for info in infos)
    assert any(info[COMPONENTS_KEY]["drawdown_penalty"] > 0.0 for info in infos)
    assert isinstance(wrap_reward(base, ["turnover", "scale"]).env, TurnoverPenalty)


def test_new_names_are_registered():
    for name, cls in {
        "volatility": VolatilityPenalty,
        "rolling_sharpe": RollingSharpeReward,
        "excess_return": ExcessReturnReward,
        "clip": RewardClip,
    }.items():
        assert REWARD_WRAPPERS[name] is cls


@pytest.mark.parametrize("env_id", sorted(sb3_trading.ENV_ENTRY_POINTS))
def test_new_terms_on_every_registered_env_pickle_and_rebuild(env_id):
    specs = [
        "rolling_sharpe:window=8,rate=0.04",
        "drawdown:0.5,above=0.02",
        "cvar:1,above=0.001",
        "volatility:1,window=5,above=0.001",
        "scale:10",
        "clip:1",
    ]
    env = wrap_reward(gym.make(env_id, **({"window": 30} if env_id.endswith("MaskedTrading-v0") else {})), specs)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(12):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and -1.0 <= reward <= 1.0 and set(INFO_KEYS) <= set(info)
        assert len(info[COMPONENTS_KEY]) == len(specs)
        if terminated or truncated:
            env.reset()
    clone = pickle.loads(pickle.dumps(env))
    assert type(clone) is RewardClip and clone.high == 1.0
    rebuilt = gym.make(env.spec)
    assert [w.name for w in rebuilt.spec.additional_wrappers] == [w.name for w in env.spec.additional_wrappers]
    assert isinstance(rebuilt, RewardClip) and isinstance(rebuilt.env, RewardScale)
