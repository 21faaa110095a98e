"""Run control: atomic periodic checkpoints and a wall-clock budget.

* :class:`AtomicCheckpointCallback` is SB3's :class:`~stable_baselines3.common.callbacks.CheckpointCallback`
  (``<name_prefix>_<timesteps>_steps.zip`` every ``save_freq`` calls) whose saves are atomic: a checkpoint is
  written to a temporary file and renamed, so a crash mid-save never leaves a truncated ``.zip`` to resume from.
* :class:`WallClockLimit` stops ``learn`` cleanly once a budget of minutes is spent (SB3 stops when a callback's
  ``_on_step`` returns ``False``); :attr:`WallClockLimit.stopped` says whether it did.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from sb3_trading.common.validation import check_real
from sb3_trading.utils import save_model_atomic

_CHECKPOINT = re.compile(r"_(\d+)_steps\.zip$")


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` with atomic model saves (module docstring); the other files as SB3 writes them."""

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            save_model_atomic(self.model, self._checkpoint_path(extension="zip"))
            if self.save_vecnormalize and self.model.get_vec_normalize_env() is not None:
                self.model.get_vec_normalize_env().save(self._checkpoint_path("vecnormalize_", extension="pkl"))  # type: ignore[union-attr]
        return True


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint of ``folder`` with the most timesteps (``*_<steps>_steps.zip``), or ``None``."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("*_steps.zip") if (m := _CHECKPOINT.search(p.name))]
    return max(found)[1] if found else None


class WallClockLimit(BaseCallback):
    """Stop training after ``max_minutes`` of wall time (checked every step; the rollout in progress ends there).

    :param max_minutes: the budget, minutes, ``> 0``.
    """

    def __init__(self, max_minutes: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.max_minutes = float(check_real("max_minutes", max_minutes, 0.0, strict_minimum=True))
        #: whether the budget stopped training
        self.stopped = False
        self._deadline = 0.0

    def _on_training_start(self) -> None:
        self._deadline = time.perf_counter() + 60.0 * self.max_minutes

    def _on_step(self) -> bool:
        if time.perf_counter() >= self._deadline:
            self.stopped = True
            return False
        return True


__all__ = ["AtomicCheckpointCallback", "WallClockLimit", "latest_checkpoint"]
