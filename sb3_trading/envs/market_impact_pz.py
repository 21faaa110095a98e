"""A PettingZoo ``ParallelEnv`` view of ``sb3_trading/MarketImpact-v0``: several learning traders at once.

Needs the optional extra: ``pip install "sb3-trading[multiagent]"`` (PettingZoo). This module is not
imported by ``import sb3_trading``; import it explicitly::

    from sb3_trading.envs.market_impact_pz import parallel_env

    env = parallel_env(learners=("agent_0", "agent_1"), traders=("momentum", "market_maker"))
    observations, infos = env.reset(seed=0)
    while env.agents:
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

try:
    from pettingzoo import ParallelEnv
except ImportError as exc:  # an optional extra: say how to get it, never fall back silently
    raise ImportError('sb3_trading.envs.market_impact_pz needs PettingZoo: pip install "sb3-trading[multiagent]"') from exc

from sb3_trading.common.validation import is_int
from sb3_trading.envs.base import TradingEnv
from sb3_trading.envs.market_impact import MarketImpactEnv


def _learner_names(learners: Sequence[str] | int) -> list[str]:
    if is_int(learners):
        if learners < 1:
            raise ValueError(f"learners must be >= 1 agent (a count or names), got {learners!r}")
        return [f"agent_{i}" for i in range(int(learners))]
    if isinstance(learners, str) or not isinstance(learners, Sequence):
        raise TypeError(f"learners must be a count or a sequence of agent names, got {learners!r}")
    names = list(learners)
    if not names or not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"learners must be one or more distinct, non-empty agent names, got {learners!r}")
    return names


class MarketImpactParallelEnv(ParallelEnv):
    """The :class:`~sb3_trading.envs.market_impact.MarketImpactEnv` market with several learning traders.

    ## Description
    The same market, mechanics and rewards as ``sb3_trading/MarketImpact-v0`` (see
    :mod:`sb3_trading.sim.impact`): every learner in ``learners`` and every heuristic trader in
    ``traders`` is a row of one batched book (learners first, in order), all orders are netted per
    asset and fill at the impacted execution price, and every book is marked at the next market price.
    It runs the single-agent env's compiled kernel with one market of ``len(learners)`` learners
    (:meth:`~sb3_trading.envs.market_impact.MarketImpactKernel.step_markets`), so both views share every rule.

    ## Agents
    ``possible_agents = list(learners)`` (default ``["agent_0", "agent_1"]``); the heuristic traders
    are part of the market, not PettingZoo agents. An agent whose equity falls to zero or below is
    terminated and its book liquidated on later steps; all agents are truncated together after
    ``episode_length`` decisions or at the end of the data.

    ## Action and Observation Spaces
    Per agent, the single-agent env's spaces: ``Box(0, 1, (N,), float32)`` renormalised to weights
    (``weight_mode``), and the ``Dict`` observation ``{"market": (window, F), "portfolio": (3 N + 1,)}``
    of the agent's own book. Every live agent must send an action each step.

    ## Rewards
    Each agent's own shaped reward of the single-agent env (``reward_basis``, ``reward_units``), its statistics
    over all agents (learners and heuristics); ``info["pnl"]`` is the agent's currency P&L.

    ## Arguments
    :param learners: learner names, or their count (named ``agent_0``, ``agent_1``, ...).
    :param env_kwargs: :class:`~sb3_trading.envs.market_impact.MarketImpactEnv` arguments
        (``data``, ``traders``, ``impact_coef``, ``episode_length``, ...), its market rules included: ``costs``
        (a :class:`~sb3_trading.sim.CostModel`, a dict of its fields or a preset name), ``commission_bps``,
        ``slippage_bps``, ``financing``, ``margin`` and ``brackets``. Every agent pays the same constant
        frictions (commission, slippage, half-spread in bps, ``fixed_fee`` and ``min_fee`` per asset traded);
        the rest is refused by name (``ValueError``), as by the single-agent env.
    """

    metadata: dict[str, Any] = {"name": "market_impact_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, learners: Sequence[str] | int = ("agent_0", "agent_1"), **env_kwargs: Any) -> None:
        names = _learner_names(learners)
        self.env = MarketImpactEnv(**env_kwargs)
        self.env._build_market(len(names))
        self.render_mode = self.env.render_mode
        self.possible_agents: list[str] = names
        self.agents: list[str] = []
        self._rows = {name: i for i, name in enumerate(names)}
        # one space object per agent, so seeding one agent's space leaves the others alone
        self._observation_spaces: dict[str, spaces.Space] = {name: copy.deepcopy(self.env.observation_space) for name in names}
        self._action_spaces: dict[str, spaces.Space] = {name: copy.deepcopy(self.env.action_space) for name in names}
        self._weights = np.zeros((len(names), self.env.n_assets))

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        TradingEnv.reset(self.env, seed=seed)  # seeds the shared env's np_random (the start bar)
        observations, infos = self.env._reset_learners(options)
        self.agents = list(self.possible_agents)
        self._weights[:] = 0.0
        return dict(zip(self.agents, observations, strict=True)), dict(zip(self.agents, infos, strict=True))

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, dict[str, np.ndarray]],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        if not self.agents:
            raise RuntimeError("the episode is over (no live agents): call reset()")
        if not isinstance(actions, dict):
            raise TypeError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        unknown = sorted(set(actions) - set(self.agents), key=str)
        missing = [agent for agent in self.agents if agent not in actions]
        if unknown or missing:
            raise ValueError(
                f"actions must have one entry per live agent {self.agents}; missing {missing}, unexpected {unknown}"
            )
        env = self.env
        # ValueError on a wrong shape or a non-finite value, before anything changes
        raw = [env._box_action(actions[agent]) for agent in self.agents]
        self._weights[[self._rows[agent] for agent in self.agents]] = env.score_weights(np.stack(raw))
        observations, rewards, ruined, over, infos = env._step_learners(self._weights)

        live = self.agents
        result: tuple[dict, dict, dict, dict, dict] = ({}, {}, {}, {}, {})
        for agent in live:
            row = self._rows[agent]
            terminated = bool(ruined[row])
            result[0][agent] = observations[row]
            result[1][agent] = float(rewards[row])
            result[2][agent] = terminated
            result[3][agent] = over and not terminated
            result[4][agent] = infos[row]
            if terminated:
                self._weights[row] = 0.0  # a ruined agent's book is liquidated from now on
        self.agents = [agent for agent in live if not (result[2][agent] or result[3][agent])]
        return result

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the first learner's one-line summary."""
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def parallel_env(learners: Sequence[str] | int = ("agent_0", "agent_1"), **env_kwargs: Any) -> MarketImpactParallelEnv:
    """PettingZoo-style factory: :class:`MarketImpactParallelEnv` with the given learners and env arguments."""
    return MarketImpactParallelEnv(learners, **env_kwargs)
