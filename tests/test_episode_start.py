"""``reset(options={"start": t})`` on every env, and backtests that chain episodes over a whole slice."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.envs.registration import ENV_ENTRY_POINTS
from sb3_trading.evaluation import backtest, concat_results
from sb3_trading.evaluation.backtest import RandomPolicy
from sb3_trading.evaluation.reference import skill_report

ENV_IDS = sorted(ENV_ENTRY_POINTS)


class ConstantPolicy:
    """The same action at every bar (``predict`` signature of SB3)."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action)

    def predict(self, observation, state=None, episode_start=None, deterministic=False, action_masks=None):
        if action_masks is not None:  # MaskedTrading: the first legal action
            return np.asarray(int(np.flatnonzero(action_masks)[0])), None
        return self.action.copy(), None


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_start_option_sets_the_first_bar(env_id: str) -> None:
    env = gym.make(env_id)
    base = env.unwrapped
    start = base.first_t + 7
    _, info = env.reset(seed=3, options={"start": start})
    assert info["t"] == start
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["t"] == start + 1
    # a plain reset still draws its own start
    _, info = env.reset(seed=3)
    assert base.first_t <= info["t"] < base.last_t


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("bad", [-1, 0, 10**7])
def test_reset_start_outside_the_decision_bars_raises(env_id: str, bad: int) -> None:
    env = gym.make(env_id)
    if bad == 0 and env.unwrapped.first_t == 0:
        pytest.skip("bar 0 is a decision bar of this env")
    with pytest.raises(ValueError, match="start"):
        env.reset(options={"start": bad})
    with pytest.raises(ValueError, match="start"):  # the last bar has no next bar to trade to
        env.reset(options={"start": env.unwrapped.last_t})


def test_reset_start_must_be_an_integer() -> None:
    env = gym.make("sb3_trading/MultiAsset-v0")
    with pytest.raises(TypeError, match="integer"):
        env.reset(options={"start": 60.5})


def test_reset_start_keeps_the_other_draws() -> None:
    """LeveragedPair draws its start, then its initial split: a given start replaces only the start."""
    env = gym.make("sb3_trading/LeveragedPair-v0", initial_split="random")
    start = env.unwrapped.first_t + 3
    _, plain = env.reset(seed=11)
    _, asked = env.reset(seed=11, options={"start": start})
    assert asked["t"] == start
    split = lambda info: info["weights"][0] / max(info["weights"].sum(), 1e-12)  # noqa: E731
    assert split(asked) == pytest.approx(split(plain), abs=0.02)  # whole shares at other prices


def test_consecutive_backtest_covers_the_slice_of_an_env_with_a_horizon() -> None:
    env = gym.make("sb3_trading/LeveragedPair-v0", max_days=30, random_start=False, stop_loss=None)
    base = env.unwrapped
    policy = ConstantPolicy(np.zeros(env.action_space.shape, dtype=np.float32))
    one = backtest(policy, env)
    assert one.n_steps == 30
    whole = backtest(policy, env, consecutive=True)
    assert whole.t[0] == base.first_t and whole.t[-1] == base.last_t
    np.testing.assert_array_equal(np.diff(whole.t), 1)  # no bar skipped or repeated
    # equal to stitching the episodes by hand, each from a fresh book where the last ended
    pieces, start = [], None
    while start is None or start < base.last_t:
        if start is None:
            piece = backtest(policy, env)
        else:
            piece = _backtest_from(policy, env, start)
        pieces.append(piece)
        start = int(piece.t[-1])
    assert len(pieces) == int(np.ceil((base.last_t - base.first_t) / 30))
    stitched = concat_results(pieces)
    np.testing.assert_allclose(whole.equity, stitched.equity, rtol=1e-12)
    np.testing.assert_allclose(whole.returns, stitched.returns, rtol=1e-12, atol=1e-15)
    assert whole.metrics["sharpe"] == pytest.approx(stitched.metrics["sharpe"])


def _backtest_from(policy, env, start):
    """One episode from ``start`` through ``backtest``'s own episode runner (the stitching reference)."""
    from sb3_trading.evaluation.backtest import _episode, _finish

    series, _, _ = _episode(policy, env, None, True, None, {"start": start})
    base = env.unwrapped
    return _finish(
        "agent",
        np.asarray(series["t"]),
        np.asarray(series["equity"]),
        np.asarray(series["turnover"]),
        np.asarray(series["costs"]),
        np.stack(series["weights"]),
        base.data,
        None,
        positions=np.stack(series["positions"]),
        start_positions=series["start_positions"],
        cash=np.asarray(series["cash"]),
        asset_names=base.traded_assets,
    )


def test_consecutive_backtest_continues_after_a_stop_loss() -> None:
    """A stop-loss ends an episode; the chained backtest restarts there with a fresh book and reaches the end."""
    env = gym.make("sb3_trading/LeveragedPair-v0", max_days=None, random_start=False, stop_loss=-0.01)
    base = env.unwrapped
    policy = RandomPolicy(env.action_space, seed=0)
    one = backtest(policy, env, deterministic=False, seed=0)
    assert one.t[-1] < base.last_t  # stopped out early
    whole = backtest(RandomPolicy(env.action_space, seed=0), env, deterministic=False, seed=0, consecutive=True)
    assert whole.t[-1] == base.last_t
    np.testing.assert_array_equal(np.diff(whole.t), 1)
    np.testing.assert_allclose(whole.equity[: one.n_steps + 1], one.equity)


@pytest.mark.parametrize("env_id", ["sb3_trading/MultiAsset-v0", "sb3_trading/YieldAllocation-v0"])
def test_consecutive_changes_nothing_for_an_episode_that_runs_to_the_end(env_id: str) -> None:
    env = gym.make(env_id)
    policy = ConstantPolicy(np.full(env.action_space.shape, 0.5, dtype=np.float32))
    one, whole = backtest(policy, env), backtest(policy, env, consecutive=True)
    np.testing.assert_array_equal(one.t, whole.t)
    np.testing.assert_array_equal(one.equity, whole.equity)


def test_skill_report_references_cover_the_agents_chained_bars() -> None:
    env = gym.make("sb3_trading/LeveragedPair-v0", max_days=30, random_start=False)
    policy = ConstantPolicy(np.zeros(env.action_space.shape, dtype=np.float32))
    agent = backtest(policy, env, consecutive=True)
    references, _ = skill_report(env, agent, n_boot=0, consecutive=True)
    for result in references.values():
        np.testing.assert_array_equal(result.t, agent.t)
