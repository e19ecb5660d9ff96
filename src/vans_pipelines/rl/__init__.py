"""Reinforcement learning for Joint-GRPO: the shared GRPO math, Flow-GRPO's SDE sampler, the reward registry.

Plain torch; knows nothing of Kedro or Lightning."""
