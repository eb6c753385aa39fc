"""A built-in pushing task: an agent pushes an object toward a goal in a small RGB arena.

Procedurally generated, numpy only, no download, deterministic for a seed. The arena is the unit
square (x right, y down). A red square agent moves under continuous 2-D velocity actions; a blue
disc object is pushed out of the agent's way on contact (disc-disc contact, pushed along the
contact normal) and both are clipped to the arena; a green disc marks the goal. A scripted noisy
policy acts once per recorded frame (the action is held for `frame_skip` simulation steps): it
walks to the point behind the object on the goal line, going around the object when it is on the
wrong side, then pushes toward the goal. Smooth (AR(1)) noise makes actions vary but stay
predictable from the positions and the previous velocity. Each episode first runs a random
number (0..BURN_IN) of unrecorded frames, so clips show every phase: approach, push, arrival.

Shape glossary: T = n_frames, S = image_size.
    video   (T, 3, S, S) in [-1, 1]    frame t shows the state at recorded frame t
    action  (T, 2) in [-1, 1]          action taken after observing frame t (agent velocity /
                                       MAX_SPEED, held for frame_skip steps)
    proprio (T, 4) in [-1, 1]          agent (x, y) * 2 - 1 and its mean velocity over the frame
                                       that led to frame t, / MAX_SPEED, clipped to [-1, 1]
                                       (zero before the first simulated frame)
    reward  (T, 1) in [0, 1]           1 - |object - goal| / sqrt(2) at frame t
    state   agent_xy, object_xy, goal_xy (T, 2) in [0, 1], arena units (only with return_state)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from canvas_engineering.errors import bad, check_int

AGENT_R, OBJECT_R, GOAL_R = 0.06, 0.09, 0.12  # arena units; contact uses discs of these radii
MAX_SPEED = 0.05  # arena units per simulation step at |action component| = 1
BURN_IN = 15  # most unrecorded frames before the clip starts
NOISE_RHO = 0.7  # AR(1) coefficient of the policy noise, per recorded frame
COLOURS = {"background": (0.1, 0.1, 0.12), "goal": (0.2, 0.75, 0.3),
           "object": (0.25, 0.45, 1.0), "agent": (1.0, 0.3, 0.2)}


@dataclass(frozen=True)
class PushConfig:
    """How episodes of the push task are recorded: clip length, image size, speed of motion."""

    n_frames: int = 5  # frames per episode clip
    image_size: int = 24  # S: frames are S x S RGB
    action_dim: int = 2  # fixed by the task: a 2-D velocity
    proprio_dim: int = 4  # fixed by the task: agent position and velocity
    frame_skip: int = 2  # simulation steps per recorded frame (makes motion visible)
    policy_noise: float = 0.3  # std of the smooth noise added to the scripted actions

    def __post_init__(self):
        check_int("PushConfig.n_frames", self.n_frames, 1)
        check_int("PushConfig.image_size", self.image_size, 8)
        check_int("PushConfig.frame_skip", self.frame_skip, 1)
        for field, fixed, what in (("action_dim", 2, "the agent's 2-D velocity"),
                                   ("proprio_dim", 4, "agent position and velocity")):
            if getattr(self, field) != fixed:
                raise bad(f"PushConfig.{field}", getattr(self, field), f"{fixed} ({what})")
        noise = self.policy_noise
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) \
                or not np.isfinite(noise) or noise < 0:
            raise bad("PushConfig.policy_noise", noise, "a finite float >= 0")


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.zeros_like(v)


def sim_step(agent, obj, action):
    """One simulation step: agent, obj (2,) positions, action (2,) in [-1, 1] -> (agent, obj)."""
    agent = np.clip(agent + action * MAX_SPEED, AGENT_R, 1 - AGENT_R)
    contact, d = AGENT_R + OBJECT_R, obj - agent
    if np.linalg.norm(d) < contact:
        # Push the object out along the contact normal (the motion direction if centres meet).
        n = _unit(d) if np.linalg.norm(d) > 1e-9 else _unit(action + 1e-6)
        obj = np.clip(agent + n * contact, OBJECT_R, 1 - OBJECT_R)
        d = agent - obj
        if np.linalg.norm(d) < contact:  # object stuck at a wall: the agent stops at its edge
            agent = np.clip(obj + _unit(d) * contact, AGENT_R, 1 - AGENT_R)
    return agent, obj


def scripted_action(agent, obj, goal) -> np.ndarray:
    """The noise-free policy: reach the point behind the object, then push it to the goal.
    All inputs (2,) arena positions; returns (2,) in [-1, 1]."""
    u = _unit(goal - obj)
    if np.linalg.norm(goal - obj) < 0.02:
        return np.zeros(2)  # delivered: stand still
    # Behind the object on the goal line; kept inside the arena, so an object against a wall is
    # first pushed along the wall until the agent can get behind it.
    behind = np.clip(obj - u * (AGENT_R + OBJECT_R + 0.02), AGENT_R, 1 - AGENT_R)
    to_behind = behind - agent
    if np.linalg.norm(to_behind) < 0.05:
        # Aligned: push along the goal line, steering back onto it.
        return np.clip(0.8 * u + 5.0 * to_behind, -1, 1)
    target, r = behind, agent - obj
    if np.dot(r, u) > -0.5 * OBJECT_R:
        # Level with or ahead of the object: go round it via a waypoint beside it (on the
        # agent's side unless a wall leaves no room there) instead of pushing it backwards.
        contact, side = AGENT_R + OBJECT_R + 0.04, np.array([-u[1], u[0]])
        s = 1.0 if np.dot(r, side) >= 0 else -1.0
        for sign in (s, -s):
            target = np.clip(obj + sign * side * contact - 0.5 * contact * u, AGENT_R, 1 - AGENT_R)
            if np.linalg.norm(target - obj) > AGENT_R + OBJECT_R:
                break
    to_target = target - agent
    desired = to_target / max(np.linalg.norm(to_target), 0.06)  # slows down near the target
    return np.clip(desired, -1, 1)


def render(agent, obj, goal, size: int) -> np.ndarray:
    """Draw one frame: (3, size, size) in [-1, 1], anti-aliased so sub-pixel motion shows."""
    c = (np.arange(size) + 0.5) / size
    x, y = c[None, :], c[:, None]  # pixel centres; rows are y

    def disc(p, r):
        return np.clip((r - np.hypot(x - p[0], y - p[1])) * size + 0.5, 0, 1)

    def square(p, h):
        return np.clip((h - np.maximum(abs(x - p[0]), abs(y - p[1]))) * size + 0.5, 0, 1)

    img = np.broadcast_to(np.array(COLOURS["background"])[:, None, None], (3, size, size))
    for name, cover in (("goal", disc(goal, GOAL_R)), ("object", disc(obj, OBJECT_R)),
                        ("agent", square(agent, AGENT_R))):
        colour = np.array(COLOURS[name])[:, None, None]
        img = img * (1 - cover) + colour * cover
    return img * 2 - 1


def _start(rng: np.random.Generator):
    """Random agent, object and goal positions: object away from goal, agent clear of object."""
    while True:
        agent, obj, goal = rng.uniform(0.12, 0.88, size=(3, 2))
        if np.linalg.norm(obj - goal) > 0.3 and \
                np.linalg.norm(agent - obj) > AGENT_R + OBJECT_R + 0.05:
            return agent, obj, goal


@dataclass
class PushState:
    """The simulator's whole state at a recorded frame, before the frame's action: positions
    (2,) in arena units, the agent's mean velocity over the frame that led here (2,), and the
    policy noise (2,) the frame's action adds to the scripted action."""

    agent: np.ndarray
    obj: np.ndarray
    goal: np.ndarray
    velocity: np.ndarray
    noise: np.ndarray

    def action(self) -> np.ndarray:
        return np.clip(scripted_action(self.agent, self.obj, self.goal) + self.noise, -1, 1)

    def frame(self, action: np.ndarray, size: int) -> dict[str, np.ndarray]:
        """What frame t records (see the module glossary), given its action."""
        return {"video": render(self.agent, self.obj, self.goal, size), "action": action,
                "proprio": np.concatenate([self.agent * 2 - 1, self.velocity]),
                "reward": np.array([1 - np.linalg.norm(self.obj - self.goal) / np.sqrt(2)]),
                "agent_xy": self.agent, "object_xy": self.obj}

    def moved(self, action: np.ndarray, frame_skip: int) -> PushState:
        """The state one recorded frame later, before the next noise is drawn."""
        agent, obj = self.agent, self.obj
        for _ in range(frame_skip):
            agent, obj = sim_step(agent, obj, action)
        velocity = np.clip((agent - self.agent) / (MAX_SPEED * frame_skip), -1, 1)
        return PushState(agent, obj, self.goal, velocity, self.noise)

    def next_noise(self, rng: np.random.Generator, scale: float) -> PushState:
        """The same state with the policy noise advanced one frame (AR(1))."""
        noise = NOISE_RHO * self.noise + np.sqrt(1 - NOISE_RHO**2) * rng.normal(0, scale, size=2)
        return PushState(self.agent, self.obj, self.goal, self.velocity, noise)


def _episode_states(seed: int, config: PushConfig):
    """(rng, the state at recorded frame 0): the start and the unrecorded burn-in frames."""
    rng = np.random.default_rng(int(seed))
    agent, obj, goal = _start(rng)
    state = PushState(agent, obj, goal, np.zeros(2), rng.normal(0, config.policy_noise, size=2))
    for _ in range(int(rng.integers(0, BURN_IN + 1))):
        state = state.moved(state.action(), config.frame_skip).next_noise(rng,
                                                                          config.policy_noise)
    return rng, state


def _stack(frames: list[dict], goal: np.ndarray, return_state: bool) -> dict[str, np.ndarray]:
    out = {k: np.asarray([f[k] for f in frames], dtype=np.float32) for k in frames[0]}
    if not return_state:
        return {k: out[k] for k in ("video", "action", "proprio", "reward")}
    out["goal_xy"] = np.tile(goal.astype(np.float32), (len(frames), 1))
    return out


def make_episode(seed: int, config: PushConfig = PushConfig(), *,
                 return_state: bool = False) -> dict[str, np.ndarray]:
    """Deterministic for (seed, config). Returns float32 arrays "video" (T, 3, S, S), "action"
    (T, 2), "proprio" (T, 4), "reward" (T, 1) (see the module glossary); with `return_state`
    also "agent_xy", "object_xy", "goal_xy" (T, 2) in arena units."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise bad("seed", seed, "an int >= 0")
    if not isinstance(config, PushConfig):
        raise bad("config", config, "a PushConfig")
    rng, state = _episode_states(seed, config)
    frames = []
    for _ in range(config.n_frames):
        action = state.action()
        frames.append(state.frame(action, config.image_size))
        state = state.moved(action, config.frame_skip).next_noise(rng, config.policy_noise)
    return _stack(frames, state.goal, return_state)


def future_mean(seed: int, config: PushConfig, t_from: int, *, samples: int = 64,
                sample_seed: int = 0) -> dict[str, np.ndarray]:
    """E[frames t_from.. of episode `seed` | the simulator's true state at frame t_from - 1],
    by Monte Carlo over the policy noise still to be drawn (`samples` futures, generator
    `sample_seed`). Frames before t_from are the episode's own. The best any predictor of the
    future can do in mean squared error given the context, up to the Monte Carlo error (its
    variance / samples). Same keys and shapes as `make_episode`."""
    check_int("t_from", t_from, 1)
    if t_from > config.n_frames:
        raise bad("t_from", t_from, f"at most n_frames={config.n_frames}")
    check_int("samples", samples, 1)
    rng, state = _episode_states(seed, config)
    frames = []
    for _ in range(t_from):  # the context: the episode as recorded
        action = state.action()
        frames.append(state.frame(action, config.image_size))
        last = state.moved(action, config.frame_skip)
        state = last.next_noise(rng, config.policy_noise)
    mc = np.random.default_rng(sample_seed)
    futures = []
    for _ in range(samples):
        state, future = last.next_noise(mc, config.policy_noise), []
        for _ in range(config.n_frames - t_from):
            action = state.action()
            future.append(state.frame(action, config.image_size))
            state = state.moved(action, config.frame_skip).next_noise(mc, config.policy_noise)
        futures.append(future)
    mean = [{k: np.mean([f[t][k] for f in futures], axis=0) for k in frames[0]}
            for t in range(config.n_frames - t_from)]
    return _stack(frames + mean, state.goal, return_state=False)


class PushDataset(torch.utils.data.Dataset):
    """`num_episodes` push episodes generated on the fly; item i is make_episode(seed * 1_000_003
    + i) as float32 tensors with the same keys and shapes. Held-out data: use another seed.

    Generated episodes are kept in memory, up to `cache_mib` MiB (0: none), so an episode is
    simulated and drawn once however often a run draws it: generating was 29 of the 280 ms of a
    training step of the main job (batch 32), whose 4,096 episodes take 136 MiB. Items are
    copies: changing one leaves the dataset as it was.
    """

    def __init__(self, num_episodes: int, *, seed: int = 0, config: PushConfig = PushConfig(),
                 cache_mib: int = 1024):
        check_int("num_episodes", num_episodes, 1)
        check_int("seed", seed, 0)
        check_int("cache_mib", cache_mib, 0)
        self.num_episodes, self.seed, self.config = num_episodes, seed, config
        self._cache: dict[int, dict[str, np.ndarray]] = {}
        self._room = cache_mib * 2**20  # bytes the cache may still take

    def __len__(self) -> int:
        return self.num_episodes

    def episode_seed(self, i: int) -> int:
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode index {i} out of range for {self.num_episodes} episodes")
        return self.seed * 1_000_003 + i % self.num_episodes

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        seed = self.episode_seed(i)
        episode = self._cache.get(seed)
        if episode is None:
            episode = make_episode(seed, self.config)
            size = sum(v.nbytes for v in episode.values())
            if size <= self._room:
                self._cache[seed], self._room = episode, self._room - size
        return {k: torch.from_numpy(v.copy()) for k, v in episode.items()}

    def future_mean(self, i: int, t_from: int, samples: int = 64) -> dict[str, torch.Tensor]:
        """The task's floor for item i: `future_mean` of its episode, as tensors."""
        mean = future_mean(self.episode_seed(i), self.config, t_from, samples=samples,
                           sample_seed=self.episode_seed(i))
        return {k: torch.from_numpy(v) for k, v in mean.items()}
