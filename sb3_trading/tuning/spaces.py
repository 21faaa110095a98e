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
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sb3_trading.common.validation import check_choice, check_int, check_real, suggest

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


#: the parameters each algorithm's sampler draws: ``(categorical, continuous)``; only categorical ones take ``choices``
_PPO_CATEGORICAL = ("n_steps", "batch_size", "gamma", "gae_lambda", "clip_range", "n_epochs", "net_arch")
SEARCH_SPACES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ppo": (_PPO_CATEGORICAL, ("learning_rate", "ent_coef")),
    "ppo_mask": (_PPO_CATEGORICAL, ("learning_rate", "ent_coef")),
    "ppo_lstm": ((*_PPO_CATEGORICAL, "lstm_hidden_size"), ("learning_rate", "ent_coef")),
    "qppo": ((*_PPO_CATEGORICAL, "risk"), ("learning_rate", "ent_coef", "n_quantiles", "alpha", "huber_kappa")),
    "qppo_mask": ((*_PPO_CATEGORICAL, "risk"), ("learning_rate", "ent_coef", "n_quantiles", "alpha", "huber_kappa")),
}


def _check_choice_value(name: str, value: Any) -> Any:
    """One categorical value of ``name``, checked against the range the algorithms accept; return it as plain Python."""
    label = f"choices[{name!r}] value"
    if name in ("n_steps", "n_epochs", "lstm_hidden_size"):
        return check_int(label, value, minimum=1)
    if name == "batch_size":
        return check_int(label, value, minimum=2)  # SB3's PPO refuses minibatches of one sample
    if name in ("gamma", "gae_lambda"):
        return check_real(label, value, minimum=0.0, maximum=1.0)
    if name == "clip_range":
        return check_real(label, value, minimum=0.0, strict_minimum=True)
    if name == "net_arch":
        return check_choice(label, value, NET_ARCH, what="net_arch name")
    if name == "risk":
        from sb3_trading.algos import RISK_MODES

        return check_choice(label, value, RISK_MODES, what="risk measure")
    raise ValueError(f"unknown categorical parameter {name!r}")  # unreachable: keys are checked first


def check_choices(
    choices: Mapping[str, Sequence[Any]] | None, algo: str | None = None, n_envs: int | None = None
) -> dict[str, list[Any]]:
    """Validate replacements of :data:`DEFAULT_CHOICES` before anything is built or stored.

    Keys must be categorical parameters of ``algo``'s search space (:data:`SEARCH_SPACES`; without
    ``algo``, of any algorithm's): ``lstm_hidden_size`` only for ``ppo_lstm``, ``risk`` only for the
    QuantilePPOs, and the continuous ``learning_rate``, ``ent_coef``... never (they are sampled from
    ranges). Values must be non-empty lists of values of the right type and range: ``n_steps``,
    ``n_epochs``, ``lstm_hidden_size`` integers >= 1, ``batch_size`` integers >= 2, ``gamma`` and
    ``gae_lambda`` in ``[0, 1]``, ``clip_range`` > 0, ``net_arch`` names of :data:`NET_ARCH`, ``risk``
    names of the risk measures.

    :param choices: e.g. ``{"n_steps": [64, 128], "net_arch": ["tiny"]}``.
    :param algo: the algorithm (any name :func:`sb3_trading.algos.get_algo` accepts).
    :param n_envs: parallel training envs; with it, each ``n_steps * n_envs`` must exceed 1 (SB3's rule).
    :return: the choices as ``{name: list}`` of plain Python values, keys sorted.
    :raises ValueError: an unknown key (with a "did you mean"), an empty list or a value out of range.
    :raises TypeError: a value of the wrong type, or a key mapped to a string or a scalar instead of a list.
    """
    if choices is None:
        return {}
    if not isinstance(choices, Mapping):
        raise TypeError(f"choices must be a mapping of parameter names to lists, got {type(choices).__name__}")
    if algo is None:
        known = sorted(set(DEFAULT_CHOICES))
        continuous = sorted({name for _, names in SEARCH_SPACES.values() for name in names})
        owner = "any algorithm"
    else:
        from sb3_trading.algos import get_algo

        algo, _ = get_algo(algo)
        known, continuous = sorted(SEARCH_SPACES[algo][0]), sorted(SEARCH_SPACES[algo][1])
        owner = algo
    checked: dict[str, list[Any]] = {}
    for name in sorted(choices, key=str):
        values = choices[name]
        if name in continuous:
            raise ValueError(
                f"choices[{name!r}]: {name} is sampled from a range, not from choices; choices take the categorical "
                f"parameters of {owner}: {known}"
            )
        if name not in known:
            other = sorted(algo_name for algo_name, (names, _) in SEARCH_SPACES.items() if name in names)
            where = f"; {name} is a parameter of {other}" if other else suggest(name, known)
            raise ValueError(f"unknown categorical parameter {name!r} in choices: {owner} takes {known}{where}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"choices[{name!r}] must be a list of values, e.g. [{values!r}], got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError(f"choices[{name!r}] is empty; give at least one value")
        checked[name] = [_check_choice_value(name, value) for value in values]
    if n_envs is not None:
        n_envs = check_int("n_envs", n_envs, minimum=1)
        for n_steps in checked.get("n_steps", ()):
            if n_steps * n_envs < 2:
                raise ValueError(
                    f"choices['n_steps'] value {n_steps} with n_envs={n_envs} gives rollouts of one step; SB3 needs > 1"
                )
    return checked


def check_rollout_budget(algo: str, choices: Mapping[str, Sequence[Any]] | None, n_envs: int, timesteps: int) -> None:
    """Warn when a choice of ``n_steps`` makes one rollout (``n_steps * n_envs``) longer than the trial budget.

    SB3 collects whole rollouts, so such a trial trains ``n_steps * n_envs`` timesteps instead of
    ``timesteps`` and makes a single update: its score says little about the hyperparameters. Legal,
    but suspect: a ``UserWarning`` with the numbers.

    :param algo: the algorithm.
    :param choices: the study's choices (:func:`check_choices`); ``None``: :data:`DEFAULT_CHOICES`.
    :param n_envs: parallel training envs.
    :param timesteps: training timesteps per trial.
    """
    checked = check_choices(choices, algo)
    n_envs = check_int("n_envs", n_envs, minimum=1)
    timesteps = check_int("timesteps", timesteps, minimum=1)
    too_long = [int(n) for n in checked.get("n_steps", DEFAULT_CHOICES["n_steps"]) if int(n) * n_envs > timesteps]
    if too_long:
        warnings.warn(
            f"n_steps x n_envs exceeds the trial budget timesteps={timesteps} for n_steps in {too_long} "
            f"(n_envs={n_envs}: rollouts of {[n * n_envs for n in too_long]} timesteps): those trials train one whole "
            "rollout, longer than the budget, and make a single update. Lower the n_steps choices "
            f"(--choices n_steps=[...] with n_steps <= {timesteps // n_envs}) or raise --timesteps",
            UserWarning,
            stacklevel=2,
        )


def _choices(name: str, choices: Mapping[str, Sequence[Any]] | None) -> list[Any]:
    values = list((choices or {}).get(name, DEFAULT_CHOICES[name]))
    if not values:
        raise ValueError(f"choices[{name!r}] is empty; give at least one value")
    return values


def _check_choices(choices: Mapping[str, Sequence[Any]] | None) -> None:
    check_choices(choices)


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
    check_choices(choices, name)
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
    "SEARCH_SPACES",
    "check_choices",
    "check_rollout_budget",
    "merge_hyperparams",
    "params_to_hyperparams",
    "sample_params",
    "sample_ppo_lstm_params",
    "sample_ppo_mask_params",
    "sample_ppo_params",
    "sample_qppo_mask_params",
    "sample_qppo_params",
]
