"""rl-zoo3 hyperparameter files shipped with the package: ``<algo>.yml`` keyed by env ID.

They are package data, so a source tree and an installed wheel find them the same way::

    python -m rl_zoo3.train --algo ppo --env sb3_trading/MultiAsset-v0 --gym-packages sb3_trading \\
        --conf-file "$(python -c 'import sb3_trading.zoo_configs as z; print(z.config_path("ppo"))')"
"""

from __future__ import annotations

from pathlib import Path

#: the folder holding ``ppo.yml``, ``ppo_lstm.yml``, ``ppo_mask.yml``, ``qppo.yml``, ``qppo_mask.yml``
CONFIG_DIR = Path(__file__).resolve().parent


def config_path(algo: str) -> Path:
    """Path of ``<algo>.yml`` (an rl-zoo3 algorithm name such as ``"ppo"`` or ``"qppo_mask"``).

    :raises ValueError: no config ships for ``algo``; the message lists those that do.
    """
    path = CONFIG_DIR / f"{algo}.yml"
    if not path.is_file():
        shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.yml"))
        raise ValueError(f"no zoo config for algorithm {algo!r}; shipped: {shipped}")
    return path
