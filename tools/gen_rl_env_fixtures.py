#!/usr/bin/python3
"""Reference trajectories of the classic-control environments for
tests/rl/test_env_classic.c.

Run:  /usr/bin/python3 tools/gen_rl_env_fixtures.py

Writes tests/fixtures/rl/classic.safetensors. The dynamics below are a
transcription of gymnasium's published equations (gymnasium/envs/
classic_control/{cartpole,acrobot,mountain_car,pendulum}.py: constants, order
of operations, clipping, wrapping, rewards, termination), written for this
script and independent of Cortex's C code. Scalar sines and cosines use Python's
math module (the C library's, as gymnasium's cartpole does); everything is
float64, as gymnasium under numpy 1.x.

Each episode E = "<env>.<k>" starts from a fixed state and follows a fixed
action sequence (random-ish, or a simple hand policy) until the episode ends:
terminated, or cut by the time limit (500 / 500 / 200 / 200 steps). Tensors:

    E.start         [D]    the start state (float64 bit patterns, see below)
    E.actions       [T]    I64 action indices, or F32 torques (Pendulum, before
                           clipping: some are out of [-2, 2])
    E.states        [T, D] the state after each step (float64 bit patterns)
    E.obs           [T, O] F32 observations after each step (gymnasium's float32)
    E.rewards       [T]    rewards (float64 bit patterns)
    E.terminated    [T]    U8

The reader of Cortex converts F64 tensors to F32, so doubles are stored as I64
tensors holding their IEEE-754 bit patterns (torch's view(int64)); the test
reinterprets them. Metadata: "<env>.episodes" = how many episodes, and
"E.spec" = the Cortex spec to make the environment with (settings included,
e.g. "pendulum:g=9.81").
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "rl", "classic.safetensors")
PI = math.pi


# ---- CartPole-v1 (Florian 2007 equations, explicit Euler, tau = 0.02) ------
def cartpole_step(state, action):
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    x, x_dot, theta, theta_dot = state
    force = force_mag if action == 1 else -force_mag
    costheta, sintheta = math.cos(theta), math.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (length * (4.0 / 3.0 - masspole * costheta**2 / total_mass))
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    x = x + tau * x_dot
    x_dot = x_dot + tau * xacc
    theta = theta + tau * theta_dot
    theta_dot = theta_dot + tau * thetaacc
    theta_threshold = 12 * 2 * math.pi / 360
    terminated = x < -2.4 or x > 2.4 or theta < -theta_threshold or theta > theta_threshold
    return [x, x_dot, theta, theta_dot], list(np.array([x, x_dot, theta, theta_dot], dtype=np.float32)), 1.0, terminated


# ---- Acrobot-v1 ("book" dynamics, one RK4 step over [0, 0.2]) --------------
def acrobot_dsdt(s_augmented):
    m1, m2, l1, lc1, lc2, I1, I2, g = 1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 9.8
    a = s_augmented[-1]
    theta1, theta2, dtheta1, dtheta2 = s_augmented[:-1]
    d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * math.cos(theta2)) + I1 + I2
    d2 = m2 * (lc2**2 + l1 * lc2 * math.cos(theta2)) + I2
    phi2 = m2 * lc2 * g * math.cos(theta1 + theta2 - PI / 2.0)
    phi1 = (-m2 * l1 * lc2 * dtheta2**2 * math.sin(theta2) - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * math.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * math.cos(theta1 - PI / 2) + phi2)
    ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * math.sin(theta2) - phi2) / (m2 * lc2**2 + I2 - d2**2 / d1)
    ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    return np.array([dtheta1, dtheta2, ddtheta1, ddtheta2, 0.0])


def rk4(derivs, y0, t):
    y0 = np.asarray(y0, dtype=np.float64)
    dt = t[1] - t[0]
    dt2 = dt / 2.0
    k1 = derivs(y0)
    k2 = derivs(y0 + dt2 * k1)
    k3 = derivs(y0 + dt2 * k2)
    k4 = derivs(y0 + dt * k3)
    return (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:4]


def wrap(x, m, M):
    diff = M - m
    while x > M:
        x = x - diff
    while x < m:
        x = x + diff
    return x


def acrobot_step(state, action):
    torque = [-1.0, 0.0, +1.0][action]
    ns = rk4(acrobot_dsdt, list(state) + [torque], [0, 0.2])
    ns = [float(v) for v in ns]
    ns[0] = wrap(ns[0], -PI, PI)
    ns[1] = wrap(ns[1], -PI, PI)
    ns[2] = min(max(ns[2], -4 * PI), 4 * PI)
    ns[3] = min(max(ns[3], -9 * PI), 9 * PI)
    terminated = -math.cos(ns[0]) - math.cos(ns[1] + ns[0]) > 1.0
    obs = np.array([math.cos(ns[0]), math.sin(ns[0]), math.cos(ns[1]), math.sin(ns[1]), ns[2], ns[3]], dtype=np.float32)
    return ns, list(obs), 0.0 if terminated else -1.0, terminated


# ---- MountainCar-v0 ---------------------------------------------------------
def mountaincar_step(state, action, goal_velocity=0.0):
    min_position, max_position, max_speed, goal_position, force, gravity = -1.2, 0.6, 0.07, 0.5, 0.001, 0.0025
    position, velocity = state
    velocity += (action - 1) * force + math.cos(3 * position) * (-gravity)
    velocity = float(np.clip(velocity, -max_speed, max_speed))
    position += velocity
    position = float(np.clip(position, min_position, max_position))
    if position == min_position and velocity < 0:
        velocity = 0.0
    terminated = position >= goal_position and velocity >= goal_velocity
    return [position, velocity], list(np.array([position, velocity], dtype=np.float32)), -1.0, terminated


# ---- Pendulum-v1 (semi-implicit Euler, dt = 0.05) ---------------------------
def angle_normalize(x):
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def pendulum_step(state, u, g=10.0):
    max_speed, max_torque, dt, m, l = 8, 2.0, 0.05, 1.0, 1.0
    th, thdot = state
    u = float(np.clip(np.array([u], dtype=np.float32), -max_torque, max_torque)[0])
    costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
    newthdot = thdot + (3 * g / (2 * l) * math.sin(th) + 3.0 / (m * l**2) * u) * dt
    newthdot = float(np.clip(newthdot, -max_speed, max_speed))
    newth = th + newthdot * dt
    obs = np.array([math.cos(newth), math.sin(newth), newthdot], dtype=np.float32)
    return [newth, newthdot], list(obs), -costs, False


# ---- episodes ----------------------------------------------------------------
def run(step, start, policy, limit, **kw):
    """policy(t, state) -> action. Returns the per-step records until the end."""
    state, rec = list(start), []
    for t in range(limit):
        a = policy(t, state)
        state, obs, r, term = step(state, a, **kw)
        rec.append((a, list(state), obs, r, term))
        if term:
            break
    return rec


def bits(x):
    return torch.from_numpy(np.asarray(x, dtype=np.float64).copy()).view(torch.int64)


def main():
    rng = np.random.RandomState(2024)
    rand_actions = lambda n, k: [int(v) for v in rng.randint(0, n, size=k)]  # noqa: E731
    eps = {"cartpole": [], "acrobot": [], "mountaincar": [], "pendulum": []}

    # CartPole: random pushes (falls), pushes in bursts (falls), and a
    # balancing hand policy that lasts the 500 steps (truncated).
    ra = rand_actions(2, 500)
    eps["cartpole"].append(("cartpole", cartpole_step, [0.01, -0.02, 0.03, 0.04], lambda t, s: ra[t], 500, {}))
    eps["cartpole"].append(("cartpole", cartpole_step, [-0.04, 0.03, -0.02, 0.01], lambda t, s: (t // 4) % 2, 500, {}))
    eps["cartpole"].append(("cartpole", cartpole_step, [0.02, 0.0, -0.03, 0.0],
                            lambda t, s: int(s[2] + 0.5 * s[3] + 0.01 * s[0] + 0.05 * s[1] > 0), 500, {}))
    # Acrobot: torque along dtheta1 + dtheta2 / 2 pumps energy (reaches the bar), random
    # torques (500 steps, truncated), and a fast spinning start that
    # exercises the wrap of the angles and the bound of the velocities.
    eps["acrobot"].append(("acrobot", acrobot_step, [0.05, -0.03, 0.02, 0.01],
                           lambda t, s: 2 if s[2] + 0.5 * s[3] >= 0 else 0, 500, {}))
    ra2 = rand_actions(3, 500)
    eps["acrobot"].append(("acrobot", acrobot_step, [-0.08, 0.06, -0.01, 0.09], lambda t, s: ra2[t], 500, {}))
    eps["acrobot"].append(("acrobot", acrobot_step, [0.3, -2.9, 12.0, 27.0], lambda t, s: 2 - (t // 7) % 3, 500, {}))
    # MountainCar: push along the velocity (hits the left wall, reaches the goal), always left
    # (the left wall; truncated), random (truncated), and goal_velocity=0.01.
    eps["mountaincar"].append(("mountaincar", mountaincar_step, [-0.58, 0.0], lambda t, s: 2 if s[1] >= 0 else 0, 200, {}))
    eps["mountaincar"].append(("mountaincar", mountaincar_step, [-0.45, 0.0], lambda t, s: 0, 200, {}))
    ra3 = rand_actions(3, 200)
    eps["mountaincar"].append(("mountaincar", mountaincar_step, [-0.55, 0.0], lambda t, s: ra3[t], 200, {}))
    eps["mountaincar"].append(("mountaincar:goal_velocity=0.01", mountaincar_step, [-0.42, 0.0],
                               lambda t, s: 2 if s[1] >= 0 else 0, 200, {"goal_velocity": 0.01}))
    # Pendulum: varying torques, some beyond [-2, 2] (clipped), from a start
    # beyond 2 pi (angle_normalize), a fast start held by full torque (the
    # speed clip at 8), and g = 9.81.
    tq = [float(np.float32(3.0 * math.sin(0.17 * t) + (2.5 if t % 13 == 0 else 0.0) - (6.0 if t % 29 == 0 else 0.0)))
          for t in range(200)]
    eps["pendulum"].append(("pendulum", pendulum_step, [7.4, -0.6], lambda t, s: tq[t], 200, {}))
    eps["pendulum"].append(("pendulum", pendulum_step, [-1.0, 7.9], lambda t, s: 2.0, 200, {}))
    tq2 = [float(v) for v in rng.uniform(-2.6, 2.6, size=200).astype(np.float32)]
    eps["pendulum"].append(("pendulum:g=9.81", pendulum_step, [3.0, 0.5], lambda t, s: tq2[t], 200, {"g": 9.81}))

    tensors, meta = [], {}
    for env, lst in eps.items():
        meta[env + ".episodes"] = str(len(lst))
        for k, (spec, step, start, policy, limit, kw) in enumerate(lst):
            rec = run(step, start, policy, limit, **kw)
            name = "%s.%d" % (env, k)
            meta[name + ".spec"] = spec
            acts = [r[0] for r in rec]
            tensors.append((name + ".start", bits(start)))
            if env == "pendulum":
                tensors.append((name + ".actions", torch.tensor(acts, dtype=torch.float32)))
            else:
                tensors.append((name + ".actions", torch.tensor(acts, dtype=torch.int64)))
            tensors.append((name + ".states", bits([r[1] for r in rec])))
            tensors.append((name + ".obs", torch.from_numpy(np.array([r[2] for r in rec], dtype=np.float32))))
            tensors.append((name + ".rewards", bits([r[3] for r in rec])))
            tensors.append((name + ".terminated", torch.tensor([int(r[4]) for r in rec], dtype=torch.uint8)))
            states = np.array([r[1] for r in rec])
            note = ""
            if env == "pendulum":
                note = " max|thdot|=%.3f clipped torques=%d" % (np.abs(states[:, 1]).max(), sum(abs(a) > 2 for a in acts))
            if env == "acrobot":
                note = " max|dth1|=%.2f max|dth2|=%.2f" % (np.abs(states[:, 2]).max(), np.abs(states[:, 3]).max())
            if env == "mountaincar":
                note = " min position=%.3f" % states[:, 0].min()
            print("%-32s %3d steps, %s%s" % (meta[name + ".spec"] + " #%d" % k, len(rec),
                                           "terminated" if rec[-1][4] else ("truncated" if len(rec) == limit else "?"), note))
    safetensors_py.write(OUT, tensors, meta)
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
