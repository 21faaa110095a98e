"""``sb3_trading/MarketImpact-v0``: a learning trader in a market shared with heuristic traders and price impact.

The market's rules are the compiled functions of :mod:`sb3_trading.sim.impact`; this module adds the
observation (:func:`impact_portfolio_kernel`), the rewards and the ``info`` of the learners, batched over
``B`` independent markets by :class:`MarketImpactKernel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import njit
from sb3_trading.common.validation import check_choice, check_int, check_real
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_regime_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    MARKET_KEY,
    PORTFOLIO_KEY,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    TradingKernel,
    Transition,
    clip_portfolio,
    standard_info,
)
from sb3_trading.envs.kernel import ScalableExposure, dead_zone_action
from sb3_trading.sim.frictions import Brackets, CostModel, Financing, Margin, MarketRules, resolve_market_rules
from sb3_trading.sim.impact import (
    REWARD_BASES,
    REWARD_UNITS,
    TRADER_KINDS,
    WEIGHT_MODES,
    HeuristicTrader,
    ImpactMarket,
    MarketStep,
    normalize_row,
    shaped_rewards_batch,
    weight_floor,
)
from sb3_trading.sim.kernels import fractions_kernel

#: assets of the synthetic market built when no data is given
DEFAULT_N_ASSETS = 3
#: the ``info`` entries of one market's vectors, in ``info`` order after ``pnl``: every agent's P&L and equity
#: ``(A,)``, the impact factors and execution prices ``(N,)``
VECTOR_INFO_KEYS: tuple[str, ...] = ("agent_pnl", "agent_equity", "impact", "exec_prices")
_ROW0 = np.zeros(1, dtype=np.int64)
_ROW0.setflags(write=False)
#: the :data:`~sb3_trading.sim.frictions.RULE_FEATURES` MarketImpact-v0 models: fees per order (constant frictions)
#: and financing (interest on every book's cash, accrued after the fills). Its prices are simulated close to close by
#: the impact model, so there is no intrabar range for brackets; long-only books no larger than their equity plus
#: the costs of one trade never need margin
SUPPORTED_RULES: tuple[str, ...] = ("fixed_fee", "min_fee", "financing")


@njit
def learner_weights_kernel(scores: np.ndarray, floor: float, dead_zone: float) -> np.ndarray:
    """The learners' ``(k, N)`` scores in ``[0, 1]`` -> target weights ``(k, N)`` (a new array): each score past the
    dead zone (:func:`~sb3_trading.envs.kernel.dead_zone_action`: ``0`` for ``a <= dead_zone``, else
    ``(a - dead_zone) / (1 - dead_zone)``), then renormalised, ``a' / max(sum(a'), floor)``
    (:func:`~sb3_trading.sim.impact.normalize_row`; ``floor``: :func:`~sb3_trading.sim.impact.weight_floor`)."""
    out = np.empty(scores.shape)
    for b in range(scores.shape[0]):
        for i in range(scores.shape[1]):
            out[b, i] = dead_zone_action(scores[b, i], dead_zone)
        normalize_row(out[b], floor, out[b])
    return out


def check_impact_rules(rules: MarketRules, env_name: str = "MarketImpact-v0") -> None:
    """Refuse, by name, the market rules the market-impact market does not model (all but :data:`SUPPORTED_RULES`).

    :raises ValueError: for the data's spread (``half_spread_bps="data"``), ``impact_k``, ``participation``,
        ``lot_size``, ``margin`` or ``brackets``.
    """
    refused = [name for name in rules.features if name not in SUPPORTED_RULES]
    if refused:
        raise ValueError(
            f"{env_name} has its own impact model; {', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not "
            f"modelled (it takes commission, slippage, half_spread_bps in bps, {' and '.join(SUPPORTED_RULES)}; "
            "MultiAsset-v0 models every rule)"
        )


@njit
def impact_portfolio_kernel(
    holdings: np.ndarray,
    prices: np.ndarray,
    equity: np.ndarray,
    log_premium: np.ndarray,
    log_impact: np.ndarray,
    n_learners: int,
) -> np.ndarray:
    """The learners' books after a step of ``B`` markets of ``A`` agents, and their ``portfolio`` observation.

    :param holdings: ``(B A, N + 1)`` every agent's book, market-major (learners first in each market).
    :param prices: ``(B, N)`` market prices ``P_{t+1}`` the books are marked at.
    :param equity: ``(B, A)`` equity at ``prices``.
    :param log_premium: ``(B, N)`` ``log M_{t+1}``.
    :param log_impact: ``(B, N)`` the step's ``log I``.
    :param n_learners: ``L``, the learner rows of each market.
    :return: ``(B L, 4 N + 2)``, learner ``l`` of market ``b`` in row ``b L + l``: share counts (``N``), cash (1),
        then the unclipped ``portfolio`` block (``3 N + 1``): position values and cash as fractions of equity
        (:func:`~sb3_trading.sim.kernels.fractions_kernel`: 0 when ruined), ``log M`` and ``log I``. One array:
        every array a compiled function returns costs a boxing.
    """
    n_markets, n_assets = prices.shape
    n_agents = equity.shape[1]
    k = n_markets * n_learners
    values = np.empty((k, n_assets + 1))
    learner_equity = np.empty(k)
    out = np.empty((k, 4 * n_assets + 2))
    for b in range(n_markets):
        for learner in range(n_learners):
            r = b * n_learners + learner
            row = b * n_agents + learner
            for j in range(n_assets + 1):
                out[r, j] = holdings[row, j]
            for i in range(n_assets):
                values[r, i] = holdings[row, i] * prices[b, i]
            values[r, n_assets] = holdings[row, n_assets]
            learner_equity[r] = equity[b, learner]
    fractions = fractions_kernel(values, learner_equity)
    block = n_assets + 1  # first column of the observation block
    for r in range(k):
        b = r // n_learners
        for j in range(n_assets + 1):
            out[r, block + j] = fractions[r, j]
        for i in range(n_assets):
            out[r, block + n_assets + 1 + i] = log_premium[b, i]
            out[r, block + 2 * n_assets + 1 + i] = log_impact[b, i]
    return out


class MarketImpactEnv(ScalableExposure, KernelTradingEnv):
    """A learning trader shares a market with heuristic traders; netted order flow moves the price.

    ## Description
    At each bar ``t`` the learner and every heuristic trader (momentum, mean reversion, market maker;
    configurable with ``traders``) submit long-only target weights over the ``N`` assets, applied to
    their own equity at the market price ``P_t``. The env nets everyone's traded notional per asset,
    ``net_i = sum_agents (target_i - held_i) * P_t,i``, and fills every order at the execution price
    ``X_t = P_t * clip(1 + impact_coef * net / (liquidity + 1), lo, hi)`` (``impact_bounds = (lo, hi)``;
    ``impact_coef=0`` switches impact off), plus the frictions of ``costs`` (default: 10 bps commission).
    All agents are rows of one batched :class:`~sb3_trading.sim.Portfolio`; the dynamics are the batched
    :class:`MarketImpactKernel` (this env is its batch of one market), so
    :class:`~sb3_trading.vec.BatchedVecEnv` runs ``n_envs`` independent markets with the same code.

    The impact is carried into the price process: the market price is the data's close times the
    accumulated impact, ``P_t = D_t * M_t``, with ``M_{t+1} = (M_t * I_t)^(1 - impact_decay)`` and
    ``M = 1`` at the start of the episode. With the default ``impact_decay=1`` the impact is temporary, as in
    seed 004 (a pure cost: fills at ``D_t * I``, marks at ``D_{t+1}``); with ``impact_decay=0`` it is permanent
    (the execution price becomes the new reference price; the data supplies the exogenous return
    ``D_{t+1} / D_t``). Every book is marked at ``P_{t+1}``. The heuristics read market prices
    ``P_s``, ``s <= t`` only; the rules and all formulas are in :mod:`sb3_trading.sim.impact`.

    ## Market rules
    Every agent pays the same constant frictions on top of the impact: commission, slippage and a half-spread in
    bps (``costs``), and a fixed fee and a minimum commission per order (each asset an agent trades in a step is
    one order). ``financing`` accrues one bar of interest on every book after the fills, with the data's calendar
    (compounding; ``info["financing"]``): positive cash (``weight_mode="cap"``, the all-zero action, a sized-down
    book) earns ``cash_rate``, the slightly negative cash of a fully invested book that paid impact and costs on
    credit pays ``loan_rate``. The market has its own impact model, so the rules that need the data (square-root
    ``impact_k``, ``half_spread_bps="data"``, ``participation``) and ``lot_size`` are refused by name, and so are
    ``margin`` (long-only books never borrow beyond one trade's costs) and ``brackets`` (prices are simulated close
    to close: there is no intrabar high/low to trigger them) (``ValueError``; MultiAsset-v0 models them).

    ## Action Space
    ``Box(0, 1, (N,), float32)``: raw scores, renormalised to weights of equity. With
    ``weight_mode="sum"`` (default) ``w = a / sum(a)`` (fully invested), and the all-zero action means
    all cash; with ``weight_mode="cap"`` ``w = a / max(sum(a), 1)`` (``1 - sum(w)`` stays cash).
    With a ``dead_zone`` ``d`` each score is first taken past it: ``a <= d`` counts as 0, a larger one as
    ``(a - d) / (1 - d)`` (1 stays 1), so the near-zero scores of an untrained policy hold nothing -- a flat start,
    which the main job's validation gate needs (README "Why raw advantages looked flat, and the validation gate").
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
    Seed 004's shaped reward. With every agent's step P&L ``pnl_a = V_a,t+1 - V_a,t`` (currency), the shaping
    basis ``x_a`` (``reward_basis="wealth"``, default: the new values ``V_a,t+1``; ``"step_pnl"``: ``pnl_a``),
    ``mu = mean(x)`` and ``sigma = std(x)`` over all agents (``ddof=0``, currency):
    ``R = pnl_learner + cooperation / (1 + sigma) + competition * (x_learner - mu) / sigma``
    (the last term is 0 when ``sigma <= 1e-12``). The reward is ``R / initial_cash`` (``reward_units="fraction"``,
    default: the scale PPO's networks want) or ``R`` (``"currency"``, the seed's). With the seed's ``c = 0.05`` and
    ``k = 0.1`` both shaping terms are small next to the learner's own P&L (README, "MarketImpact rewards").
    ``info["pnl"]`` is the learner's currency P&L and ``info["agent_pnl"]`` every agent's (learner first, then
    ``traders`` in order).

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
    :param commission_bps: commission in bps of filled notional (every agent), in ``[0, 10000)``; a shortcut for
        ``costs={"commission_bps": ...}`` (changed from 10 together with a ``CostModel`` or preset: ``ValueError``).
    :param slippage_bps: adverse fill price move in bps, on top of the impact, in ``[0, 10000)`` (the same shortcut).
    :param traders: the heuristic traders: kind names from :data:`~sb3_trading.sim.impact.TRADER_KINDS`
        or :class:`~sb3_trading.sim.impact.HeuristicTrader` specs (look-back, skew); may be empty.
    :param impact_coef: impact coefficient ``k >= 0``; 0 switches impact off.
    :param liquidity: liquidity per asset (currency), a number or ``N`` numbers, ``>= 0``.
    :param impact_bounds: ``(lo, hi)`` bounds of the impact factor, ``0 < lo <= 1 <= hi``.
    :param impact_decay: fraction of the log impact premium ``log(P / D)`` that decays each bar, in ``[0, 1]``:
        ``0`` makes impact **permanent** (a buy lifts the price for good, later prices move from the lifted level),
        ``1`` makes it **temporary** (fills at ``D_t I_t``, the next mark back on the exogenous path ``D``, as in
        seed 004); values between decay it geometrically.
    :param cooperation: weight ``c >= 0`` of the cooperation bonus ``c / (1 + sigma)`` (currency).
    :param competition: weight ``k >= 0`` of the competition term ``k (x - mu) / sigma`` (currency per std).
    :param reward_basis: the shaping basis ``x``: ``"wealth"`` (seed 004: the agents' new values) or
        ``"step_pnl"`` (their step P&L).
    :param reward_units: ``"fraction"`` (the reward divided by ``initial_cash``) or ``"currency"``.
    :param weight_mode: ``"sum"`` or ``"cap"`` (see Action Space).
    :param dead_zone: the scores' dead zone, in ``[0, 1)``: a score ``<= dead_zone`` holds none of that asset (see
        Action Space); ``0`` (default): none.
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param indicators: indicator names (default :data:`sb3_trading.features.DEFAULT_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    :param costs: a :class:`~sb3_trading.sim.CostModel`, a dict of its fields, or a venue preset name
        (:data:`~sb3_trading.sim.VENUES`); only constant frictions (see Market rules).
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (``None``: none): interest on
        cash, every agent's (see Market rules).
    :param margin: must be ``None``: not modelled.
    :param brackets: must be ``None``: not modelled.
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
        impact_decay: float = 1.0,
        cooperation: float = 0.05,
        competition: float = 0.1,
        reward_basis: str = "wealth",
        reward_units: str = "fraction",
        weight_mode: str = "sum",
        dead_zone: float = 0.0,
        window: int = 1,
        episode_length: int | None = 252,
        random_start: bool = True,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        feature_fits: FeatureFits | None = None,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
        costs: CostModel | str | dict | None = None,
        financing: Financing | dict | None = None,
        margin: Margin | dict | None = None,
        brackets: Brackets | dict | None = None,
    ) -> None:
        rules = resolve_market_rules(costs, commission_bps, slippage_bps, financing, margin, brackets)
        check_impact_rules(rules)
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
            feature_fits=feature_fits,
            render_mode=render_mode,
        )
        check_choice("weight_mode", weight_mode, WEIGHT_MODES)
        # 0 switches the term off
        self.cooperation = check_real("cooperation", cooperation, 0.0)
        self.competition = check_real("competition", competition, 0.0)
        self.reward_basis = check_choice("reward_basis", reward_basis, REWARD_BASES)
        self.reward_units = check_choice("reward_units", reward_units, REWARD_UNITS)
        self.market_rules = rules
        self.costs = rules.costs
        self.n_assets = data.n_assets
        self.weight_mode = weight_mode
        self.dead_zone = check_real("dead_zone", dead_zone, 0.0, 1.0, strict_maximum=True)
        self._market_kwargs: dict[str, Any] = {
            "traders": tuple(traders) if not isinstance(traders, (str, HeuristicTrader)) else traders,
            "initial_cash": self.initial_cash,
            "costs": self.costs,
            "impact_coef": impact_coef,
            "liquidity": liquidity,
            "impact_bounds": impact_bounds,
            "impact_decay": impact_decay,
            "financing": rules.financing,
            "periods_per_year": float(data.periods_per_year),
            "asset_names": tuple(data.asset_names),
        }
        self.action_space = spaces.Box(0.0, 1.0, shape=(self.n_assets,), dtype=np.float32)
        self.observation_space = self._observation_space(3 * self.n_assets + 1)
        self._build_market(1)

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_regime_market(n_assets=3, seed=seed)``: the market built when ``data`` is ``None``."""
        return make_regime_market(n_assets=DEFAULT_N_ASSETS, seed=seed)

    def make_kernel(self, n_envs: int, n_learners: int = 1) -> MarketImpactKernel:
        """The batched dynamics of this env: ``n_envs`` independent markets of ``n_learners`` learners each (the
        env itself runs one market; :class:`~sb3_trading.vec.BatchedVecEnv` ``n_envs`` single-learner markets)."""
        return MarketImpactKernel(self, n_envs, n_learners)

    # ------------------------------------------------------------------ market
    def _build_market(self, n_learners: int) -> None:
        """(Re)build the env's market with ``n_learners`` learner rows (the PettingZoo view uses several)."""
        self._kernel = self.make_kernel(1, n_learners)
        self.n_learners = n_learners
        self.traders = self.market.heuristics.traders
        #: book row names: learners, then ``"<kind>_<i>"`` per heuristic trader
        self.agent_names = tuple(f"learner_{i}" for i in range(n_learners)) + self.market.heuristics.names

    @property
    def market(self) -> ImpactMarket:
        """The env's :class:`~sb3_trading.sim.impact.ImpactMarket` (one market; its book rows are the agents)."""
        return self._kernel.impact_market

    @property
    def impact_coef(self) -> float:
        return self.market.impact_coef

    def action_to_weights(self, action: Any) -> np.ndarray:
        """The ``(N,)`` target weights an action stands for (validated, clipped, past the dead zone, renormalised)."""
        return self.score_weights(self._box_action(action)[None, :])[0]

    def score_weights(self, scores: np.ndarray) -> np.ndarray:
        """``(k, N)`` float64 scores already clipped to ``[0, 1]`` (e.g. several learners') -> ``(k, N)`` target
        weights: past the dead zone, renormalised by the weight mode (:func:`learner_weights_kernel`)."""
        return learner_weights_kernel(scores, weight_floor(self.weight_mode), self.dead_zone)

    # ------------------------------------------------------------------ several learners (PettingZoo)
    def _reset_learners(
        self, options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
        """Start an episode of every learner (call after seeding, ``TradingEnv.reset``; ``options`` of ``reset``, its
        ``"start"`` honoured); observations and infos per learner."""
        kernel = self._kernel
        draws = kernel.draw((self.np_random,))
        start = self._start_option(options)
        if start is not None:  # the drawn start is replaced, the random numbers consumed as by a plain reset
            draws = {**draws, "start": np.array([start], dtype=np.int64)}
        tr = kernel.reset(_ROW0, draws)
        infos = [kernel.info(tr, 0, (0.0,), (0.0,)) for _ in range(self.n_learners)]
        self._last_info = infos[0]
        market = self._market_window(self._t)
        observations = [{MARKET_KEY: market.copy(), PORTFOLIO_KEY: tr.portfolio[0].copy()} for _ in range(self.n_learners)]
        return observations, infos

    def _step_learners(
        self, weights: np.ndarray
    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray, list[bool], bool, list[dict[str, Any]]]:
        """Advance the market one bar with the learners' ``(L, N)`` weights.

        :return: observations and infos per learner, rewards ``(L,)``, ruin flags (``L`` bools), and whether
            the episode is over (``episode_length`` or the end of the data).
        """
        kernel = self._kernel
        n_learners = self.n_learners
        step, rewards, (positions, cash, fractions, block) = kernel.step_markets(np.asarray(weights, dtype=np.float64)[None])
        equity = step.equity[0, :n_learners]
        before = step.equity_before[0, :n_learners].tolist()
        # no return or turnover on a ruined book
        returns = [e / b - 1.0 if b > 0.0 else 0.0 for e, b in zip(equity.tolist(), before, strict=True)]
        notional = step.notional[0, :n_learners].tolist()
        turnover = [q / b if b > 0.0 else 0.0 for q, b in zip(notional, before, strict=True)]
        columns = (
            equity,
            cash,
            positions,
            fractions[:, :-1],
            returns,
            turnover,
            step.costs[0, :n_learners],
            step.drawdown[0, :n_learners],
            [self._t] * n_learners,
            kernel.timestamps,
            {"pnl": step.pnl[0, :n_learners]},
        )
        infos = [standard_info(row, *columns) for row in range(n_learners)]
        shared = kernel.vector_infos(step)
        for row, info in enumerate(infos):
            info.update((key, values[0]) for key, values in shared.items())
            if kernel.financed:
                info["financing"] = float(step.financing[0, row])
        self._last_info = infos[0]
        portfolio = clip_portfolio(block)
        market = self._market_window(self._t)
        if n_learners == 1:
            observations = [{MARKET_KEY: market, PORTFOLIO_KEY: portfolio[0]}]
        else:
            observations = [{MARKET_KEY: market.copy(), PORTFOLIO_KEY: row} for row in portfolio]
        ruined = [e <= 0.0 for e in equity.tolist()]
        return observations, rewards[0, :n_learners], ruined, self._episode_over(), infos


class MarketImpactKernel(TradingKernel):
    """Batched MarketImpact-v0 dynamics: ``B`` independent markets, each its learner(s) among the heuristic traders.

    Market ``b`` is account ``b``: its own books (learners and heuristic traders), impact state and prices, all in
    one :class:`~sb3_trading.sim.impact.ImpactMarket` of ``B`` markets (:attr:`impact_market`; :attr:`book` is its
    book of ``B A`` rows, market-major, learner 0 of market ``b`` in row ``b A``). ``step`` takes ``(B, N)`` raw
    actions already clipped to ``[0, 1]`` (one learner per market); :meth:`step_markets` steps ``L`` learners per
    market.

    The reward of a step is the learner's shaped reward (:func:`~sb3_trading.sim.impact.shaped_rewards_batch`);
    :meth:`outcome` returns it for the step just taken.

    :param env: the configured env.
    :param n_envs: number of markets ``B``.
    :param n_learners: learners per market ``L`` (``step`` needs 1; the PettingZoo view uses several).
    """

    def __init__(self, env: MarketImpactEnv, n_envs: int, n_learners: int = 1) -> None:
        super().__init__(env, n_envs, env.data.prices, env.costs, env.initial_cash)
        self.impact_market = ImpactMarket(env.data.prices, n_learners=n_learners, n_markets=self.n_envs, **env._market_kwargs)
        self.book = self.impact_market.book
        #: the market accrues financing: the infos then report it (``financing``)
        self.financed = self.impact_market.financing is not None
        self.n_learners = int(n_learners)
        self.n_agents = self.impact_market.n_agents
        self.cooperation, self.competition = float(env.cooperation), float(env.competition)
        self._wealth_basis = env.reward_basis == "wealth"
        self._reward_scale = float(env.initial_cash) if env.reward_units == "fraction" else 1.0
        self._floor = weight_floor(env.weight_mode)
        self._dead_zone = env.dead_zone
        #: fraction of the book the learners' weights apply to (set by the sizing wrappers; 1: as asked)
        self.exposure_scale = 1.0
        #: ``(B,)`` the learners' shaped rewards of the last step

    def set_clock(self, rows: np.ndarray, t: np.ndarray | int | None = None, start: np.ndarray | int | None = None) -> None:
        """Set the bar and/or the episode start of ``rows``, in the kernel and in its markets (one clock)."""
        super().set_clock(rows, t, start)
        market = self.impact_market
        market.t, market.start = self.t, self.start_t

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        start = draws["start"]
        self.set_clock(rows, t=start, start=start)
        self.impact_market.reset(start, rows)
        self._set_equity(rows, self.initial_cash)
        k, n = start.shape[0], self.n_assets
        portfolio = np.zeros((k, 3 * n + 1), dtype=np.float32)
        portfolio[:, n] = 1.0  # all cash, no impact history
        extras = {
            "pnl": np.zeros(k),
            "agent_pnl": np.zeros((k, self.n_agents)),
            "agent_equity": np.full((k, self.n_agents), self.initial_cash),
            "impact": np.ones((k, n)),
            "exec_prices": self._prices.take(start, axis=0),  # P_start = D_start
        }
        if self.financed:
            extras["financing"] = np.zeros(k)
        return self._flat(start, portfolio)._replace(extras=extras)

    def step_markets(
        self, weights: np.ndarray
    ) -> tuple[MarketStep, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Step every market with its learners' weights ``(B, L, N)`` and move the clock.

        :return: the :class:`~sb3_trading.sim.impact.MarketStep`, every agent's shaped rewards ``(B, A)`` and the
            learners' ``(positions (B L, N), cash (B L,), fractions (B L, N + 1), block (B L, 3 N + 1))``: views of
            :func:`impact_portfolio_kernel`'s result (the block unclipped).
        """
        market = self.impact_market
        step = market.step(weights)
        basis = step.equity if self._wealth_basis else step.pnl
        rewards = shaped_rewards_batch(step.pnl, basis, self._reward_scale, self.cooperation, self.competition)
        packed = impact_portfolio_kernel(
            market.book.holdings, step.prices, step.equity, step.log_premium, step.log_impact, self.n_learners
        )
        n = self.n_assets
        view = (packed[:, :n], packed[:, n], packed[:, n + 1 : 2 * n + 2], packed[:, n + 1 :])
        self.t = market.t
        self.equity = step.equity[:, 0]
        return step, rewards, view

    def step(self, actions: np.ndarray) -> Transition:
        if self.n_learners != 1:
            raise ValueError(f"step() drives one learner per market, this kernel has {self.n_learners}; use step_markets()")
        weights = learner_weights_kernel(actions, self._floor, self._dead_zone)
        if self.exposure_scale != 1.0:
            weights = weights * self.exposure_scale
        step, rewards, (positions, cash, fractions, block) = self.step_markets(weights.reshape(self.n_envs, 1, self.n_assets))
        extras = {"pnl": step.pnl[:, 0], **self.vector_infos(step)}
        if self.financed:
            extras["financing"] = step.financing[:, 0]
        return Transition(
            step.equity[:, 0],
            step.equity_before[:, 0],
            cash,
            positions,
            fractions[:, :-1],
            step.notional[:, 0],
            step.costs[:, 0],
            step.drawdown[:, 0],
            self.t,
            clip_portfolio(block),
            extras,
            rewards[:, 0],
        )

    @staticmethod
    def vector_infos(step: MarketStep) -> dict[str, np.ndarray]:
        """The per-market vector ``info`` entries of ``step`` (:data:`VECTOR_INFO_KEYS`), ``(B, A)`` or ``(B, N)``."""
        return {"agent_pnl": step.pnl, "agent_equity": step.equity, "impact": step.impact, "exec_prices": step.exec_prices}
