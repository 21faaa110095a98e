"""Per-episode trading metrics of the training envs, logged to SB3's logger (TensorBoard, CSV, stdout)."""

from __future__ import annotations

import logging
import warnings
from collections import deque
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_trading.common.validation import check_int
from sb3_trading.data.calendar import TRADING_DAYS, check_annual_rate, check_periods_per_year
from sb3_trading.evaluation import compute_metrics

logger = logging.getLogger(__name__)

#: the ``info`` keys the callback reads (standard keys of every sb3_trading env)
REQUIRED_INFO_KEYS = ("equity", "portfolio_return", "turnover", "costs")  # in this order in the step blocks
#: metric name -> logger key
METRIC_KEYS = {
    "episode_return": "trading/episode_return",
    "sharpe": "trading/sharpe",
    "max_drawdown": "trading/max_drawdown",
    "turnover": "trading/turnover",
    "cost_share": "trading/cost_share",
    "episode_length": "trading/episode_length",
}


class TradingMetricsCallback(BaseCallback):
    """Log trading metrics of each finished training episode, from the standard ``info`` keys.

    On every step the callback keeps, for each sub-env ``i`` of the training ``VecEnv``, the
    step's ``equity``, ``portfolio_return``, ``turnover`` and ``costs`` (from ``infos.arrays`` when the
    VecEnv offers them, as :class:`~sb3_trading.vec.BatchedVecEnv` does, else from ``infos[i]``); when
    ``dones[i]`` the episode's metrics are computed and the mean over the last
    ``stats_window_size`` finished episodes (like SB3's ``rollout/ep_rew_mean``) is recorded:

    ============================  ====================================================================
    key                           per episode of ``n`` steps with returns ``R_1..R_n``
    ============================  ====================================================================
    ``trading/episode_return``    ``prod(1 + R_t) - 1`` (= ``E_n / E_0 - 1``, a fraction)
    ``trading/sharpe``            ``mean(R - rf) / std(R - rf, ddof=1) * sqrt(P)`` (flat: 0 or ``±SHARPE_CAP``)
    ``trading/max_drawdown``      largest peak-to-trough loss of the episode's equity, a fraction
    ``trading/turnover``          mean per-step turnover (traded notional / equity)
    ``trading/cost_share``        ``sum(costs_t) / E_0``: frictions paid, as a fraction of the
                                  starting equity (the return the costs took away)
    ``trading/episode_length``    ``n``
    ============================  ====================================================================

    Sharpe and drawdown follow :func:`sb3_trading.evaluation.compute_metrics`. The starting equity
    is ``E_0 = E_1 / (1 + R_1)`` (the standard keys' identity ``R_t = E_t / E_{t-1} - 1``). It reads
    ``self.locals["infos"]``/``["dones"]`` of SB3's rollout loop, so it works with ``DummyVecEnv``,
    ``SubprocVecEnv``, ``Monitor``-wrapped envs and reward wrappers (which keep the keys), on-policy
    and off-policy algorithms. Usable from an rl-zoo3 yml: ``callback: - sb3_trading.callbacks.TradingMetricsCallback``.

    ``P`` is the training data's calendar, ``MarketData.periods_per_year`` of the training env's
    ``data`` (read when training starts), unless ``periods_per_year`` is given; ``rf`` is the per-bar
    rate ``(1 + risk_free) ** (1 / P) - 1`` of the annual ``risk_free``.

    :param periods_per_year: bars per year used to annualise the Sharpe ratio; ``None`` (default): the
        training env's ``data.periods_per_year`` (252, with a warning, for an env without ``data``).
    :param stats_window_size: number of recent episodes averaged in each logged value.
    :param verbose: 1 logs each finished episode at INFO level (``logging``), 0 is silent.
    :param risk_free: **annual** risk-free rate as a fraction (``0.04`` = 4 %/year), default 0.
    """

    def __init__(
        self,
        periods_per_year: float | None = None,
        stats_window_size: int = 100,
        verbose: int = 0,
        *,
        risk_free: float = 0.0,
    ) -> None:
        super().__init__(verbose=verbose)
        if periods_per_year is not None:
            periods_per_year = check_periods_per_year(periods_per_year)
        check_int("stats_window_size", stats_window_size, 1)
        #: bars per year of the Sharpe ratio (``None`` until training starts when read from the env)
        self.periods_per_year: float | None = periods_per_year
        #: the annual risk-free rate
        self.risk_free = check_annual_rate(risk_free)
        self.stats_window_size = stats_window_size
        #: metrics of the last ``stats_window_size`` finished episodes, oldest first
        self.episodes: deque[dict[str, float]] = deque(maxlen=stats_window_size)
        #: number of episodes finished since training started
        self.n_episodes = 0

    def _init_callback(self) -> None:
        n_envs = self.training_env.num_envs
        self._steps: list[np.ndarray] = []  # one (len(REQUIRED_INFO_KEYS), n_envs) block per step, oldest first
        self._first_step = 0  # the step index of self._steps[0]
        self._starts = np.zeros(n_envs, dtype=np.int64)  # the step index where each env's episode began
        self._n_steps = 0
        if self.periods_per_year is None:
            self.periods_per_year = env_periods_per_year(self.training_env)

    def _step_values(self, infos: Any) -> np.ndarray:
        """``(4, n_envs)``: the step's ``equity``, ``portfolio_return``, ``turnover``, ``costs`` of every env.

        Read from ``infos.arrays`` when the VecEnv offers its step as arrays (:class:`~sb3_trading.vec.BatchedVecEnv`),
        else from each ``infos[i]``.
        """
        arrays = getattr(infos, "arrays", None)
        if arrays is not None and all(key in arrays for key in REQUIRED_INFO_KEYS):
            return np.array([arrays[key] for key in REQUIRED_INFO_KEYS], dtype=np.float64)
        rows = []
        for i, info in enumerate(infos):
            missing = [key for key in REQUIRED_INFO_KEYS if key not in info]
            if missing:
                raise KeyError(
                    f"TradingMetricsCallback needs the standard sb3_trading info keys; env {i} of the training "
                    f"VecEnv does not report {missing}"
                )
            rows.append([info[key] for key in REQUIRED_INFO_KEYS])
        return np.array(rows, dtype=np.float64).T

    def _on_step(self) -> bool:
        dones = np.asarray(self.locals["dones"], dtype=bool).reshape(-1)
        self._steps.append(self._step_values(self.locals["infos"]))
        self._n_steps += 1
        finished = np.flatnonzero(dones)
        if finished.size:
            for i in finished.tolist():
                self._finish_episode(i)
            for name, key in METRIC_KEYS.items():
                self.logger.record(key, float(np.mean([episode[name] for episode in self.episodes])))
            self.logger.record("trading/n_episodes", self.n_episodes)
            # forget the steps no running episode needs
            drop = int(self._starts.min()) - self._first_step
            if drop > 0:
                del self._steps[:drop]
                self._first_step += drop
        return True

    def _finish_episode(self, i: int) -> None:
        first = int(self._starts[i]) - self._first_step
        block = np.array([step[:, i] for step in self._steps[first:]])  # (n, 4): this env's episode
        self._starts[i] = self._n_steps
        equity, returns, turnover, costs = block.T
        ppy = self.periods_per_year if self.periods_per_year is not None else env_periods_per_year(self.training_env)
        metrics = compute_metrics(returns, ppy, turnover=turnover, costs=costs, risk_free=self.risk_free)
        growth = 1.0 + returns[0]
        start_equity = equity[0] / growth if growth > 0 else float("nan")
        episode = {
            "episode_return": metrics["total_return"],
            "sharpe": metrics["sharpe"],
            "max_drawdown": metrics["max_drawdown"],
            "turnover": metrics["mean_turnover"],
            "cost_share": metrics["total_costs"] / start_equity if np.isfinite(start_equity) and start_equity > 0 else 0.0,
            "episode_length": float(returns.size),
        }
        self.episodes.append(episode)
        self.n_episodes += 1
        if self.verbose >= 1:
            logger.info("episode %d (env %d): %s", self.n_episodes, i, {k: round(v, 6) for k, v in episode.items()})


def env_periods_per_year(env: Any) -> float:
    """Bars per year of an env's data (``MarketData.periods_per_year``): a VecEnv's first env, or a gymnasium env.

    An env without ``data`` (not an ``sb3_trading`` env) gives 252 with a warning.
    """
    try:
        if hasattr(env, "get_attr"):  # SB3 VecEnv
            data = env.get_attr("data", indices=[0])[0]
        else:
            data = env.unwrapped.data
        return check_periods_per_year(data.periods_per_year, "data.periods_per_year")
    except (AttributeError, TypeError, ValueError) as exc:
        warnings.warn(
            f"cannot read the calendar of {type(env).__name__} ({exc}); annualising with {TRADING_DAYS} bars a year: "
            "pass periods_per_year=",
            UserWarning,
            stacklevel=2,
        )
        return float(TRADING_DAYS)
