"""Shared no-look-ahead check: perturb the future, require identical observations up to ``t``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.envs import MARKET_KEY


def perturb_future(data: MarketData, t: int, rng: np.random.Generator) -> MarketData:
    """A copy of ``data`` whose every value after row ``t`` is changed, rows ``<= t`` untouched.

    Prices and OHLCV are multiplied by random factors in ``[0.5, 1.5]`` (the same factor for high
    and low keeps ``high >= low``); features are scaled and shifted.
    """
    future = np.arange(data.n_steps)[:, None] > t
    factors = np.where(future, rng.uniform(0.5, 1.5, size=data.prices.shape), 1.0)
    feature_factors = np.where(future, rng.uniform(0.5, 1.5, size=data.features.shape), 1.0)

    def scaled(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else x * factors

    return MarketData(
        prices=scaled(data.prices),
        open=scaled(data.open),
        high=scaled(data.high),
        low=scaled(data.low),
        volume=scaled(data.volume),
        spread=scaled(data.spread),
        features=data.features * feature_factors + np.where(future, 0.3, 0.0),
        timestamps=data.timestamps,
        asset_names=data.asset_names,
        feature_names=data.feature_names,
        periods_per_year=data.periods_per_year,
        calendar=data.calendar,
        timezone=data.timezone,
        path_starts=data.path_starts,
    )


def rollout_observations(env: gym.Env, actions: Iterable[Any]) -> dict[int, dict[str, np.ndarray]]:
    """Observations by data row ``info["t"]`` over one episode driven by ``actions``; with the env's
    ``action_masks()`` under the extra key ``"action_masks"`` when it has them (masks are decisions' inputs too)."""
    masks = getattr(env.unwrapped, "action_masks", None)

    def record(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return obs if masks is None else {**obs, "action_masks": masks()}

    obs, info = env.reset(seed=0)
    seen = {info["t"]: record(obs)}
    for action in actions:
        obs, _, terminated, truncated, info = env.step(action)
        seen[info["t"]] = record(obs)
        if terminated or truncated:
            break
    return seen


def assert_no_look_ahead(
    make_env: Callable[[MarketData], gym.Env],
    data: MarketData,
    actions: Iterable[Any],
    cut_points: Iterable[int],
    seed: int = 0,
) -> None:
    """For each ``t`` in ``cut_points``, perturbing all data after ``t`` leaves every observation up to ``t``
    bit-identical, and changes some later market observation (so the test could fail)."""
    actions = list(actions)
    rng = np.random.default_rng(seed)
    base = rollout_observations(make_env(data), actions)
    for t in cut_points:
        changed = rollout_observations(make_env(perturb_future(data, t, rng)), actions)
        for s, obs in base.items():
            if s <= t:
                for key, value in obs.items():  # market, portfolio and any action masks
                    np.testing.assert_array_equal(changed[s][key], value, err_msg=f"{key} at {s} (cut {t})")
        later = [s for s in base if s > t and s in changed]
        assert any(not np.array_equal(changed[s][MARKET_KEY], base[s][MARKET_KEY]) for s in later), f"cut {t}"
