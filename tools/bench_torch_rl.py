#!/usr/bin/python3
"""PyTorch side of bench/bench_rl.c: CartPole-v1 and the four agents of
src/rl/agent_pg.c and src/rl/agent_dqn.c with their cx_rl_defaults, in
plain PyTorch + numpy, measured the same way. Run with
OPENBLAS_NUM_THREADS=<threads>:

  /usr/bin/python3 tools/bench_torch_rl.py [threads] [--what env,train,solve]
      [--env-steps 1000000] [--steps reinforce=N,a2c=N,ppo=N,dqn=N,dqn_catch=N]
      [--solve-algos reinforce,a2c,ppo] [--solve-max 500000] [--seed 1] [--seeds 5]
Prints the lines of bench_rl with a TORCH_ prefix:
  TORCH_RL_ENV kind=single threads=1 steps_per_s=...
  TORCH_RL_TRAIN algo=a2c threads=1 steps_per_s=...
  TORCH_RL_SOLVE algo=ppo threads=1 seed=1 solved=1 seconds=... steps=...

The environment is gymnasium's CartPole-v1 (gymnasium/envs/classic_control/
cartpole.py: its constants, Euler step on Python floats with math.cos/sin,
the state reset from the generator's uniform(-0.05, 0.05, 4), float32
observations, reward 1 per step, the 500-step TimeLimit), written out here
(without gymnasium's checker wrappers) so that the measurement is of the
same environment, not of gymnasium's wrapper stack. VecEnv steps n copies
with same-step autoreset (as cx_vec_env and gymnasium's SAME_STEP mode):
the row of a finished copy holds its next episode's first observation and
its last observation is returned separately.

The agents follow Cortex's code step for step: acting under torch.no_grad
on the batch of current observations (one [n, 4] tensor per step), log pi
of the taken actions recomputed on the stored batch at the update,
truncated episodes bootstrapped from V of their last observation, GAE,
the same losses (score function / clipped surrogate + vf_coef * MSE, Huber
for DQN), the same optimisers (RMSprop for A2C, Adam otherwise) and
gradient-norm clipping, and the same update structure (REINFORCE: one
update per batch of 8 lock-step episodes; A2C: 8 x 5 steps per update;
PPO: 8 x 32 steps, 20 epochs of minibatch 256; DQN: an update every env
step after 1000, Double DQN, hard target every 500 steps). dqn_catch: DQN
from pixels on Catch-v0 (bsuite's catch, as src/rl/env_catch.c) with
cx_rl_defaults(DQN, "Catch-v0"): two 3x3 convolutions (16, 32 channels,
padding 1, ReLU), 128 hidden, 3 actions; updates from step 500, target
copy every 250 steps.
"""
import argparse
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALGOS = ['reinforce', 'a2c', 'ppo', 'dqn', 'dqn_catch']


# ---- CartPole-v1, as gymnasium's cartpole.py ---------------------------------------------

class CartPole:
    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    max_episode_steps = 500
    obs_shape = (4,)
    n_actions = 2

    def __init__(self, seed):
        self.np_random = np.random.default_rng(seed)
        self.state = None
        self.elapsed = 0
        self.ep_return = 0.0

    def reset(self):
        self.state = self.np_random.uniform(low=-0.05, high=0.05, size=(4,))
        self.steps_beyond_terminated = None
        self.elapsed = 0
        self.ep_return = 0.0
        return np.array(self.state, dtype=np.float32)

    def step(self, action):
        assert action == 0 or action == 1, f'{action!r} invalid'
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta = math.cos(theta)
        sintheta = math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = (x, x_dot, theta, theta_dot)
        terminated = bool(x < -self.x_threshold or x > self.x_threshold
                          or theta < -self.theta_threshold_radians or theta > self.theta_threshold_radians)
        if not terminated:
            reward = 1.0
        elif self.steps_beyond_terminated is None:
            self.steps_beyond_terminated = 0
            reward = 1.0
        else:
            self.steps_beyond_terminated += 1
            reward = 0.0
        # gymnasium's TimeLimit(500)
        self.elapsed += 1
        truncated = self.elapsed >= self.max_episode_steps
        self.ep_return += reward
        return np.array(self.state, dtype=np.float32), reward, terminated, truncated


# ---- Catch-v0, as bsuite's catch.py (src/rl/env_catch.c) ------------------------------------

class Catch:
    """10 x 5 board: the ball starts in row 0 at a random column and falls one row
    per step; the paddle (bottom row, starting at column 2) moves left/stay/right
    first, clipped at the walls. Reward +1 or -1 when the ball reaches the bottom
    row (the episode ends there, after 9 steps). Observation [1, 10, 5], float32,
    1 at the ball's and the paddle's pixels."""
    rows, cols = 10, 5
    obs_shape = (1, 10, 5)
    n_actions = 3

    def __init__(self, seed):
        self.np_random = np.random.default_rng(seed)
        self.ep_return = 0.0

    def observe(self):
        o = np.zeros(self.obs_shape, dtype=np.float32)
        o[0, self.ball_row, self.ball_col] = 1.0
        o[0, self.rows - 1, self.paddle_col] = 1.0
        return o

    def reset(self):
        self.ball_row = 0
        self.ball_col = int(self.np_random.integers(0, self.cols))
        self.paddle_col = self.cols // 2
        self.ep_return = 0.0
        return self.observe()

    def step(self, action):
        assert action in (0, 1, 2), f'{action!r} invalid'
        self.paddle_col = min(max(self.paddle_col + action - 1, 0), self.cols - 1)
        self.ball_row += 1
        terminated = self.ball_row == self.rows - 1
        reward = (1.0 if self.paddle_col == self.ball_col else -1.0) if terminated else 0.0
        self.ep_return += reward
        return self.observe(), reward, terminated, False


class VecEnv:
    """n copies stepped together, same-step autoreset. step() returns obs [n, 4]
    (float32), rewards [n], terminated [n], truncated [n], and {i: last
    observation} for the copies whose episode ended; finished episode returns
    are appended to self.finished."""

    def __init__(self, n, seed, env=CartPole):
        self.envs = [env(seed + i) for i in range(n)]
        self.obs_shape = env.obs_shape
        self.n = n
        self.finished = []

    def reset(self):
        return np.stack([e.reset() for e in self.envs])

    def step(self, actions):
        n = self.n
        obs = np.empty((n,) + self.obs_shape, dtype=np.float32)
        rew = np.empty(n, dtype=np.float32)
        term = np.empty(n, dtype=bool)
        trunc = np.empty(n, dtype=bool)
        final = {}
        for i, (e, a) in enumerate(zip(self.envs, actions)):
            o, r, te, tr = e.step(a)
            rew[i] = r
            term[i] = te
            trunc[i] = tr
            if te or tr:
                final[i] = o
                self.finished.append(e.ep_return)
                o = e.reset()
            obs[i] = o
        return obs, rew, term, trunc, final


# ---- agents -----------------------------------------------------------------------------

def defaults(algo):
    c = dict(hidden=(64, 64), act=nn.Tanh, gamma=0.99, max_grad_norm=0.5, n_envs=8, n_steps=5, gae_lambda=1.0,
             vf_coef=0.5, ent_coef=0.0, n_epochs=10, minibatch=64, clip=0.2, norm_adv=False, buffer_size=50000,
             batch_size=64, learning_starts=1000, train_freq=1, target_update=500, eps_start=1.0, eps_end=0.05,
             eps_decay=10000)
    if algo == 'reinforce':
        c.update(lr=3e-3, norm_adv=True, max_grad_norm=1.0)
    elif algo == 'a2c':
        c.update(lr=7e-4)
    elif algo == 'ppo':
        c.update(lr=1e-3, n_steps=32, minibatch=256, n_epochs=20, gae_lambda=0.8, gamma=0.98, norm_adv=True)
    else:
        c.update(lr=1e-3, n_envs=1, hidden=(128, 128), act=nn.ReLU, max_grad_norm=10.0)
    if algo == 'dqn_catch':  # cx_rl_defaults(DQN, "Catch-v0")
        c.update(hidden=(128,), eps_decay=5000, learning_starts=500, buffer_size=20000, target_update=250)
    return c


def mlp(sizes, act):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def normalized(x):
    return (x - x.mean()) / (x.std() + 1e-8)


class Agent:
    def __init__(self, algo, seed):
        self.algo = algo
        self.c = c = defaults(algo)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.pyrng = random.Random(seed)
        self.steps = self.updates = 0
        self.seconds = 0.0
        self.recent = []
        self.last_loss = float('nan')
        env = Catch if algo == 'dqn_catch' else CartPole
        self.venv = VecEnv(c['n_envs'], seed * 1000, env)
        self.obs = self.venv.reset()
        self.n_actions = env.n_actions
        if algo == 'dqn_catch':  # src/rl/agent.c make_net: two 3x3 convolutions, then the MLP
            H, W = env.obs_shape[1:]
            net = lambda: nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1),
                                        nn.ReLU(), nn.Flatten(),
                                        mlp((32 * H * W,) + tuple(c['hidden']) + (env.n_actions,), c['act']))
        else:
            net = lambda: mlp((4,) + tuple(c['hidden']) + (env.n_actions,), c['act'])
        sizes = (4,) + tuple(c['hidden'])
        if algo.startswith('dqn'):
            self.q = net()
            self.q_target = net()
            self.q_target.load_state_dict(self.q.state_dict())
            for p in self.q_target.parameters():
                p.requires_grad_(False)
            self.params = list(self.q.parameters())
            B = c['buffer_size']
            self.rb_obs = np.zeros((B,) + env.obs_shape, np.float32)
            self.rb_next = np.zeros((B,) + env.obs_shape, np.float32)
            self.rb_act = np.zeros(B, np.int64)
            self.rb_rew = np.zeros(B, np.float32)
            self.rb_done = np.zeros(B, np.float32)
            self.rb_size = self.rb_pos = 0
        else:
            self.policy = mlp(sizes + (2,), c['act'])
            self.value = mlp(sizes + (1,), c['act'])
            self.params = list(self.policy.parameters()) + list(self.value.parameters())
        if algo == 'a2c':
            self.opt = torch.optim.RMSprop(self.params, lr=c['lr'], alpha=0.99, eps=1e-5)
        else:
            self.opt = torch.optim.Adam(self.params, lr=c['lr'], eps=1e-5 if algo == 'ppo' else 1e-8)

    def record(self):
        self.recent.extend(self.venv.finished)
        self.venv.finished.clear()
        del self.recent[:-100]

    def mean_return(self):
        return sum(self.recent) / len(self.recent) if self.recent else float('nan')

    def finish_update(self, loss):
        l = float(loss)
        self.opt.zero_grad()
        if math.isfinite(l):
            loss.backward()
            nn.utils.clip_grad_norm_(self.params, self.c['max_grad_norm'])
            self.opt.step()
        self.updates += 1
        self.last_loss = l
        if not math.isfinite(l):
            raise RuntimeError('%s: the loss became %s at update %d' % (self.algo, l, self.updates))

    # REINFORCE: n_envs episodes side by side, one update when all have ended
    def reinforce_batch(self):
        c, envs = self.c, self.venv.envs
        N = len(envs)
        cur = [e.reset() for e in envs]
        active = list(range(N))
        obs, acts, rews, env_of = [], [], [], []
        boot = [0.0] * N
        while active:
            with torch.no_grad():
                logits = self.policy(torch.from_numpy(np.stack([cur[i] for i in active])))
                a = torch.multinomial(F.softmax(logits, dim=1), 1).view(-1).tolist()
            still = []
            for i, ai in zip(active, a):
                obs.append(cur[i])
                acts.append(ai)
                env_of.append(i)
                o, r, te, tr = envs[i].step(ai)
                cur[i] = o
                rews.append(r)
                self.steps += 1
                if te or tr:
                    self.recent.append(envs[i].ep_return)
                    if tr:  # a cut episode goes on: bootstrap from its last state
                        with torch.no_grad():
                            boot[i] = float(self.value(torch.from_numpy(o).unsqueeze(0)))
                else:
                    still.append(i)
            active = still
        del self.recent[:-100]
        # reward-to-go per episode, from its end backwards
        T, g = len(obs), c['gamma']
        G = boot
        ret = [0.0] * T
        for t in range(T - 1, -1, -1):
            i = env_of[t]
            G[i] = rews[t] + g * G[i]
            ret[t] = G[i]
        x = torch.from_numpy(np.stack(obs))
        R = torch.tensor(ret, dtype=torch.float32)
        v = self.value(x).view(-1)
        adv = R - v.detach()
        if c['norm_adv']:
            adv = normalized(adv)
        logp = F.log_softmax(self.policy(x), dim=1).gather(1, torch.tensor(acts).view(-1, 1)).view(-1)
        loss = -(logp * adv).mean() + c['vf_coef'] * F.mse_loss(v, R)
        self.finish_update(loss)

    # A2C / PPO rollouts
    def collect(self):
        c, T, N = self.c, self.c['n_steps'], self.c['n_envs']
        obs = torch.empty(T, N, 4)
        act = torch.empty(T, N, dtype=torch.long)
        logp = torch.empty(T, N)
        val = torch.empty(T, N)
        rew = np.empty((T, N), np.float32)
        done = np.empty((T, N), np.float32)
        g = c['gamma']
        with torch.no_grad():
            for t in range(T):
                x = torch.from_numpy(self.obs)
                obs[t] = x
                lp = F.log_softmax(self.policy(x), dim=1)
                a = torch.multinomial(lp.exp(), 1)
                act[t] = a.view(-1)
                logp[t] = lp.gather(1, a).view(-1)
                val[t] = self.value(x).view(-1)
                self.obs, r, te, tr, final = self.venv.step(a.view(-1).tolist())
                self.steps += N
                for i, o in final.items():
                    if tr[i] and not te[i]:  # a cut episode: bootstrap from its last state
                        r[i] += g * float(self.value(torch.from_numpy(o).unsqueeze(0)))
                rew[t] = r
                done[t] = te | tr
                self.record()
            last = self.value(torch.from_numpy(self.obs)).view(-1).numpy()
        # GAE(lambda) backwards from V of the state after the rollout
        vals = val.numpy()
        adv = np.empty((T, N), np.float32)
        lam, next_adv, next_val = c['gae_lambda'], np.zeros(N), last.astype(np.float64)
        for t in range(T - 1, -1, -1):
            nonterm = 1.0 - done[t]
            delta = rew[t] + g * next_val * nonterm - vals[t]
            next_adv = delta + g * lam * nonterm * next_adv
            adv[t] = next_adv
            next_val = vals[t]
        adv = torch.from_numpy(adv).view(-1)
        return obs.view(-1, 4), act.view(-1), logp.view(-1), adv, adv + val.view(-1)

    def pg_step(self, obs, act, old, adv, ret, ppo):
        c = self.c
        if c['norm_adv'] and len(adv) > 1:
            adv = normalized(adv)
        logp = F.log_softmax(self.policy(obs), dim=1).gather(1, act.view(-1, 1)).view(-1)
        if ppo:
            rho = torch.exp(logp - old)
            pl = -torch.min(rho * adv, torch.clamp(rho, 1 - c['clip'], 1 + c['clip']) * adv).mean()
        else:
            pl = -(logp * adv).mean()
        loss = pl + c['vf_coef'] * F.mse_loss(self.value(obs).view(-1), ret)
        self.finish_update(loss)

    def rollout_update(self):
        obs, act, old, adv, ret = self.collect()
        M = len(act)
        if self.algo == 'a2c':
            self.pg_step(obs, act, old, adv, ret, False)
            return
        mb = min(self.c['minibatch'], M)
        for _ in range(self.c['n_epochs']):
            perm = torch.randperm(M)
            for s in range(0, M - mb + 1, mb):
                i = perm[s:s + mb]
                self.pg_step(obs[i], act[i], old[i], adv[i], ret[i], True)

    # DQN
    def dqn_update(self):
        c, B = self.c, self.c['batch_size']
        idx = self.rng.integers(0, self.rb_size, size=B)
        o = torch.from_numpy(self.rb_obs[idx])
        o2 = torch.from_numpy(self.rb_next[idx])
        a = torch.from_numpy(self.rb_act[idx])
        with torch.no_grad():  # Double DQN target
            best = self.q(o2).argmax(dim=1, keepdim=True)
            nxt = self.q_target(o2).gather(1, best).view(-1)
            y = torch.from_numpy(self.rb_rew[idx]) + c['gamma'] * (1 - torch.from_numpy(self.rb_done[idx])) * nxt
        qa = self.q(o).gather(1, a.view(-1, 1)).view(-1)
        self.finish_update(F.smooth_l1_loss(qa, y))

    def dqn_train(self, target):
        c = self.c
        N = c['n_envs']
        while self.steps < target:
            if self.steps < c['learning_starts']:
                acts = [self.pyrng.randrange(self.n_actions) for _ in range(N)]
            else:
                f = min(1.0, self.steps / c['eps_decay'])
                eps = c['eps_start'] + f * (c['eps_end'] - c['eps_start'])
                acts = [self.pyrng.randrange(self.n_actions) if self.pyrng.random() < eps else -1 for _ in range(N)]
                if -1 in acts:
                    with torch.no_grad():
                        greedy = self.q(torch.from_numpy(self.obs)).argmax(dim=1).tolist()
                    acts = [g if a < 0 else a for a, g in zip(acts, greedy)]
            nobs, r, te, tr, final = self.venv.step(acts)
            for i in range(N):
                p = self.rb_pos
                self.rb_obs[p] = self.obs[i]
                self.rb_next[p] = final.get(i, nobs[i])
                self.rb_act[p] = acts[i]
                self.rb_rew[p] = r[i]
                self.rb_done[p] = te[i]
                self.rb_pos = (p + 1) % c['buffer_size']
                self.rb_size = min(self.rb_size + 1, c['buffer_size'])
            self.obs = nobs
            before = self.steps
            self.steps += N
            self.record()
            if self.steps < c['learning_starts'] or self.rb_size < c['batch_size']:
                continue
            if self.steps // (N * c['train_freq']) == before // (N * c['train_freq']):
                continue
            self.dqn_update()
            if self.steps // c['target_update'] != before // c['target_update']:
                self.q_target.load_state_dict(self.q.state_dict())

    def train(self, steps):
        t0 = time.perf_counter()
        target = self.steps + steps
        if self.algo.startswith('dqn'):
            self.dqn_train(target)
        elif self.algo == 'reinforce':
            while self.steps < target:
                self.reinforce_batch()
        else:
            while self.steps < target:
                self.rollout_update()
        self.seconds += time.perf_counter() - t0

    def evaluate(self, episodes, seed):
        net = self.q if self.algo.startswith('dqn') else self.policy
        total = 0.0
        e = CartPole(0)
        with torch.no_grad():
            for ep in range(episodes):
                e.np_random = np.random.default_rng(seed + ep)
                o = e.reset()
                while True:
                    a = int(net(torch.from_numpy(o).unsqueeze(0)).argmax(dim=1))
                    o, r, te, tr = e.step(a)
                    if te or tr:
                        break
                total += e.ep_return
        return total / episodes


# ---- the measurements -------------------------------------------------------------------

def bench_env(threads, steps, seed):
    e = CartPole(seed)
    acts = np.random.default_rng(seed).integers(0, 2, size=steps).tolist()
    e.reset()
    episodes = 0
    t0 = time.perf_counter()
    for a in acts:
        o, r, te, tr = e.step(a)
        if te or tr:
            e.reset()
            episodes += 1
    el = time.perf_counter() - t0
    print('TORCH_RL_ENV kind=single threads=%d steps_per_s=%.0f steps=%d episodes=%d seconds=%.3f'
          % (threads, steps / el, steps, episodes, el), flush=True)
    N = 8
    v = VecEnv(N, seed)
    v.reset()
    vsteps = steps // N
    acts = np.random.default_rng(seed + 1).integers(0, 2, size=(vsteps, N)).tolist()
    episodes = 0
    t0 = time.perf_counter()
    for a in acts:
        obs, r, te, tr, final = v.step(a)
        episodes += len(final)
    el = time.perf_counter() - t0
    print('TORCH_RL_ENV kind=vec8 threads=%d steps_per_s=%.0f steps=%d episodes=%d seconds=%.3f'
          % (threads, vsteps * N / el, vsteps * N, episodes, el), flush=True)


def bench_train(threads, algo, steps, warmup, seed):
    ag = Agent(algo, seed)
    ag.train(warmup)
    s0, u0 = ag.steps, ag.updates
    t0, c0 = time.perf_counter(), time.process_time()
    ag.train(steps)
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = ag.steps - s0
    print('TORCH_RL_TRAIN algo=%s threads=%d steps_per_s=%.0f steps_per_cpu_s=%.0f steps=%d seconds=%.3f updates=%d '
          'warmup=%d mean_return=%.1f' % (algo, threads, n / el, n / cpu, n, el, ag.updates - u0, s0,
                                          ag.mean_return()), flush=True)


def bench_solve(threads, algo, max_steps, seed):
    every, episodes, goal = 10000, 20, 475
    ag = Agent(algo, seed)
    eval_s, last, solved, nxt = 0.0, 0.0, 0, every
    while ag.steps < max_steps:
        if ag.steps < nxt:
            ag.train(nxt - ag.steps)
        t0 = time.perf_counter()
        last = ag.evaluate(episodes, 1000000 + ag.steps)
        eval_s += time.perf_counter() - t0
        nxt = (ag.steps // every + 1) * every
        if last >= goal:
            solved = 1
            break
    print('TORCH_RL_SOLVE algo=%s threads=%d seed=%d solved=%d seconds=%.3f steps=%d eval_seconds=%.2f '
          'eval_return=%.1f' % (algo, threads, seed, solved, ag.seconds, ag.steps, eval_s, last), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('threads', nargs='?', type=int, default=int(os.environ.get('CX_THREADS', '1')))
    ap.add_argument('--what', default='env,train,solve')
    ap.add_argument('--env-steps', type=int, default=1000000)
    ap.add_argument('--steps', default='')
    ap.add_argument('--solve-algos', default='reinforce,a2c,ppo')
    ap.add_argument('--solve-max', type=int, default=500000)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--seeds', type=int, default=5)
    a = ap.parse_args()
    threads = max(1, a.threads)
    torch.set_num_threads(threads)
    steps = dict(reinforce=200000, a2c=200000, ppo=50000, dqn=10000, dqn_catch=3000)
    for kv in filter(None, a.steps.split(',')):
        k, _, v = kv.partition('=')
        if k not in steps or not v.isdigit() or int(v) < 1:
            ap.error('--steps expects algo=N,... (algos reinforce, a2c, ppo, dqn, dqn_catch)')
        steps[k] = int(v)
    what = a.what.split(',')
    if 'env' in what:
        bench_env(threads, a.env_steps, a.seed)
    if 'train' in what:
        for algo in ALGOS:
            bench_train(threads, algo, steps[algo], 2000, a.seed)
    if 'solve' in what:
        for algo in a.solve_algos.split(','):
            if algo in ALGOS[:3]:
                for k in range(a.seeds):
                    bench_solve(threads, algo, a.solve_max, a.seed + k)


if __name__ == '__main__':
    main()
