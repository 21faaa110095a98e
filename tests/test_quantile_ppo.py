"""QuantilePPO / MaskableQuantilePPO: learned quantiles, risk measures that change the policy, masks, save/load.

The preference tests train on tiny purpose-built envs (``sb3_trading.common.envs``) whose answers are known:
a one-step bandit (the return *is* the reward, so only the policy's objective can carry a risk preference) and
a two-step chain (the payoff, and its tail, come one step after the choice). The default suite runs one seed
of each; ``pytest -m slow tests/test_quantile_ppo.py`` runs the seeds x payoffs x risk modes grid.
"""

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.policies import ActorCriticPolicy

import sb3_trading
from sb3_trading.algos import ALGOS, DistortionRisk, MaskableQuantilePPO, QuantilePPO, get_algo
from sb3_trading.algos.risk import project_mixture, quantile_lambda_returns, risk_advantages, utility
from sb3_trading.common.envs import MaskedRiskyBanditEnv, MixtureRewardEnv, RiskyBanditEnv, TwoArmRiskEnv
from sb3_trading.policies import TransformerExtractor

QUANTILE_TOLERANCE = 0.35  # reward units; the mixture's components sit 5 units apart with std 0.3

#: risky arm of higher mean and heavy left tail; every one has mean(risky) > safe and CVaR_10%(risky) < safe
BANDITS = {
    "brief": {"safe_reward": 1.0, "win": 3.0, "loss": -10.0, "loss_prob": 0.1},  # mean 1.7, CVaR -10
    "rare_tail": {"safe_reward": 0.0, "win": 1.2, "loss": -20.0, "loss_prob": 0.03},  # mean 0.56, CVaR -5.2
    "frequent_tail": {"safe_reward": 0.5, "win": 2.0, "loss": -5.0, "loss_prob": 0.2},  # mean 0.6, CVaR -5
    "small_scale": {"safe_reward": 0.01, "win": 0.03, "loss": -0.1, "loss_prob": 0.1},  # x 0.01 of "brief"
}
#: risk mode -> does it prefer the risky arm of every bandit above? (mean_cvar 0.5 and wang -0.75 do not)
PREFERS_RISKY = {"mean": True, "cvar": False, "mean_cvar": False, "wang": False}
STEPS = 20_000  # the budget every preference must be reached within (the slow grid uses all of it)
FAST_STEPS = 8_000  # the default suite's single-seed runs


def bandit_kwargs(**overrides):
    kwargs = {
        "n_steps": 64,
        "batch_size": 128,
        "n_epochs": 10,
        "learning_rate": 3e-3,
        "gamma": 1.0,
        "gae_lambda": 0.95,
        "huber_kappa": 0.1,
        "policy_kwargs": {"n_quantiles": 32, "net_arch": [32]},
        "device": "cpu",
    }
    kwargs.update(overrides)
    return kwargs


def p_risky(model, obs) -> float:
    """Probability the policy gives the risky arm (action 1) at ``obs``."""
    with th.no_grad():
        obs_tensor, _ = model.policy.obs_to_tensor(obs)
        return float(model.policy.get_distribution(obs_tensor).distribution.probs[0, 1])


def train_bandit(risk, seed, payoffs, algo=QuantilePPO, env_class=RiskyBanditEnv, steps=STEPS, **overrides):
    env = make_vec_env(env_class, n_envs=4, seed=seed, env_kwargs=payoffs)
    model = algo("MlpPolicy", env, risk=risk, seed=seed, **bandit_kwargs(**overrides))
    return model.learn(steps)


def check_preference(risk, probability):
    if PREFERS_RISKY[risk]:
        assert probability > 0.9, (risk, probability)
    else:
        assert probability < 0.1, (risk, probability)


# -- the risk measures ------------------------------------------------------------------------------------------


def test_distortions_and_their_values():
    quantiles = th.sort(th.randn(50, 20, dtype=th.float64), dim=1).values
    mean = quantiles.mean(dim=1)
    assert th.allclose(DistortionRisk("mean").value(quantiles), mean)
    assert th.allclose(DistortionRisk("wang", eta=0.0).value(quantiles), mean)
    assert th.allclose(DistortionRisk("mean_cvar", cvar_weight=0.0).value(quantiles), mean)
    cvar = DistortionRisk("cvar", alpha=0.25).value(quantiles)
    assert th.allclose(cvar, quantiles[:, :5].mean(dim=1))  # the worst 5 of 20 equally likely atoms
    both = DistortionRisk("mean_cvar", alpha=0.25, cvar_weight=0.3).value(quantiles)
    assert th.allclose(both, 0.7 * mean + 0.3 * cvar)
    for measure in (DistortionRisk("cvar", 0.1), DistortionRisk("wang", eta=-0.75), DistortionRisk("mean_cvar", 0.05)):
        weights = measure.atom_weights(20)
        assert abs(float(weights.sum()) - 1.0) < 1e-6 and bool((weights[:-1] >= weights[1:] - 1e-7).all())  # averse
        assert bool((measure.value(quantiles) <= mean + 1e-9).all())


def test_mean_utility_gives_gae_advantages_and_cvar_utility_is_rockafellar_uryasev():
    quantiles = th.sort(th.randn(8, 16, dtype=th.float64), dim=1).values
    targets = th.randn(8, 16, dtype=th.float64)
    mean_slopes = DistortionRisk("mean").utility_slopes(16).double()
    assert th.allclose(risk_advantages(targets, quantiles, mean_slopes), targets.mean(1) - quantiles.mean(1))
    # CVaR at alpha = 0.25 of 16 atoms: slope 1 / alpha below the 4th quantile, 0 from the 5th on
    slopes = DistortionRisk("cvar", alpha=0.25).utility_slopes(16).double()
    assert th.allclose(slopes[:4], th.full((4,), 4.0, dtype=th.float64)) and th.all(slopes[5:] == 0)
    q = th.arange(16, dtype=th.float64)[None, :]  # quantiles 0..15: the kink at the VaR spreads over [3, 4]
    x = th.tensor([[-5.0, 0.0, 2.5, 4.0, 10.0]], dtype=th.float64)
    expected = -th.clamp(3.5 - x, min=0.0) / 0.25  # -(nu - x)^+ / alpha with nu = 3.5, the kink's centre
    psi = utility(x, q, slopes)
    assert th.allclose(psi - psi[:, -1:], expected - expected[:, -1:])  # equal up to a constant outside (3, 4)


def test_distributional_lambda_returns_have_the_td_lambda_mean_at_lambda_0_and_1():
    rng = np.random.default_rng(0)
    steps, envs, n = 6, 3, 8
    rewards = rng.normal(size=(steps, envs))
    starts = np.zeros((steps, envs))
    starts[3, 1] = 1.0  # env 1's episode ends after step 2
    quantiles = np.sort(rng.normal(size=(steps, envs, n)), axis=-1)
    last = np.sort(rng.normal(size=(envs, n)), axis=-1)
    dones = np.array([False, False, True])
    values, last_values = quantiles.mean(-1), last.mean(-1)
    for lam in (0.0, 1.0):
        atoms = quantile_lambda_returns(rewards, starts, quantiles, last, dones, 0.9, lam)
        returns = np.zeros((steps, envs))  # SB3's TD(lambda) returns
        running = np.zeros(envs)
        for t in reversed(range(steps)):
            not_done = 1.0 - (dones if t == steps - 1 else starts[t + 1])
            next_v = last_values if t == steps - 1 else values[t + 1]
            delta = rewards[t] + 0.9 * next_v * not_done - values[t]
            running = delta + 0.9 * lam * not_done * running
            returns[t] = running + values[t]
        np.testing.assert_allclose(atoms.mean(-1), returns, atol=1e-10)
        assert np.all(np.diff(atoms, axis=-1) >= 0)
    np.testing.assert_allclose(atoms[2, 1], rewards[2, 1])  # terminal step: the reward, no bootstrap
    mixed = project_mixture(np.array([[0.0, 1.0, 10.0, 11.0]]), np.array([0.25, 0.25, 0.25, 0.25]), 4)
    np.testing.assert_array_equal(mixed, [[0.0, 1.0, 10.0, 11.0]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"risk": "var"}, "risk"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"eta": float("nan")}, "eta"),
        ({"cvar_weight": 1.5}, "cvar_weight"),
        ({"huber_kappa": 0.0}, "huber_kappa"),
        ({"clip_range_vf": 0.2}, "clip_range_vf"),
        ({"policy_kwargs": {"n_quantiles": 1}}, "n_quantiles"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantilePPO("MlpPolicy", TwoArmRiskEnv(), device="cpu", **kwargs)


def test_plain_policy_class_is_rejected():
    with pytest.raises(ValueError, match="quantile-critic policy"):
        QuantilePPO(ActorCriticPolicy, TwoArmRiskEnv(), device="cpu")


# -- the critic ---------------------------------------------------------------------------------------------------


def test_learned_quantiles_match_the_analytic_mixture_quantiles():
    env = MixtureRewardEnv(weight_1=0.3, mean_1=-2.0, std_1=0.3, mean_2=3.0, std_2=0.3)
    model = QuantilePPO(
        "MlpPolicy",
        make_vec_env(MixtureRewardEnv, n_envs=4, seed=0),
        n_steps=64,
        batch_size=128,
        n_epochs=10,
        learning_rate=3e-3,
        huber_kappa=0.05,
        policy_kwargs={"n_quantiles": 25, "net_arch": [16]},
        seed=0,
        device="cpu",
    )
    model.learn(8_000)
    with th.no_grad():
        learned = model.policy.predict_quantiles(np.zeros(1, dtype=np.float32)).numpy()[0]
    taus = model.policy.value_net.taus.numpy()
    analytic = np.array([env.quantile(float(tau)) for tau in taus])
    # away from the jump of the CDF at tau = 0.3 (where the quantile lies anywhere in the empty gap)
    away = np.abs(taus - 0.3) >= 0.05
    np.testing.assert_allclose(learned[away], analytic[away], atol=QUANTILE_TOLERANCE)
    assert learned[~away].min() >= -2.6 and learned[~away].max() <= 3.2
    assert model.logger.name_to_value["train/value_spread"] > 4.0  # the spread of the two components
    assert "train/quantile_loss" in model.logger.name_to_value


def test_quantiles_are_monotone_and_the_risk_helpers_are_ordered():
    model = QuantilePPO(
        "MultiInputPolicy", gym.make("sb3_trading/MultiAsset-v0"), policy_kwargs={"n_quantiles": 16}, device="cpu"
    )
    observations = [model.observation_space.sample() for _ in range(64)]
    batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    with th.no_grad():
        quantiles = model.policy.predict_quantiles(batch)
        values = model.policy.predict_values(model.policy.obs_to_tensor(batch)[0])[:, 0]
        cvar, var = model.policy.cvar(batch, 0.1), model.policy.value_at_risk(batch, 0.1)
    assert quantiles.shape == (64, 16) and bool((quantiles[:, 1:] >= quantiles[:, :-1]).all())
    assert th.allclose(values, quantiles.mean(dim=1), atol=1e-6)
    assert bool((cvar <= values + 1e-6).all()) and bool((cvar <= var + 1e-6).all())
    assert th.equal(var, quantiles[:, 1])  # ceil(0.1 * 16) = 2nd smallest
    with pytest.raises(ValueError, match="action masks"):
        model.policy.evaluate_actions_quantiles(model.policy.obs_to_tensor(batch)[0], th.zeros(64, 3), th.ones(64, 2))


def test_mean_mode_keeps_ppos_advantages_and_cvar_mode_replaces_them():
    for risk in ("mean", "cvar"):
        model = QuantilePPO("MlpPolicy", make_vec_env(RiskyBanditEnv, n_envs=2, seed=0), risk=risk, **bandit_kwargs())
        _, callback = model._setup_learn(64, None)
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
        gae = model.rollout_buffer.advantages.copy()
        model._prepare_rollout()
        if risk == "mean":
            np.testing.assert_array_equal(model.rollout_buffer.advantages, gae)
        else:
            assert not np.allclose(model.rollout_buffer.advantages, gae)


# -- what the policy prefers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("risk", ["mean", "cvar"])
def test_one_step_bandit_cvar_takes_the_safe_arm_and_mean_the_risky_one(risk):
    model = train_bandit(risk, seed=0, payoffs=BANDITS["brief"], steps=FAST_STEPS)
    check_preference(risk, p_risky(model, np.ones(1, dtype=np.float32)))


@pytest.mark.slow
@pytest.mark.parametrize("risk", ["mean", "cvar"])
def test_two_step_chain_sees_the_tail_through_the_distributional_bootstrap(risk):
    # gae_lambda = 0: the first step's target is r + gamma Z(next state) alone, so only the critic's
    # distribution at the arm's state (not a sampled payoff) can show the first step the tail
    model = train_bandit(risk, seed=0, payoffs={"win": 2.5}, env_class=TwoArmRiskEnv, gae_lambda=0.0, steps=FAST_STEPS)
    check_preference(risk, p_risky(model, np.array([1.0, 0.0, 0.0], dtype=np.float32)))
    with th.no_grad():
        safe, risky = model.policy.cvar(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32), 0.1).numpy()
    # the critic's CVaR_10%: -10 at the risky arm's state (less once that is no longer visited), 1 at the safe one
    assert risky < safe


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("bandit", sorted(BANDITS))
@pytest.mark.parametrize("risk", sorted(PREFERS_RISKY))
def test_bandit_preference_over_seeds_payoffs_and_risk_modes(risk, bandit, seed):
    model = train_bandit(risk, seed=seed, payoffs=BANDITS[bandit])
    check_preference(risk, p_risky(model, np.ones(1, dtype=np.float32)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("gae_lambda", [0.0, 0.95])
@pytest.mark.parametrize("bandit", ["brief", "rare_tail"])
@pytest.mark.parametrize("risk", ["mean", "cvar"])
def test_two_step_chain_preference_over_seeds_payoffs_and_lambdas(risk, bandit, gae_lambda, seed):
    model = train_bandit(risk, seed=seed, payoffs=BANDITS[bandit], env_class=TwoArmRiskEnv, gae_lambda=gae_lambda)
    check_preference(risk, p_risky(model, np.array([1.0, 0.0, 0.0], dtype=np.float32)))


# -- masks --------------------------------------------------------------------------------------------------------


class MaskAudit(BaseCallback):
    """Records every executed action that its mask forbade (must stay zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid = 0
        self.steps = 0

    def _on_step(self) -> bool:
        self.invalid += sum(bool(info["invalid_action"]) for info in self.locals["infos"])
        self.steps += len(self.locals["infos"])
        return True


@pytest.mark.parametrize("risk", [pytest.param("mean", marks=pytest.mark.slow), "cvar"])
def test_masked_variant_never_takes_the_masked_jackpot_and_keeps_the_preference(risk):
    audit = MaskAudit()
    env = make_vec_env(MaskedRiskyBanditEnv, n_envs=4, seed=0, env_kwargs=BANDITS["brief"])
    model = MaskableQuantilePPO("MlpPolicy", env, risk=risk, seed=0, **bandit_kwargs())
    model.learn(FAST_STEPS, callback=audit)
    assert audit.steps >= FAST_STEPS and audit.invalid == 0
    with th.no_grad():
        obs = th.ones(1, 1)
        masks = np.array([[True, True, False]])
        probs = model.policy.get_distribution(obs, action_masks=masks).distribution.probs[0].numpy()
    assert probs[2] == 0.0
    check_preference(risk, float(probs[1]))


def test_masked_variant_never_takes_a_masked_action_on_masked_trading():
    env = make_vec_env(
        "sb3_trading/MaskedTrading-v0", n_envs=2, seed=0, env_kwargs={"window": 16, "max_drawdown": 0.02, "render_mode": None}
    )
    audit = MaskAudit()
    model = MaskableQuantilePPO(
        "MultiInputPolicy", env, risk="cvar", n_steps=128, batch_size=128, n_epochs=2, seed=0, device="cpu"
    )
    model.learn(2_000, callback=audit)
    assert audit.steps >= 2_000 and audit.invalid == 0


# -- integration --------------------------------------------------------------------------------------------------


def test_works_with_the_transformer_extractor_registry_and_top_level_exports():
    env = gym.make("sb3_trading/MultiAsset-v0", window=8, episode_length=64, random_start=True)
    model = QuantilePPO(
        "MultiInputPolicy",
        env,
        risk="wang",
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={
            "features_extractor_class": TransformerExtractor,
            "features_extractor_kwargs": {"d_model": 16, "n_heads": 2, "n_layers": 1},
            "n_quantiles": 32,
        },
        device="cpu",
    ).learn(128)
    assert isinstance(model.policy.features_extractor, TransformerExtractor)
    assert ALGOS["qppo"] is QuantilePPO and get_algo("quantile_ppo") == ("qppo", QuantilePPO)
    assert sb3_trading.QuantilePPO is QuantilePPO and sb3_trading.MaskableQuantilePPO is MaskableQuantilePPO
    logged = model.logger.name_to_value
    assert "train/std" in logged and "train/risk_value" in logged  # Box actions have a log_std, as in PPO


SAVED = [
    (QuantilePPO, RiskyBanditEnv, {"risk": "mean"}),
    (QuantilePPO, RiskyBanditEnv, {"risk": "cvar", "alpha": 0.2}),
    (QuantilePPO, RiskyBanditEnv, {"risk": "mean_cvar", "alpha": 0.05, "cvar_weight": 0.3}),
    (QuantilePPO, RiskyBanditEnv, {"risk": "wang", "eta": -1.25}),
    (MaskableQuantilePPO, MaskedRiskyBanditEnv, {"risk": "cvar", "alpha": 0.15}),
]


def test_save_load_in_fresh_process_gives_same_actions_for_every_risk_mode(tmp_path):
    cases = []
    for i, (algo, env_class, risk_kwargs) in enumerate(SAVED):
        model = algo(
            "MlpPolicy",
            make_vec_env(env_class, n_envs=2, seed=i),
            n_steps=32,
            batch_size=64,
            n_epochs=2,
            policy_kwargs={"n_quantiles": 9 + i, "net_arch": [8]},
            seed=i,
            device="cpu",
            **risk_kwargs,
        ).learn(64)
        obs = np.linspace(0.0, 1.0, 7, dtype=np.float32)[:, None]
        actions, _ = model.predict(obs, deterministic=True)
        with th.no_grad():
            quantiles = model.policy.predict_quantiles(obs).numpy()
        path = tmp_path / f"model_{i}.zip"
        model.save(path)
        np.savez(tmp_path / f"expected_{i}.npz", obs=obs, actions=actions, quantiles=quantiles)
        expected = {"risk": "mean", "alpha": 0.1, "eta": -0.75, "cvar_weight": 0.5, **risk_kwargs}
        cases.append((algo.__name__, str(path), str(tmp_path / f"expected_{i}.npz"), expected, 9 + i))
    script = textwrap.dedent(
        f"""
        import numpy as np, torch as th
        from sb3_trading import MaskableQuantilePPO, QuantilePPO
        classes = {{"QuantilePPO": QuantilePPO, "MaskableQuantilePPO": MaskableQuantilePPO}}
        for name, path, expected_path, expected, n_quantiles in {cases!r}:
            model = classes[name].load(path, device="cpu")
            got = {{key: getattr(model, key) for key in expected}}
            assert got == expected, (got, expected)
            assert model.risk_measure.risk == expected["risk"] and model.policy.n_quantiles == n_quantiles
            saved = np.load(expected_path)
            actions, _ = model.predict(saved["obs"], deterministic=True)
            np.testing.assert_array_equal(actions, saved["actions"])
            with th.no_grad():
                np.testing.assert_allclose(model.policy.predict_quantiles(saved["obs"]).numpy(), saved["quantiles"], rtol=1e-6)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
