"""Optuna search spaces for sb3_trading's algorithms, shaped like ``rl_zoo3/hyperparams_opt.py``.

Each ``sample_<algo>_params(trial, n_envs, choices)`` draws *readable* parameters (the names and
values a person would write in a zoo yml: ``n_steps``, ``batch_size``, ``gamma``, ``net_arch="small"``...)
and :func:`params_to_hyperparams` converts them to algorithm keyword arguments (``net_arch`` and
``n_quantiles`` move into ``policy_kwargs``). Scales spanning orders of magnitude are sampled in log
space (``learning_rate``, ``ent_coef``, ``huber_kappa``); the rest are categorical so every trial is a
configuration one can read off the study.

``batch_size`` and ``n_steps`` are categorical over fixed sets (Optuna forbids a categorical whose
choices change between trials). A ``batch_size`` larger than the rollout (``n_steps * n_envs``) is
replaced by the whole rollout; the sampler returns that effective value and records it as the trial's
user attribute ``batch_size``, so the returned parameters always satisfy ``batch_size <= n_steps * n_envs``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

#: ``net_arch`` names -> the ``policy_kwargs["net_arch"]`` they stand for (separate pi/vf networks of these sizes)
NET_ARCH: dict[str, list[int]] = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}

#: default categorical choices, by parameter name; ``choices={"n_steps": [64]}`` replaces one of them
DEFAULT_CHOICES: dict[str, tuple[Any, ...]] = {
    "n_steps": (64, 128, 256, 512, 1024, 2048),
    "batch_size": (32, 64, 128, 256, 512),
    # per-step trading rewards: short horizons (0.5-0.9) often learn fastest, so the grid reaches down to 0.5
    "gamma": (0.5, 0.7, 0.9, 0.95, 0.99),
    "gae_lambda": (0.8, 0.9, 0.95, 0.98, 1.0),
    "clip_range": (0.1, 0.2, 0.3),
    "n_epochs": (1, 5, 10, 20),
    "net_arch": ("tiny", "small", "medium"),
    "lstm_hidden_size": (32, 64, 128),
    "risk": ("mean", "cvar"),
}
#: log-uniform ranges ``(low, high)`` of the continuous parameters
LOG_RANGES: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-5, 3e-3),
    "ent_coef": (1e-8, 0.1),
    "huber_kappa": (1e-4, 1.0),
}
#: uniform ranges of the remaining numeric parameters
RANGES: dict[str, tuple[float, float]] = {
    "n_quantiles": (25, 51),
    "alpha": (0.05, 0.5),
}
#: parameters :func:`params_to_hyperparams` moves into ``policy_kwargs``
POLICY_KWARGS_PARAMS = ("net_arch", "n_quantiles", "lstm_hidden_size")


def _choices(name: str, choices: Mapping[str, Sequence[Any]] | None) -> list[Any]:
    values = list((choices or {}).get(name, DEFAULT_CHOICES[name]))
    if not values:
        raise ValueError(f"choices[{name!r}] is empty; give at least one value")
    return values


def _check_choices(choices: Mapping[str, Sequence[Any]] | None) -> None:
    unknown = sorted(set(choices or {}) - set(DEFAULT_CHOICES))
    if unknown:
        raise ValueError(f"unknown categorical parameters {unknown} in choices; known: {sorted(DEFAULT_CHOICES)}")
    for name in ("net_arch",):
        bad = [value for value in (choices or {}).get(name, ()) if value not in NET_ARCH]
        if bad:
            raise ValueError(f"unknown net_arch names {bad}; known: {sorted(NET_ARCH)}")


def sample_ppo_params(
    trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """Sample PPO (and MaskablePPO) hyperparameters.

    ``learning_rate`` in ``[1e-5, 3e-3]`` and ``ent_coef`` in ``[1e-8, 0.1]``, both log-uniform;
    ``n_steps``, ``batch_size``, ``gamma``, ``gae_lambda``, ``clip_range``, ``n_epochs`` and ``net_arch``
    categorical over :data:`DEFAULT_CHOICES` (or ``choices``).

    :param trial: the Optuna trial.
    :param n_envs: parallel training envs; ``batch_size`` is capped at ``n_steps * n_envs``.
    :param choices: replacements of :data:`DEFAULT_CHOICES` entries, e.g. ``{"n_steps": [64]}``.
    :return: readable parameters (``net_arch`` is a name of :data:`NET_ARCH`); see :func:`params_to_hyperparams`.
    """
    _check_choices(choices)
    if isinstance(n_envs, bool) or not isinstance(n_envs, int) or n_envs < 1:
        raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
    n_steps = trial.suggest_categorical("n_steps", _choices("n_steps", choices))
    batch_size = trial.suggest_categorical("batch_size", _choices("batch_size", choices))
    rollout = int(n_steps) * n_envs
    if batch_size > rollout:
        batch_size = rollout  # one minibatch of the whole rollout: what SB3 would do, now stated honestly
    trial.set_user_attr("batch_size", batch_size)
    return {
        "n_steps": n_steps,
        "batch_size": batch_size,
        "gamma": trial.suggest_categorical("gamma", _choices("gamma", choices)),
        "gae_lambda": trial.suggest_categorical("gae_lambda", _choices("gae_lambda", choices)),
        "learning_rate": trial.suggest_float("learning_rate", *LOG_RANGES["learning_rate"], log=True),
        "ent_coef": trial.suggest_float("ent_coef", *LOG_RANGES["ent_coef"], log=True),
        "clip_range": trial.suggest_categorical("clip_range", _choices("clip_range", choices)),
        "n_epochs": trial.suggest_categorical("n_epochs", _choices("n_epochs", choices)),
        "net_arch": trial.suggest_categorical("net_arch", _choices("net_arch", choices)),
    }


def sample_ppo_mask_params(
    trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """MaskablePPO: the PPO space (masking changes which actions exist, not what PPO's knobs mean)."""
    return sample_ppo_params(trial, n_envs, choices)


def sample_ppo_lstm_params(
    trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """RecurrentPPO: the PPO space plus ``lstm_hidden_size`` (categorical)."""
    params = sample_ppo_params(trial, n_envs, choices)
    params["lstm_hidden_size"] = trial.suggest_categorical("lstm_hidden_size", _choices("lstm_hidden_size", choices))
    return params


def sample_qppo_params(
    trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """QuantilePPO: the PPO space plus the quantile critic's knobs.

    ``n_quantiles`` integer in ``[25, 51]``; ``risk`` in ``{"mean", "cvar"}``; ``alpha`` (CVaR level)
    uniform in ``[0.05, 0.5]``, sampled only when ``risk == "cvar"`` (a conditional parameter: it means
    nothing for ``"mean"``); ``huber_kappa`` log-uniform in ``[1e-4, 1]`` (per-step trading rewards are
    ~1e-3, far below QR-DQN's kappa of 1).
    """
    params = sample_ppo_params(trial, n_envs, choices)
    params["n_quantiles"] = trial.suggest_int("n_quantiles", *(int(v) for v in RANGES["n_quantiles"]))
    params["risk"] = trial.suggest_categorical("risk", _choices("risk", choices))
    if params["risk"] == "cvar":
        params["alpha"] = trial.suggest_float("alpha", *RANGES["alpha"])
    params["huber_kappa"] = trial.suggest_float("huber_kappa", *LOG_RANGES["huber_kappa"], log=True)
    return params


def sample_qppo_mask_params(
    trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """MaskableQuantilePPO: the QuantilePPO space."""
    return sample_qppo_params(trial, n_envs, choices)


#: algorithm name (``sb3_trading.algos.ALGOS``) -> sampler
HYPERPARAMS_SAMPLER: dict[str, Callable[..., dict[str, Any]]] = {
    "ppo": sample_ppo_params,
    "ppo_mask": sample_ppo_mask_params,
    "ppo_lstm": sample_ppo_lstm_params,
    "qppo": sample_qppo_params,
    "qppo_mask": sample_qppo_mask_params,
}


def sample_params(
    algo: str, trial: optuna.Trial, n_envs: int = 1, choices: Mapping[str, Sequence[Any]] | None = None
) -> dict[str, Any]:
    """The sampler of ``algo`` (any name :func:`sb3_trading.algos.get_algo` accepts) applied to ``trial``."""
    from sb3_trading.algos import get_algo

    name, _ = get_algo(algo)
    return HYPERPARAMS_SAMPLER[name](trial, n_envs, choices)


def algo_init_parameters(algo: str) -> set[str]:
    """Keyword arguments the constructor of ``algo`` accepts, gathered along its MRO (subclasses pass ``**kwargs`` up)."""
    from sb3_trading.algos import get_algo

    _, algo_class = get_algo(algo)
    names: set[str] = set()
    for klass in algo_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        names.update(
            p.name for p in inspect.signature(init).parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )
    names.discard("self")
    return names


def params_to_hyperparams(algo: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Convert readable sampled parameters to keyword arguments of the algorithm's constructor.

    ``net_arch`` (a name of :data:`NET_ARCH`), ``n_quantiles`` and ``lstm_hidden_size`` go into
    ``policy_kwargs``; every other parameter is passed through unchanged.

    :param algo: algorithm name (``ppo``, ``ppo_mask``, ``ppo_lstm``, ``qppo``, ``qppo_mask``).
    :param params: sampled parameters, e.g. ``trial.params`` or a sampler's return value.
    :return: e.g. ``{"n_steps": 64, ..., "policy_kwargs": {"net_arch": [64, 64]}}``.
    :raises ValueError: a parameter the algorithm does not take (e.g. ``n_quantiles`` for ``ppo``).
    """
    from sb3_trading.algos import get_algo

    name, _ = get_algo(algo)
    hyperparams = dict(params)
    policy_kwargs: dict[str, Any] = {}
    if "net_arch" in hyperparams:
        arch = hyperparams.pop("net_arch")
        if isinstance(arch, str):
            if arch not in NET_ARCH:
                raise ValueError(f"unknown net_arch {arch!r}; known: {sorted(NET_ARCH)}")
            arch = NET_ARCH[arch]
        policy_kwargs["net_arch"] = list(arch)
    if "n_quantiles" in hyperparams:
        if not name.startswith("qppo"):
            raise ValueError(f"n_quantiles is a QuantilePPO parameter; {name!r} does not take it")
        policy_kwargs["n_quantiles"] = int(hyperparams.pop("n_quantiles"))
    if "lstm_hidden_size" in hyperparams:
        if name != "ppo_lstm":
            raise ValueError(f"lstm_hidden_size is a RecurrentPPO parameter; {name!r} does not take it")
        policy_kwargs["lstm_hidden_size"] = int(hyperparams.pop("lstm_hidden_size"))
    unknown = sorted(set(hyperparams) - algo_init_parameters(name))
    if unknown:
        raise ValueError(f"{name} does not take {unknown}; check the sampled parameters")
    if policy_kwargs:
        hyperparams["policy_kwargs"] = policy_kwargs
    return hyperparams


def merge_hyperparams(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``{**base, **override}`` where ``policy_kwargs`` dicts are merged key by key (override wins)."""
    merged = {**base, **override}
    if "policy_kwargs" in base and "policy_kwargs" in override:
        merged["policy_kwargs"] = {**base["policy_kwargs"], **override["policy_kwargs"]}
    return merged


__all__ = [
    "DEFAULT_CHOICES",
    "HYPERPARAMS_SAMPLER",
    "LOG_RANGES",
    "NET_ARCH",
    "RANGES",
    "merge_hyperparams",
    "params_to_hyperparams",
    "sample_params",
    "sample_ppo_lstm_params",
    "sample_ppo_mask_params",
    "sample_ppo_params",
    "sample_qppo_mask_params",
    "sample_qppo_params",
]
