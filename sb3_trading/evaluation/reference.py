"""Reference policies of the synthetic markets and the agent's **skill ratio**.

What can be learnt on a market is measured by the simple rule that exploits what the market is known
to hold: on :func:`~sb3_trading.data.synthetic.make_regime_market` (MultiAsset-v0, MarketImpact-v0)
and :func:`~sb3_trading.data.synthetic.make_leveraged_pair_market` (LeveragedPair-v0,
MaskedTrading-v0) that is the **signal follower**, which holds the side ``sign(signal_t)`` of the
causal ``signal[<asset>]`` feature (expected per-bar log return ``drift * (2 Phi(1 / signal_noise) - 1)``
per unit held, see :func:`~sb3_trading.data.synthetic.regime_expected_returns`); on
:func:`~sb3_trading.data.yield_market.make_yield_market` (YieldAllocation-v0) it is the follower of the
quoted yields, :class:`YieldFollower`, the best rule consistent with the env's reward (see
:class:`PegRecoveryFollower` for the rule that earns more by holding what that reward penalises).

The **skill ratio** of an agent is ``Sharpe(agent) / Sharpe(signal follower)`` on the same held-out
bars: about 1 when the agent learnt what the signal offers, above 1 when it learnt more, near 0 (or
below) when it learnt nothing. :func:`skill_ratio` gives it with a *paired* stationary block-bootstrap
interval (both return series resampled with the same indices, so their common market moves stay
matched); :func:`skill_report` is the one call a report needs.

Reference policies
------------------
Each policy is built from the single env it runs on (:func:`reference_policies`), has SB3's
``predict(observation, state, episode_start, deterministic)`` signature (so
:func:`~sb3_trading.evaluation.backtest.backtest` runs it like a model), and reads only data known at
the env's current decision bar ``t`` (the close of row ``t``): row ``t`` of the env's
``data.features`` and, where it needs the book, the observation (MaskedTrading-v0's ``portfolio``
weights) and the action mask. The current bar is the env's clock (``env.unwrapped._t``, the row the
next ``step`` decides at, as in every ``sb3_trading`` env). The policy for an env type is looked up
in :data:`REFERENCE_POLICIES` by ``type(env.unwrapped)`` (its most specific registered base class), so
evaluation imports the envs and never the reverse. A market without the columns a rule reads (user
data without ``signal[...]``) has no reference: :func:`reference_policies` returns ``{}``, never a
stand-in.

=====================  ======================================================================
env                    ``"signal_follower"`` (the skill ratio's denominator)
=====================  ======================================================================
MultiAsset-v0          ``a_i = sign(signal[asset_i]_t)`` (``0`` for an asset without a signal column)
LeveragedPair-v0       all bull (``a = 1``) when ``signal[index]_t > 0``, else all bear (``a = 0``;
                       ``a = -1`` with ``action_mode="net"``)
MaskedTrading-v0       the largest legal buy of the side ``sign(signal[index]_t)`` says (a buy of
                       one side sells the other with ``switch_sides``); flatten when the book holds
                       the wrong side and no buy of the right one is legal; else hold. Legal
                       actions only.
SingleAsset-v0         the largest legal trade towards ``sign(signal[asset]_t)`` (long only: flatten
                       on a negative signal); flatten when the book holds the wrong side and no trade
                       of the right one is legal; else hold. Legal actions only.
MarketImpact-v0        long-only: equal weight over the assets whose smoothed ``signal[asset_i]``
                       says long (5-bar average, dead band), cash when there are none: the raw
                       follower trades too often for the price impact (:class:`MarketImpactSignalFollower`)
YieldAllocation-v0     :class:`YieldFollower`: the most weight on the highest APY among the assets not
                       flagged de-pegged; also ``"peg_recovery"`` (:class:`PegRecoveryFollower`,
                       overweight the flagged assets: the flag predicts the recovery)
=====================  ======================================================================
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import signal_column
from sb3_trading.data.yield_market import apy_column, depeg_column
from sb3_trading.envs.leveraged_pair import LeveragedPairEnv
from sb3_trading.envs.market_impact import MarketImpactEnv
from sb3_trading.envs.mask_rules import HOLD
from sb3_trading.envs.masked_trading import MaskedTradingEnv
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.envs.single_asset import SingleAssetEnv
from sb3_trading.envs.trading_env import MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.yield_allocation import YieldAllocationEnv
from sb3_trading.evaluation.backtest import BacktestResult, backtest, data_calendar
from sb3_trading.evaluation.bootstrap import default_mean_block, sharpe_statistic, stationary_bootstrap_indices
from sb3_trading.utils import jsonable

logger = logging.getLogger(__name__)

#: name of the reference policy the skill ratio divides by
SIGNAL_FOLLOWER = "signal_follower"
#: the skill ratio's definition, as reports state it
SKILL_RATIO_FORMULA = "skill ratio = agent Sharpe / signal follower Sharpe"
__all__ = [
    "REFERENCE_POLICIES",
    "SIGNAL_FOLLOWER",
    "SKILL_RATIO_FORMULA",
    "LeveragedPairSignalFollower",
    "MarketImpactSignalFollower",
    "MaskedTradingSignalFollower",
    "MultiAssetSignalFollower",
    "PegRecoveryFollower",
    "ReferencePolicy",
    "SingleAssetSignalFollower",
    "SkillRatio",
    "YieldFollower",
    "format_skill_ratio",
    "reference_baselines",
    "reference_policies",
    "skill_ratio",
    "skill_report",
]


def _feature_index(data: MarketData, name: str) -> int | None:
    """Column of ``data.features`` named ``name``, or ``None`` (no such column)."""
    return list(data.feature_names).index(name) if name in data.feature_names else None


def _feature_columns(data: MarketData, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(present, index)``, both ``(len(names),)``: whether each named feature column exists, and its column
    (0 where absent, masked by ``present``)."""
    columns = [_feature_index(data, name) for name in names]
    return np.array([c is not None for c in columns]), np.array([0 if c is None else c for c in columns])


# ----------------------------------------------------------------------------- policies
class ReferencePolicy:
    """Base of the reference policies: a rule of the env's data at its current bar, with SB3's ``predict``.

    Subclasses implement :meth:`act`. The rule reads row ``t`` of ``env.unwrapped.data.features`` (and the
    observation or mask where it needs the book), never a later row.

    :param env: the single env the policy runs on (any wrapper; its ``unwrapped`` env is read).
    """

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped
        self.data: MarketData = self.env.data
        self.action_space = env.action_space

    @property
    def t(self) -> int:
        """The env's current decision bar (the data row whose close the next ``step`` trades at)."""
        return int(self.env._t)

    def _features_at(self, t: int) -> np.ndarray:
        """``(F,)`` row ``t`` of the env's ``data.features`` (known at the close of ``t``)."""
        return self.data.features[t]

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        """The action at bar ``t``.

        :param observation: the env's observation at ``t``.
        :param t: the current decision bar.
        :param action_masks: the legal actions on masked envs, else ``None``.
        """
        raise NotImplementedError

    def start_episode(self) -> None:
        """Called by :meth:`predict` when a new episode starts: reset any state the rule keeps (default: none)."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        """SB3's ``predict``: ``(action, state)``; the rule is deterministic, ``state`` is passed through."""
        if episode_start is not None and bool(np.asarray(episode_start).reshape(-1)[0]):
            self.start_episode()
        return self.act(observation, self.t, action_masks), state


def _signal_columns(data: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_feature_columns` of every asset's ``signal[<asset>]``."""
    return _feature_columns(data, [signal_column(asset) for asset in data.asset_names])


class MultiAssetSignalFollower(ReferencePolicy):
    """MultiAsset-v0: ``a_i = sign(signal[asset_i]_t)``, ``0`` for an asset without a signal column.

    Holds ``E_t / N`` long where the signal is positive and short where it is negative: per asset the
    ``sign(s_t)`` holder of :func:`~sb3_trading.data.synthetic.make_regime_market`.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._has, self._columns = _signal_columns(self.data)

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        signal = self._features_at(t)[self._columns]
        return np.where(self._has, np.sign(signal), 0.0).astype(np.float32)


class MarketImpactSignalFollower(ReferencePolicy):
    """MarketImpact-v0 (long only): equal weight over the assets whose *smoothed* signal says long, cash if none.

    The smoothed signal is the causal exponential average ``m_t = k s_t + (1 - k) m_{t-1}`` of
    ``signal[asset_i]`` (``k = 2 / (span + 1)``, started at row 0 of the env's data, so ``m_t`` depends on rows
    ``<= t`` only); asset ``i`` is held from the bar ``m_t > band`` until the bar ``m_t < -band`` (a dead band).
    Action ``a_i = 1`` for the held assets, else ``0``; the env's ``weight_mode="sum"`` makes that ``1 / #held``
    each (all zeros: all cash).

    Why not ``sign(s_t)`` as on MultiAsset-v0: the raw follower switches on about 29 % of bars, and here every
    switch moves the price against the trader (about 1 % for the whole default equity of 1e5 against a liquidity
    of 1e6 at ``impact_coef=0.1``), which costs more than the signal earns (its held-out Sharpe is negative on the
    default market). Averaging over ``span=5`` bars (regimes last ``1 / switch_prob = 20`` bars by default) with a
    band of ``0.3`` cuts the turnover about fivefold and keeps most of the edge: the best of the simple followers
    tried (raw, dead band only, averages of 3 to 10 bars).

    :param env: the env.
    :param span: span of the exponential average, bars.
    :param band: half-width of the dead band, in signal units.
    """

    def __init__(self, env: gym.Env, span: float = 5.0, band: float = 0.3) -> None:
        super().__init__(env)
        self._has, self._columns = _signal_columns(self.data)
        self.span, self.band = float(span), float(band)
        self._held: np.ndarray | None = None
        self._smoothed_t = -1
        self._smoothed = np.zeros(len(self._columns))

    def _smooth_to(self, t: int) -> np.ndarray:
        """``m_t`` per asset, the exponential average of rows ``0..t`` (advanced row by row, never past ``t``)."""
        k = 2.0 / (self.span + 1.0)
        if t < self._smoothed_t:  # a new episode started earlier: recompute from row 0
            self._smoothed_t = -1
        while self._smoothed_t < t:
            self._smoothed_t += 1
            row = self._features_at(self._smoothed_t)[self._columns]
            self._smoothed = row.astype(np.float64) if self._smoothed_t == 0 else k * row + (1.0 - k) * self._smoothed
        return self._smoothed

    def start_episode(self) -> None:
        self._held = None  # the dead band's state starts afresh with each episode

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        m = self._smooth_to(t)
        held = m > 0.0 if self._held is None else self._held
        held = np.where(m > self.band, True, np.where(m < -self.band, False, held)) & self._has
        self._held = held
        return held.astype(np.float32)


class LeveragedPairSignalFollower(ReferencePolicy):
    """LeveragedPair-v0: all bull (``a = 1``) when ``signal[index]_t > 0``, else all bear: ``a = 0`` (the bull
    fraction of ``action_mode="split"``) or ``a = -1`` (the signed position of ``"net"``): the same book either way."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._column = _feature_index(self.data, signal_column(self.env.index_asset))
        self._bear = -1.0 if self.env.action_mode == "net" else 0.0

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        return np.array([1.0 if self._features_at(t)[self._column] > 0 else self._bear], dtype=np.float32)


class _DiscreteSignalFollower(ReferencePolicy):
    """The signal followers of the discrete masked envs: the signal's side at ``t``, the legal actions and the book.

    :param env: the env; ``signal_asset`` names the asset whose ``signal[...]`` column is read.
    """

    def __init__(self, env: gym.Env, signal_asset: str) -> None:
        super().__init__(env)
        self._column = _feature_index(self.data, signal_column(signal_asset))
        sizes = self.env.sizes
        #: size indices, largest first
        self._by_size = sorted(range(len(sizes)), key=lambda i: -sizes[i])
        self._flatten = int(self.env.flatten_action)

    def _state(self, observation: Any, t: int, action_masks: np.ndarray | None) -> tuple[int, np.ndarray, np.ndarray]:
        """``(side, legal, portfolio)``: ``sign(signal_t)``, the legal actions (all without ``action_masks``) and the
        observation's ``portfolio`` vector."""
        signal = self._features_at(t)[self._column]
        side = 1 if signal > 0 else -1 if signal < 0 else 0
        legal = np.ones(self._flatten + 1, dtype=bool) if action_masks is None else np.asarray(action_masks, dtype=bool)
        if not isinstance(observation, Mapping) or PORTFOLIO_KEY not in observation:
            raise TypeError(
                f"the {type(self.env).__name__} reference reads the {PORTFOLIO_KEY!r} weights of the env's Dict "
                f"observation (keys {MARKET_KEY!r}, {PORTFOLIO_KEY!r}); got {type(observation).__name__}: run it on the "
                "env unflattened"
            )
        return side, legal, np.asarray(observation[PORTFOLIO_KEY]).reshape(-1)


class MaskedTradingSignalFollower(_DiscreteSignalFollower):
    """MaskedTrading-v0: hold the side ``sign(signal[index]_t)`` says, as large as the mask allows; legal actions only.

    At each bar, with the side ``X`` = bull if the signal is positive, bear if negative (none at exactly 0):

    1. the largest buy of ``X`` the mask allows (with ``switch_sides=True``, the env's default, buying ``X``
       first sells the other ETF, so a flip of the signal switches sides in one action; holding ``X``
       already, it tops the position up to the concentration limit);
    2. else, when the book holds the other ETF (its ``portfolio`` weight is ``> 0``) and flatten is legal:
       flatten;
    3. else hold (always legal).

    The book is read from the observation's ``portfolio`` weights ``[w_bull, w_bear, ...]``, so the env's
    ``Dict`` observation is needed (not a flattened one). Without ``action_masks`` (a caller that passes
    none) every buy is taken as legal and the env treats a masked one as hold.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env, env.unwrapped.index_asset)
        k = len(self.env.sizes)
        self._buys = {1: [1 + i for i in self._by_size], -1: [k + 1 + i for i in self._by_size]}
        self._switch = bool(self.env.switch_sides)

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        side, legal, weights = self._state(observation, t, action_masks)
        if side == 0:
            return np.array(HOLD)
        wrong_side_held = weights[1 if side > 0 else 0] > 0.0
        if not (wrong_side_held and not self._switch):
            for action in self._buys[side]:
                if legal[action]:
                    return np.array(action)
        if wrong_side_held and legal[self._flatten]:
            return np.array(self._flatten)
        return np.array(HOLD)


class SingleAssetSignalFollower(_DiscreteSignalFollower):
    """SingleAsset-v0: hold the side ``sign(signal[asset]_t)`` says, as large as the mask allows; legal actions only.

    With the position weight ``w`` from the observation's ``portfolio`` (``[V / E, ...]``): a positive signal
    takes the largest legal buy (which also covers a short), a negative one the largest legal sell when the env
    is long-short, else (long only) flatten while long; when nothing on the signal's side is legal and the book
    holds the other side, flatten; else hold. Without ``action_masks`` every trade is taken as legal (the env
    treats a masked one as hold).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env, env.unwrapped.asset)
        k = len(self.env.sizes)
        sells = [k + 1 + i for i in self._by_size] if self.env.long_short else []
        self._trades = {1: [1 + i for i in self._by_size], -1: sells}

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        side, legal, portfolio = self._state(observation, t, action_masks)
        if side == 0:
            return np.array(HOLD)
        for action in self._trades[side]:
            if legal[action]:
                return np.array(action)
        if float(portfolio[0]) * side < 0.0 and legal[self._flatten]:
            return np.array(self._flatten)
        return np.array(HOLD)


class _YieldRule(ReferencePolicy):
    """Reads ``apy[<asset>]_t`` and ``depeg[<asset>]_t`` (a missing flag column counts as never de-pegged).

    Subclasses give the weight action of bar ``t`` (:meth:`weight_action`, ``(K,)``); with the env's
    ``size_action`` the sizing entry ``1`` (fully invested, as the rules are) is appended.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        assets = list(self.data.asset_names)
        self._apy = np.array([_feature_index(self.data, apy_column(a)) for a in assets])
        self._has_flag, self._depeg = _feature_columns(self.data, [depeg_column(a) for a in assets])
        self._sized = bool(self.env.size_action)

    def _flags(self, row: np.ndarray) -> np.ndarray:
        return self._has_flag & (row[self._depeg] > 0.5)

    def weight_action(self, t: int) -> np.ndarray:
        """``(K,)`` float32 the softmax action of the rule's weights at bar ``t``."""
        raise NotImplementedError

    def act(self, observation: Any, t: int, action_masks: np.ndarray | None) -> np.ndarray:
        action = self.weight_action(t)
        return np.append(action, np.float32(1.0)) if self._sized else action


class PegRecoveryFollower(_YieldRule):
    """YieldAllocation-v0's ``"peg_recovery"`` reference: overweight the assets flagged de-pegged at ``t``, equal
    weight otherwise.

    Action ``a_i = 1`` for the assets with ``depeg[<asset>]_t = 1``, ``0`` for the others (all ``0``: equal
    weight), which the env's softmax and projection onto ``[lower_bound, upper_bound]`` turn into about ``0.47``
    on one flagged asset of four and ``0.18`` on each other one (defaults).

    Why it is reported: in :func:`~sb3_trading.data.yield_market.make_yield_market` the one
    predictable price move is the recovery of a de-peg: the gap to the peg closes geometrically, half every
    ``depeg_half_life`` bars, so a flagged asset's expected next-bar return is about ``(1 - 0.5 ** (1 / 10))``
    = 6.7 % of its gap (the shock itself is not predictable from data ``<= t``). The flag is this market's causal
    signal of the next bar's drift, as ``signal[...]`` is in the regime market, and holding what it says rises is
    its follower. Yields differ little across assets (same mean APY) and chasing the best one rebalances on APY
    noise; selling flagged assets locks in the shock and misses the recovery. On the default market's held-out
    tails (seeds 0-4) this rule had the best Sharpe of the simple rules tried (about 2.3-4.8, against about
    1.4-4.4 for equal weight, 0.6-5.4 for :class:`YieldFollower`, below that for selling de-pegs or tilting to APY).

    But the env's reward charges ``depeg_penalty * w . depth`` for de-pegged exposure, so an agent trained on
    the default reward is steered away from this rule: a skill ratio against it would measure returns forgone
    for the penalty, not what was not learnt. The denominator is therefore :class:`YieldFollower`
    (``"signal_follower"``), the reward-consistent rule.
    """

    def weight_action(self, t: int) -> np.ndarray:
        return self._flags(self._features_at(t)).astype(np.float32)


class YieldFollower(_YieldRule):
    """YieldAllocation-v0: the most weight on the highest quoted APY among the assets not flagged de-pegged at ``t``.

    Action ``a_i = +1`` for the chosen asset and ``-1`` for the others (all ``-1`` when every asset is flagged),
    which the env's softmax and projection onto ``[lower_bound, upper_bound]`` turn into the largest weight on the
    chosen asset (``0.6`` with the defaults) and the rest spread over the others. It earns the best quoted yield
    ``apy[<asset>]_t`` (known at ``t``, paid over ``t -> t+1``) and keeps out of de-pegged assets, as the env's
    de-peg penalty asks: the rule an allocator would start from, and the one consistent with the reward.
    """

    def weight_action(self, t: int) -> np.ndarray:
        row = self._features_at(t)
        flagged = self._flags(row)
        action = np.full(self._apy.shape[0], -1.0, dtype=np.float32)
        if not flagged.all():
            apy = np.where(flagged, -np.inf, row[self._apy])
            action[int(np.argmax(apy))] = 1.0
        return action


def _has_signal(env: gym.Env, assets: list[str] | tuple[str, ...]) -> bool:
    return any(_feature_index(env.unwrapped.data, signal_column(asset)) is not None for asset in assets)


def _multi_asset(env: gym.Env) -> dict[str, ReferencePolicy]:
    base = env.unwrapped
    return {SIGNAL_FOLLOWER: MultiAssetSignalFollower(env)} if _has_signal(env, base.data.asset_names) else {}


def _market_impact(env: gym.Env) -> dict[str, ReferencePolicy]:
    base = env.unwrapped
    return {SIGNAL_FOLLOWER: MarketImpactSignalFollower(env)} if _has_signal(env, base.data.asset_names) else {}


def _leveraged_pair(env: gym.Env) -> dict[str, ReferencePolicy]:
    return {SIGNAL_FOLLOWER: LeveragedPairSignalFollower(env)} if _has_signal(env, [env.unwrapped.index_asset]) else {}


def _masked_trading(env: gym.Env) -> dict[str, ReferencePolicy]:
    return {SIGNAL_FOLLOWER: MaskedTradingSignalFollower(env)} if _has_signal(env, [env.unwrapped.index_asset]) else {}


def _single_asset(env: gym.Env) -> dict[str, ReferencePolicy]:
    return {SIGNAL_FOLLOWER: SingleAssetSignalFollower(env)} if _has_signal(env, [env.unwrapped.asset]) else {}


def _yield_allocation(env: gym.Env) -> dict[str, ReferencePolicy]:
    data = env.unwrapped.data
    if any(_feature_index(data, apy_column(a)) is None for a in data.asset_names):
        return {}
    # the APY is the signal the env's default objective rewards (its reward charges depeg_penalty for holding
    # de-pegged assets), so the yield follower is the skill denominator; the peg-recovery rule, which earns more
    # by holding exactly what that penalty punishes, is reported beside it
    policies: dict[str, ReferencePolicy] = {SIGNAL_FOLLOWER: YieldFollower(env)}
    if any(_feature_index(data, depeg_column(a)) is not None for a in data.asset_names):
        policies["peg_recovery"] = PegRecoveryFollower(env)
    return policies


#: env class -> builder of its reference policies ``{name: policy}`` (``{}`` when the data lacks what they read)
REFERENCE_POLICIES: dict[type, Callable[[gym.Env], dict[str, ReferencePolicy]]] = {
    MultiAssetEnv: _multi_asset,
    LeveragedPairEnv: _leveraged_pair,
    MaskedTradingEnv: _masked_trading,
    SingleAssetEnv: _single_asset,
    MarketImpactEnv: _market_impact,
    YieldAllocationEnv: _yield_allocation,
}


def reference_policies(env: gym.Env) -> dict[str, ReferencePolicy]:
    """The reference policies of ``env``'s type on its data: ``{name: policy}``.

    ``"signal_follower"`` is the skill ratio's denominator (see the module table). An env type without a
    registered reference (:data:`REFERENCE_POLICIES`, looked up along ``type(env.unwrapped).__mro__``), or data
    without the columns the rule reads (no ``signal[...]`` / ``apy[...]`` features), gives ``{}``.

    :param env: a single env (any wrapper) the policies will run on.
    """
    if isinstance(env, gym.vector.VectorEnv) or hasattr(env, "num_envs"):
        raise TypeError("reference_policies needs a single env (e.g. gymnasium.make(...)), not a vectorised env")
    for cls in type(env.unwrapped).__mro__:
        builder = REFERENCE_POLICIES.get(cls)
        if builder is not None:
            return builder(env)
    return {}


def reference_baselines(
    env: gym.Env, risk_free: float = 0.0, periods_per_year: float | None = None, consecutive: bool = False
) -> dict[str, BacktestResult]:
    """Backtest every reference policy of ``env`` on it (deterministic; ``backtest`` resets the env).

    :param env: the single env the agent was backtested on (same data, start bar and costs).
    :param risk_free: **annual** risk-free rate (fraction) of the Sharpe and Sortino, as :func:`backtest`.
    :param periods_per_year: bars per year of the metrics (``None``: the env's data's calendar).
    :param consecutive: chain episodes to the end of the data, as :func:`~sb3_trading.evaluation.backtest`.
    :return: ``{name: result}``, each result named by its key; ``{}`` when the env has no reference.
    """
    return {
        name: backtest(
            policy,
            env,
            deterministic=True,
            name=name,
            periods_per_year=periods_per_year,
            risk_free=risk_free,
            consecutive=consecutive,
        )
        for name, policy in reference_policies(env).items()
    }


# ----------------------------------------------------------------------------- skill ratio
@dataclass(frozen=True)
class SkillRatio:
    """``Sharpe(agent) / Sharpe(reference)`` on the same bars, with a paired block-bootstrap interval.

    :ivar estimate: the ratio on the original series; ``nan`` when undefined (see ``reason``).
    :ivar low: lower bound, the ``alpha / 2`` quantile of the resampled ratios (``nan`` without an interval).
    :ivar high: upper bound, the ``1 - alpha / 2`` quantile.
    :ivar alpha: ``1 -`` the confidence level (``0.1`` = 90 % interval).
    :ivar n_boot: bootstrap resamples drawn (``0``: no interval).
    :ivar mean_block: mean block length of the stationary bootstrap, bars.
    :ivar agent_sharpe: annualised Sharpe of the agent's returns.
    :ivar reference_sharpe: annualised Sharpe of the reference's returns.
    :ivar n_valid: resamples whose reference Sharpe is ``> 0`` (the interval is over these).
    :ivar reason: why the ratio or its interval is undefined, else ``None``: the ratio needs a reference
        Sharpe ``> 0`` (a reference that earns nothing is no yardstick), the interval at least 2 valid resamples.
    """

    estimate: float
    low: float
    high: float
    alpha: float
    n_boot: int
    mean_block: float
    agent_sharpe: float
    reference_sharpe: float
    n_valid: int = 0
    reason: str | None = None

    @property
    def defined(self) -> bool:
        """The ratio is a number (the reference Sharpe is ``> 0``)."""
        return math.isfinite(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (:func:`sb3_trading.utils.jsonable`): plain floats and ints, ``None`` for ``nan`` (undefined
        values), and ``reason``."""
        return jsonable(asdict(self))


def _check_same_bars(agent: BacktestResult, reference: BacktestResult) -> None:
    if agent.t.shape != reference.t.shape or not np.array_equal(agent.t, reference.t):
        raise ValueError(
            f"the agent {agent.name!r} and the reference {reference.name!r} cover different bars: agent rows "
            f"{int(agent.t[0])}..{int(agent.t[-1])} ({agent.n_steps} steps), reference rows {int(reference.t[0])}.."
            f"{int(reference.t[-1])} ({reference.n_steps} steps); backtest both on the same env and data "
            "(an episode that ended early, e.g. at a stop-loss, covers fewer bars)"
        )
    if float(agent.periods_per_year) != float(reference.periods_per_year):
        raise ValueError(
            f"the agent and the reference are annualised differently: periods_per_year {agent.periods_per_year} vs "
            f"{reference.periods_per_year}"
        )


def skill_ratio(
    agent: BacktestResult,
    reference: BacktestResult,
    n_boot: int = 1000,
    alpha: float = 0.1,
    mean_block: float | None = None,
    seed: int | np.random.Generator | None = 0,
    risk_free: float = 0.0,
) -> SkillRatio:
    """``Sharpe(agent) / Sharpe(reference)`` on the same bars, with a paired stationary block-bootstrap interval.

    Both Sharpe ratios are annualised with the results' ``periods_per_year`` over the excess of the annual
    ``risk_free`` rate (:func:`~sb3_trading.evaluation.bootstrap.sharpe_statistic`). The interval resamples both
    return series with the *same* indices (:func:`~sb3_trading.evaluation.bootstrap.stationary_bootstrap_indices`),
    so the dependence between them is kept, and is the percentile interval ``[q_{alpha/2}, q_{1-alpha/2}]`` of the
    ratio over the resamples whose reference Sharpe is ``> 0``.

    When the reference Sharpe is ``<= 0`` the ratio is undefined: the result has ``estimate = low = high = nan`` and
    a ``reason``, never a number.

    :param agent: the agent's backtest.
    :param reference: the reference's backtest on the same bars (e.g. :func:`reference_baselines`' ``"signal_follower"``).
    :param n_boot: bootstrap resamples (``0``: the estimate only).
    :param alpha: ``1 -`` confidence level, in ``(0, 1)``.
    :param mean_block: mean block length in bars (default ``n ** (1/3)``).
    :param seed: seed or ``Generator`` of the resamples.
    :param risk_free: **annual** risk-free rate (fraction) of both Sharpe ratios.
    :raises ValueError: the results cover different bars (their ``t`` differ) or calendars, fewer than 2 returns,
        or bad ``n_boot`` / ``alpha``.
    """
    _check_same_bars(agent, reference)
    n = agent.n_steps
    if n < 2:
        raise ValueError(f"the skill ratio needs at least 2 returns, got {n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    block = default_mean_block(n) if mean_block is None else float(mean_block)
    sharpe = sharpe_statistic(agent.periods_per_year, risk_free)
    returns = np.stack([np.asarray(agent.returns, dtype=np.float64), np.asarray(reference.returns, dtype=np.float64)])
    agent_sharpe, reference_sharpe = (float(x) for x in sharpe(returns))
    common = {"alpha": float(alpha), "n_boot": int(n_boot), "mean_block": block}
    common.update(agent_sharpe=agent_sharpe, reference_sharpe=reference_sharpe)
    if not reference_sharpe > 0.0:
        reason = (
            f"the reference {reference.name!r} has Sharpe {reference_sharpe:.3g} <= 0 on these bars: the skill ratio "
            "(agent Sharpe / reference Sharpe) is only defined against a reference that earns a positive Sharpe"
        )
        return SkillRatio(math.nan, math.nan, math.nan, reason=reason, **common)
    estimate = agent_sharpe / reference_sharpe
    if n_boot == 0:
        return SkillRatio(estimate, math.nan, math.nan, **common)
    indices = stationary_bootstrap_indices(n, n_boot, block, seed)  # (n_boot, n), shared by both series
    boot_agent, boot_reference = sharpe(returns[0][indices]), sharpe(returns[1][indices])
    valid = (boot_reference > 0.0) & np.isfinite(boot_agent)
    n_valid = int(valid.sum())
    if n_valid < 2:
        reason = f"only {n_valid} of {n_boot} resamples have a reference Sharpe > 0: no interval"
        return SkillRatio(estimate, math.nan, math.nan, n_valid=n_valid, reason=reason, **common)
    low, high = np.quantile(boot_agent[valid] / boot_reference[valid], [alpha / 2.0, 1.0 - alpha / 2.0])
    return SkillRatio(estimate, float(low), float(high), n_valid=n_valid, **common)


def skill_report(
    env: gym.Env,
    agent: BacktestResult,
    risk_free: float = 0.0,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.1,
    consecutive: bool = False,
) -> tuple[dict[str, BacktestResult], dict[str, Any] | None]:
    """The reference backtests of ``env`` and the agent's skill ratio, for a report (one call).

    Runs :func:`reference_baselines` on ``env`` (on the agent's calendar) and :func:`skill_ratio` of ``agent``
    against the ``"signal_follower"``. When the two paths cover different bars (an episode that stopped early
    at a stop-loss or drawdown limit), the ratio is undefined and the dict says so in ``reason``.

    :param env: the single env ``agent`` was backtested on (it is reset).
    :param agent: the agent's backtest on ``env``.
    :param risk_free: **annual** risk-free rate (fraction).
    :param n_boot: bootstrap resamples of the interval (``0``: none).
    :param seed: bootstrap seed.
    :param alpha: ``1 -`` confidence level.
    :param consecutive: the references chain episodes to the end of the data (pass what the agent's
        :func:`~sb3_trading.evaluation.backtest` used, so both cover the same bars).
    :return: ``(references, skill)``: ``{name: result}`` and ``{"reference": "signal_follower",
        **SkillRatio.to_dict()}``, or ``({}, None)`` when the env has no reference.
    """
    data = env.unwrapped.data
    ppy = None if float(agent.periods_per_year) == data_calendar(data)[0] else agent.periods_per_year
    references = reference_baselines(env, risk_free=risk_free, periods_per_year=ppy, consecutive=consecutive)
    reference = references.get(SIGNAL_FOLLOWER)
    if reference is None:
        return references, None
    try:
        ratio = skill_ratio(agent, reference, n_boot=n_boot, alpha=alpha, seed=seed, risk_free=risk_free)
    except ValueError as exc:
        logger.warning("no skill ratio: %s", exc)
        nan = math.nan
        sharpes = (agent.metrics.get("sharpe", nan), reference.metrics.get("sharpe", nan))
        block = default_mean_block(max(agent.n_steps, 1))
        ratio = SkillRatio(nan, nan, nan, alpha, n_boot, block, *sharpes, reason=str(exc))
    return references, {"reference": SIGNAL_FOLLOWER, **ratio.to_dict()}


def format_skill_ratio(skill: Mapping[str, Any]) -> str:
    """One line for a report: ``skill ratio 0.85 [0.61, 1.10] = agent Sharpe / signal follower Sharpe, 90%
    block-bootstrap CI``, or ``skill ratio undefined (<reason>)``.

    :param skill: :func:`skill_report`'s dict (or :meth:`SkillRatio.to_dict`).
    """
    reference = str(skill.get("reference", SIGNAL_FOLLOWER)).replace("_", " ")
    estimate = skill.get("estimate")
    if estimate is None or (isinstance(estimate, float) and not math.isfinite(estimate)):
        return f"skill ratio undefined ({skill.get('reason') or 'no reference Sharpe'})"
    text = f"skill ratio {estimate:.2f}"
    low, high = skill.get("low"), skill.get("high")
    finite = all(v is not None and math.isfinite(v) for v in (low, high))
    text += f" [{low:.2f}, {high:.2f}]" if finite else ""
    text += f" = agent Sharpe / {reference} Sharpe"
    if finite:
        text += f", {1.0 - float(skill.get('alpha', 0.1)):.0%} block-bootstrap CI"
    elif skill.get("reason"):
        text += f" ({skill['reason']})"
    else:
        text += " (no bootstrap CI)"
    return text
