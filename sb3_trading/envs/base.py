"""What every ``sb3_trading`` environment shares: observation layout, episodes, ``info``.

Observation layout (the contract feature extractors read)
---------------------------------------------------------
Every env returns a ``gymnasium.spaces.Dict`` observation with two keys:

=================  ==================  ===========================================
key                shape               content
=================  ==================  ===========================================
``"market"``       ``(window, F)``     rows ``t - window + 1 .. t`` of the env's
                                       causal feature matrix (oldest first),
                                       normalised, ``float32``
``"portfolio"``    ``(P,)``            the agent's own state at ``t``, ``float32``
                                       (env-specific; MultiAsset: position value
                                       weights ``(N,)`` then cash weight ``(1,)``)
=================  ==================  ===========================================

SB3's ``MultiInputPolicy`` takes it as is; ``gymnasium.wrappers.FlattenObservation``
gives the flat vector ``[market.ravel(), portfolio]`` (keys sort alphabetically).

Standard ``info`` keys (every step and every reset)
---------------------------------------------------
``equity``, ``cash``, ``positions`` ``(N,)`` share counts, ``weights`` ``(N,)``,
``portfolio_return`` (simple return of the step, net of costs), ``log_return``,
``turnover`` (traded notional / equity before the trade), ``costs`` (currency),
``drawdown`` (``1 - equity / peak``), ``t`` (row index into the data) and
``timestamp`` (``numpy.datetime64``, when the data has timestamps).

Episodes
--------
An episode starts at a bar drawn by :func:`sample_start` (``first_t``, or uniform with ``random_start``) or at
the bar ``reset(options={"start": t})`` names, and ends at its path's last bar or after ``episode_length``
decisions (envs with their own horizon, stop or ruin end it earlier). The backtester chains episodes with the
``start`` option to cover a whole slice (:func:`sb3_trading.evaluation.backtest`, ``consecutive=True``).

Where each piece lives
----------------------
* :mod:`sb3_trading.envs.trading_env`: :class:`TradingEnv`, the env base (data, features, normaliser,
  episode bounds, action checks), the observation keys and :func:`sample_start`;
* :mod:`sb3_trading.envs.info`: the standard ``info`` keys and their one builder, :func:`standard_info`;
* :mod:`sb3_trading.envs.kernel`: the batched dynamics :class:`TradingKernel`, its :class:`Transition` and
  the adapter :class:`KernelTradingEnv` (the Gymnasium env as the kernel's batch of one).

This module re-exports all of them, so ``from sb3_trading.envs.base import X`` keeps working.

Batched dynamics (one kernel, any batch size)
---------------------------------------------
The envs built on :class:`KernelTradingEnv` keep their dynamics in a :class:`TradingKernel`:
batched NumPy state (one :class:`~sb3_trading.sim.Portfolio` row, clock and counters per account)
and batched ``reset``/``step``/``observe``. The Gymnasium env is the kernel's batch of one;
:class:`sb3_trading.vec.BatchedVecEnv` runs the *same* kernel with ``n_envs`` rows, so the two
cannot drift apart (and the env tests, no-look-ahead included, cover the vectorised env too).
Randomness stays per account: :meth:`TradingKernel.draw` takes one ``numpy.random.Generator`` per
reset row (the env's ``np_random``, or the vectorised env's per-env generators) and draws from
each in the same order.
"""

from sb3_trading.envs.info import (
    INFO_KEYS,
    LOG_MIN_GROWTH,
    MIN_GROWTH,
    TIMESTAMP_KEY,
    log_returns,
    standard_info,
    standard_infos,
    summary_line,
)
from sb3_trading.envs.kernel import NO_EXTRAS, KernelTradingEnv, TradingKernel, Transition, clip_bound
from sb3_trading.envs.trading_env import (
    EXECUTIONS,
    MARKET_KEY,
    MAX_INITIAL_CASH,
    PORTFOLIO_BOUND,
    PORTFOLIO_KEY,
    RESET_NEEDED_MESSAGE,
    TradingEnv,
    check_initial_cash,
    clip_portfolio,
    sample_start,
)
from sb3_trading.features import DEFAULT_NORMALIZER, FeatureFits, NormalizerArg

__all__ = [
    "DEFAULT_NORMALIZER",
    "EXECUTIONS",
    "INFO_KEYS",
    "LOG_MIN_GROWTH",
    "MARKET_KEY",
    "MAX_INITIAL_CASH",
    "MIN_GROWTH",
    "NO_EXTRAS",
    "PORTFOLIO_BOUND",
    "PORTFOLIO_KEY",
    "RESET_NEEDED_MESSAGE",
    "TIMESTAMP_KEY",
    "FeatureFits",
    "KernelTradingEnv",
    "NormalizerArg",
    "TradingEnv",
    "TradingKernel",
    "Transition",
    "check_initial_cash",
    "clip_bound",
    "clip_portfolio",
    "log_returns",
    "sample_start",
    "standard_info",
    "standard_infos",
    "summary_line",
]
