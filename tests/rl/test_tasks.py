"""The episodic tasks against gymnasium's own v5 environments (gymnasium and MuJoCo are dev
dependencies): the same (qpos, qvel) before and after a MuJoCo step give the same observation,
reward and termination, term by term; batched episodes reset ended worlds as documented."""

import numpy as np
import pytest

from simulator.errors import ParameterError
from simulator.rl import BatchedEpisodes, RunningNormalizer, episode_tasks, make_task

gymnasium = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

# gymnasium id, our task, gymnasium options (the ant without the contact terms the package leaves out)
GYMNASIUM = [
    ("Hopper-v5", "hopper", {}),
    ("Walker2d-v5", "walker2d", {}),
    ("HalfCheetah-v5", "half_cheetah", {}),
    ("Ant-v5", "ant", {"contact_cost_weight": 0.0, "include_cfrc_ext_in_observation": False}),
    ("InvertedPendulum-v5", "inverted_pendulum", {}),
]


@pytest.mark.parametrize("env_id, name, options", GYMNASIUM, ids=[g[1] for g in GYMNASIUM])
def test_definitions_match_gymnasium_v5(env_id, name, options):
    """Reference: gymnasium's MuJoCo v5 environments (gymnasium/envs/mujoco/*_v5.py), stepped by
    MuJoCo; our task's functions are evaluated on MuJoCo's own states around each step."""
    env = gymnasium.make(env_id, **options).unwrapped
    task = make_task(name)
    assert task.dt == pytest.approx(env.dt)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    terminated_seen = 0
    distance, speed = [0.0, 0.0], 0.0  # the ant's x distance from our and gymnasium's velocities; the largest |x velocity|
    for step in range(60):
        before = (env.data.qpos.copy()[None], env.data.qvel.copy()[None])
        np.testing.assert_allclose(task.observe(*before)[0], obs, rtol=1e-12, atol=1e-12)
        action = rng.uniform(env.action_space.low, env.action_space.high) * 1.5  # some outside the range: both clip
        obs, reward, terminated, truncated, info = env.step(np.clip(action, env.action_space.low, env.action_space.high))
        after = (env.data.qpos.copy()[None], env.data.qvel.copy()[None])
        ours, terms = task.reward(before, after, np.clip(action, env.action_space.low, env.action_space.high)[None])
        if name == "ant":
            # Ant-v5 measures x_velocity on data.xpos, which mj_step computes before its last
            # integration (one physics substep behind qpos); the task uses qpos, as Hopper-v5 does
            # per step the two differ; over an episode both sum to the distance travelled, to within
            # the motion of one physics substep at each end
            distance[0] += terms["x_velocity"][0] * env.dt
            distance[1] += info["x_velocity"] * env.dt
            speed = max(speed, abs(before[1][0, 0]), abs(after[1][0, 0]))
            ours = ours - terms["reward_forward"] + info["reward_forward"]
            terms = {k: v for k, v in terms.items() if k not in ("reward_forward", "x_velocity")}
        assert ours[0] == pytest.approx(reward, rel=1e-9, abs=1e-9), (step, terms, info)
        for key in ("reward_forward", "reward_ctrl", "reward_survive", "x_velocity"):
            if key in info and key in terms:
                assert terms[key][0] == pytest.approx(info[key], rel=1e-9, abs=1e-9), key
        ended = bool(not task.healthy(*after)[0]) and task.terminate_when_unhealthy
        assert ended == terminated, step
        terminated_seen += terminated
        if terminated:
            obs, _ = env.reset(seed=step)
            if name == "ant":
                break
    if name == "ant":
        assert abs(distance[0] - distance[1]) <= 2 * env.model.opt.timestep * speed + 1e-9
    env.close()


def test_reset_noise_matches_gymnasium_distribution():
    """Hopper-v5 resets to qpos0 + U(-5e-3, 5e-3) and qvel0 + U(-5e-3, 5e-3): our batched reset has
    the same support and moments (10,000 draws; the mean of U(-s, s) has sd s / sqrt(3 N))."""
    episodes = BatchedEpisodes("hopper", 2000, seed=1)
    episodes.reset()
    qpos, qvel = episodes.task.coordinates(episodes.model, episodes.state)
    env = gymnasium.make("Hopper-v5").unwrapped
    env.reset(seed=0)
    s = 5e-3
    for values, initial in ((qpos, env.init_qpos), (qvel, env.init_qvel)):
        noise = values - initial[None]
        assert np.all(np.abs(noise) <= s + 2e-6)  # float32 state
        assert np.all(np.abs(noise.mean(axis=0)) < 4 * s / np.sqrt(3 * 2000))
        np.testing.assert_allclose(noise.var(axis=0), s * s / 3, rtol=0.15)


def test_every_task_steps_finite_and_observes_its_size():
    for name in episode_tasks():
        episodes = BatchedEpisodes(name, 3, seed=0)
        obs = episodes.reset()
        assert obs.shape == (3, episodes.observation_size)
        for _ in range(5):
            obs, reward, terminated, truncated, info = episodes.step(np.zeros((3, episodes.action_size)))
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward)), name
        assert episodes.simulated_steps == 15


def test_ended_worlds_reset_in_the_same_step():
    """Large pushes tip the inverted pendulum past 0.2 rad: the world's episode ends, its last
    observation is in info["final_obs"], the returned observation is a fresh start, and the return
    and length of the ended episode are reported."""
    episodes = BatchedEpisodes("inverted_pendulum", 2, seed=0)
    episodes.reset()
    push = np.array([[3.0], [0.0]])
    for step in range(200):
        obs, reward, terminated, truncated, info = episodes.step(push)
        if terminated[0]:
            break
    assert terminated[0] and not truncated[0]
    assert info["_final_obs"][0] and abs(info["final_obs"][0, 1]) > 0.2
    assert abs(obs[0, 1]) <= 0.01 + 1e-6 and abs(obs[0, 0]) <= 0.01 + 1e-6  # a new start: qpos0 + U(-0.01, 0.01)
    assert info["episode_length"][0] == step + 1
    assert info["episode_return"][0] == pytest.approx(step)  # reward 1 for every step but the failing one
    assert episodes.episode_length[0] == 0


def test_truncation_at_max_episode_steps():
    episodes = BatchedEpisodes("pendulum_swingup", 2, seed=0, max_episode_steps=7)
    episodes.reset()
    for step in range(7):
        _, _, terminated, truncated, info = episodes.step(np.zeros((2, 1)))
    assert truncated.all() and not terminated.any() and np.all(info["episode_length"] == 7)


def test_worlds_draw_their_own_reset_noise():
    """World w's start depends on (seed, w) only, not on how many worlds run beside it."""
    small = BatchedEpisodes("half_cheetah", 1, seed=5).reset()
    large = BatchedEpisodes("half_cheetah", 4, seed=5).reset()
    np.testing.assert_array_equal(small[0], large[0])
    assert not np.array_equal(large[0], large[1])
    again = BatchedEpisodes("half_cheetah", 4, seed=5)
    np.testing.assert_array_equal(again.reset(), large)


def test_bad_actions_name_the_parameter():
    episodes = BatchedEpisodes("pendulum_swingup", 2, seed=0)
    with pytest.raises(ParameterError, match="reset"):
        episodes.step(np.zeros((2, 1)))
    episodes.reset()
    with pytest.raises(ParameterError, match=r"actions must have shape \(2, 1\)"):
        episodes.step(np.zeros((2, 2)))
    with pytest.raises(ParameterError, match="actions must be finite.*world 1"):
        episodes.step(np.array([[0.0], [np.nan]]))
    with pytest.raises(ParameterError, match="task must be one of"):
        make_task("humanoid_dance")


def test_running_normalizer_matches_the_batch_statistics():
    """Known answer: after updates with several batches, mean and variance equal numpy's over their
    concatenation; normalised data has mean 0 and variance 1."""
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=[1.0, -2.0, 50.0], scale=[0.1, 3.0, 10.0], size=(n, 3)) for n in (1, 7, 100, 33)]
    norm = RunningNormalizer(3, clip=None)
    for batch in batches:
        norm.update(batch)
    data = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(norm.var, data.var(axis=0), rtol=1e-10)
    z = norm.normalize(data)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.var(axis=0), 1.0, rtol=1e-6)
    restored = RunningNormalizer(3, clip=None)
    restored.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(restored.normalize(data), z)
    clipped = RunningNormalizer(3, clip=2.0)
    clipped.load_state_dict(norm.state_dict())
    assert np.abs(clipped.normalize(data)).max() <= 2.0
    with pytest.raises(ParameterError, match="batch must have 3 values per row"):
        norm.update(np.zeros((4, 2)))
