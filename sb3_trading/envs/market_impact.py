"""``sb3_trading/MarketImpact-v0``: a learning trader in a market shared with heuristic traders and price impact."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.validation import check_choice, check_int, check_real
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_regime_market
from sb3_trading.envs.base import DEFAULT_NORMALIZER, MARKET_KEY, PORTFOLIO_BOUND, PORTFOLIO_KEY, NormalizerArg, TradingEnv
from sb3_trading.sim import CostModel
from sb3_trading.sim.impact import (
    TRADER_KINDS,
    WEIGHT_MODES,
    HeuristicTrader,
    ImpactMarket,
    MarketStep,
    normalize_weights,
    shaped_rewards,
)

#: assets of the synthetic market built when no data is given
DEFAULT_N_ASSETS = 3
# 0-d float32 clip bounds of the portfolio observation: cheaper operands than Python floats
_BOUND32 = np.full((), PORTFOLIO_BOUND, dtype=np.float32)
_MINUS_BOUND32 = -_BOUND32


class MarketImpactEnv(TradingEnv):
    """A learning trader shares a market with heuristic traders; netted order flow moves the price.

    ## Description
    At each bar ``t`` the learner and every heuristic trader (momentum, mean reversion, market maker;
    configurable with ``traders``) submit long-only target weights over the ``N`` assets, applied to
    their own equity at the market price ``P_t``. The env nets everyone's traded notional per asset,
    ``net_i = sum_agents (target_i - held_i) * P_t,i``, and fills every order at the execution price
    ``X_t = P_t * clip(1 + impact_coef * net / (liquidity + 1), lo, hi)`` (``impact_bounds = (lo, hi)``;
    ``impact_coef=0`` switches impact off), plus ``commission_bps``/``slippage_bps`` of traded notional.
    All agents are rows of one batched :class:`~sb3_trading.sim.Portfolio`.

    The impact is carried into the price process: the market price is the data's close times the
    accumulated impact, ``P_t = D_t * M_t``, with ``M_{t+1} = (M_t * I_t)^(1 - impact_decay)`` and
    ``M = 1`` at the start of the episode. With the default ``impact_decay=0`` the impact is permanent
    (the execution price becomes the new reference price; the data supplies the exogenous return
    ``D_{t+1} / D_t``); with ``impact_decay=1`` it is temporary (a pure cost: fills at ``D_t * I``,
    marks at ``D_{t+1}``). Every book is marked at ``P_{t+1}``. The heuristics read market prices
    ``P_s``, ``s <= t`` only; the rules and all formulas are in :mod:`sb3_trading.sim.impact`.

    ## Action Space
    ``Box(0, 1, (N,), float32)``: raw scores, renormalised to weights of equity. With
    ``weight_mode="sum"`` (default) ``w = a / sum(a)`` (fully invested), and the all-zero action means
    all cash; with ``weight_mode="cap"`` ``w = a / max(sum(a), 1)`` (``1 - sum(w)`` stays cash).
    Orders are sized at ``P_t`` and filled at ``X_t``, so buying into impact (or paying costs from an
    all-in target) can leave cash slightly negative (at most the impact and costs of that trade).
    Values outside ``[0, 1]`` are clipped; a wrong shape or a non-finite value raises ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  =================  =================================================
    key            shape              content
    =============  =================  =================================================
    ``market``     ``(window, F)``    normalised causal features of the data (``D``), rows ``t-window+1..t``
    ``portfolio``  ``(3 N + 1,)``     own position value / equity per asset (``N``), cash / equity (1),
                                      impact premium ``log(P_t / D_t)`` per asset (``N``), last step's
                                      log impact ``log I_{t-1}`` per asset (``N``); clipped to +-10
    =============  =================  =================================================

    ## Rewards
    With every agent's step P&L ``pnl_a = E_a,t+1 - E_a,t`` (currency) and ``v_a = pnl_a / initial_cash``,
    ``m = mean(v)`` and ``sigma = std(v)`` over all agents (``ddof=0``):
    ``reward = v_learner + cooperation / (1 + sigma) + competition * (v_learner - m) / sigma``
    (the last term is 0 when ``sigma <= 1e-12``). ``info["pnl"]`` is the learner's currency P&L and
    ``info["agent_pnl"]`` every agent's (learner first, then ``traders`` in order).

    ## Starting State
    Every agent all cash (``initial_cash`` each), no impact history, at a uniformly drawn bar
    (``random_start=True``, default) or the first bar whose window is past the indicators' warm-up.

    ## Episode End
    Terminated when the learner's equity falls to zero or below (ruin). Truncated after
    ``episode_length`` decisions (default 252) or at the last bar of the data.
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    :param data: the market; ``None`` builds ``make_regime_market(n_assets=3, seed=synthetic_seed)``.
    :param initial_cash: every agent's starting cash, account currency, in ``(0, 1e15]``.
    :param commission_bps: commission in bps of filled notional (every agent), in ``[0, 10000)``.
    :param slippage_bps: adverse fill price move in bps, on top of the impact, in ``[0, 10000)``.
    :param traders: the heuristic traders: kind names from :data:`~sb3_trading.sim.impact.TRADER_KINDS`
        or :class:`~sb3_trading.sim.impact.HeuristicTrader` specs (look-back, skew); may be empty.
    :param impact_coef: impact coefficient ``k >= 0``; 0 switches impact off.
    :param liquidity: liquidity per asset (currency), a number or ``N`` numbers, ``>= 0``.
    :param impact_bounds: ``(lo, hi)`` bounds of the impact factor, ``0 < lo <= 1 <= hi``.
    :param impact_decay: fraction of the log impact premium that decays each bar, in ``[0, 1]``.
    :param cooperation: weight ``c >= 0`` of the cooperation bonus ``c / (1 + sigma)``.
    :param competition: weight ``k >= 0`` of the competition term ``k (v - m) / sigma``.
    :param weight_mode: ``"sum"`` or ``"cap"`` (see Action Space).
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param indicators: indicator names (default :data:`sb3_trading.features.DEFAULT_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 100_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        traders: Sequence[str | HeuristicTrader] = TRADER_KINDS,
        impact_coef: float = 0.1,
        liquidity: float | Sequence[float] = 1_000_000.0,
        impact_bounds: tuple[float, float] = (0.95, 1.05),
        impact_decay: float = 0.0,
        cooperation: float = 0.05,
        competition: float = 0.1,
        weight_mode: str = "sum",
        window: int = 1,
        episode_length: int | None = 252,
        random_start: bool = True,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=episode_length,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            render_mode=render_mode,
        )
        check_choice("weight_mode", weight_mode, WEIGHT_MODES)
        # 0 switches the term off
        self.cooperation = check_real("cooperation", cooperation, 0.0)
        self.competition = check_real("competition", competition, 0.0)
        self.costs = CostModel(commission_bps, slippage_bps)
        self.n_assets = data.n_assets
        self.weight_mode = weight_mode
        self._market_kwargs: dict[str, Any] = {
            "traders": tuple(traders) if not isinstance(traders, (str, HeuristicTrader)) else traders,
            "initial_cash": self.initial_cash,
            "costs": self.costs,
            "impact_coef": impact_coef,
            "liquidity": liquidity,
            "impact_bounds": impact_bounds,
            "impact_decay": impact_decay,
        }
        self._build_market(1)

        self.action_space = spaces.Box(0.0, 1.0, shape=(self.n_assets,), dtype=np.float32)
        self.observation_space = self._observation_space(3 * self.n_assets + 1)

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_regime_market(n_assets=3, seed=seed)``: the market built when ``data`` is ``None``."""
        return make_regime_market(n_assets=DEFAULT_N_ASSETS, seed=seed)

    # ------------------------------------------------------------------ market
    def _build_market(self, n_learners: int) -> None:
        """(Re)build the shared market with ``n_learners`` learner rows (the PettingZoo view uses several)."""
        self.market = ImpactMarket(self.data.prices, n_learners=n_learners, **self._market_kwargs)
        self.n_learners = n_learners
        self.traders = self.market.heuristics.traders
        #: book row names: learners, then ``"<kind>_<i>"`` per heuristic trader
        self.agent_names = tuple(f"learner_{i}" for i in range(n_learners)) + self.market.heuristics.names

    @property
    def impact_coef(self) -> float:
        return self.market.impact_coef

    def _observations(
        self, weights: np.ndarray, cash: Sequence[float], equity: Sequence[float]
    ) -> list[dict[str, np.ndarray]]:
        """One observation per learner row from its ``(L, N)`` weights, cash and equity (``L`` each)."""
        n = self.n_assets
        # built in float32 and clipped there: the same values as clipping in float64 and casting, as +-10 is exact
        portfolio = np.empty((self.n_learners, 3 * n + 1), dtype=np.float32)
        portfolio[:, :n] = weights
        portfolio[:, n] = [c / e if e > 0.0 else c / math.inf for c, e in zip(cash, equity, strict=True)]  # 0 if ruined
        portfolio[:, n + 1 :] = self.market.impact_state
        np.minimum(np.maximum(portfolio, _MINUS_BOUND32, out=portfolio), _BOUND32, out=portfolio)
        market = self._market_window(self._t)
        if self.n_learners == 1:
            return [{MARKET_KEY: market, PORTFOLIO_KEY: portfolio[0]}]
        return [{MARKET_KEY: market.copy(), PORTFOLIO_KEY: row} for row in portfolio]

    def _reset_learners(
        self, options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
        """Start an episode (call after ``super().reset``; ``options`` of ``reset``); observations and infos per
        learner."""
        self._t = self._start_t = self._sample_start(options)
        self.market.reset(self._t)
        n, n_learners, n_agents = self.n_assets, self.n_learners, self.market.n_agents
        zeros = np.zeros((n_learners, n))
        cash = np.full(n_learners, self.initial_cash)
        shared = {
            "pnl": 0.0,
            "agent_pnl": np.zeros(n_agents),
            "agent_equity": np.full(n_agents, self.initial_cash),
            "impact": np.ones(n),
            "exec_prices": self.market.prices[self._t].copy(),
        }
        infos = []
        for _ in range(n_learners):
            info = self._info(self.initial_cash, self.initial_cash, np.zeros(n), np.zeros(n), 0.0, 0.0, 0.0, 0.0)
            info.update(shared)
            infos.append(info)
        self._last_info = infos[0]
        return self._observations(zeros, cash.tolist(), cash.tolist()), infos

    def _step_learners(
        self, weights: np.ndarray
    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray, list[bool], bool, list[dict[str, Any]]]:
        """Advance the market one bar with the learners' ``(L, N)`` weights.

        :return: observations and infos per learner, rewards ``(L,)``, ruin flags (``L`` bools), and whether
            the episode is over (``episode_length`` or the end of the data).
        """
        market = self.market
        step: MarketStep = market.step(weights)
        self._t = market.t
        rewards, _ = shaped_rewards(step.pnl, self.initial_cash, self.cooperation, self.competition)
        book, n_learners = market.book, self.n_learners
        equity = step.equity[:n_learners]
        cash = book.cash[:n_learners]
        positions = book.positions[:n_learners]
        weights_now = book.weights(step.prices, step.equity)[:n_learners]
        equity_list = equity.tolist()
        # the step's arrays are new every step and the market never writes into them: shared, not copied
        shared = {"agent_pnl": step.pnl, "agent_equity": step.equity, "impact": step.impact, "exec_prices": step.exec_prices}
        before, pnl, notional = step.equity_before.tolist(), step.pnl.tolist(), step.fills.notional.tolist()
        cash_list, costs, drawdown = cash.tolist(), step.fills.costs.tolist(), step.drawdown.tolist()
        infos = []
        for i in range(n_learners):
            # no return or turnover on a ruined book
            scale = 1.0 / before[i] if before[i] > 0.0 else 0.0
            info = self._info(
                equity_list[i],
                cash_list[i],
                positions[i].copy(),
                weights_now[i],
                pnl[i] * scale,
                notional[i] * scale,
                costs[i],
                drawdown[i],
            )
            info["pnl"] = pnl[i]
            info.update(shared)
            infos.append(info)
        self._last_info = infos[0]
        observations = self._observations(weights_now, cash_list, equity_list)
        ruined = [e <= 0.0 for e in equity_list]
        return observations, rewards[:n_learners], ruined, self._episode_over(), infos

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._needs_reset = False
        observations, infos = self._reset_learners(options)
        return observations[0], infos[0]

    def action_to_weights(self, action: Any) -> np.ndarray:
        """The ``(N,)`` target weights an action stands for (validated, clipped, renormalised)."""
        return normalize_weights(self._box_action(action)[None, :], self.weight_mode)[0]

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise self._reset_needed()
        weights = normalize_weights(self._box_action(action)[None, :], self.weight_mode)
        observations, rewards, ruined, over, infos = self._step_learners(weights)
        terminated = ruined[0]
        truncated = not terminated and over
        self._needs_reset = terminated or truncated
        return observations[0], rewards.item(0), terminated, truncated, infos[0]
