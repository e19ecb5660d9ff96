"""Many processes run the same GRPO as one: two gloo processes, each holding half of the groups, give
the loss and the adapter gradients (averaged over processes, as DDP does) of one process holding them
all. Batch-wide reward statistics are gathered over the processes, and the loss normalisers count the
whole batch's kept rows and elements (TRL's way)."""

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.rl.flow_sde import SDEConfig, Trajectory
from vans_pipelines.rl.grpo import GRPOConfig, batch_advantages, sample_mask
from vans_pipelines.training.grpo_vdm import Trajectories, sample_trajectories, trajectory_losses

GROUPS, G = 4, 2
# group 3's rewards are all equal: with mask_zero_std_groups it leaves the loss, so the second process
# keeps fewer rows than the first and only batch-wide counts give the one-process loss
REWARDS = torch.tensor([0.1, 0.9, 0.4, 0.2, 0.7, 0.3, 0.5, 0.5])
SDE = SDEConfig(num_steps=3, noise_level=0.7, window_end=2)


def policy():
    tokenizer = build_word_tokenizer(["a red circle bounces left", "a blue square slides right"])
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2), seed=0)
    vdm.start_adapter(LoraSpec(rank=4, target_modules=("to_q", "to_k", "to_v", "to_out.0")))
    with torch.no_grad():  # a moved adapter: ratios and the KL are not trivial
        for name, parameter in vdm.transformer.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(3))
    return vdm


def rollout(vdm):
    """Every group's trajectories, sampled alike in every process."""
    captions = [c for c in ("a red circle", "a blue square", "red left", "blue right") for _ in range(G)]
    contexts = np.random.default_rng(0).integers(0, 255, (GROUPS * G, 4, 16, 16, 3), dtype=np.uint8)
    return sample_trajectories(vdm, captions, contexts, 4, SDE, torch.Generator().manual_seed(0))


def rows_of(sampled: Trajectories, rows: slice) -> Trajectories:
    t = sampled.trajectory
    return Trajectories(
        Trajectory(t.latents[rows], t.log_probs[rows], t.steps, t.sigmas),
        sampled.text[rows],
        sampled.cond[rows],
        sampled.clips[rows],
    )


def loss_and_gradients(vdm, sampled, rewards, grpo):
    adv, _ = batch_advantages({"r": rewards}, {"r": 1.0}, grpo)
    mask = sample_mask(adv, grpo)
    vdm.transformer.zero_grad(set_to_none=True)
    total = torch.zeros(())
    for loss, _ in trajectory_losses(vdm, sampled, adv.advantages, mask, grpo, SDE):
        loss.backward()
        total += loss.detach()
    grads = {n: p.grad for n, p in vdm.transformer.named_parameters() if p.grad is not None}
    return total, grads


def configs():
    common = {"group_size": G, "num_iterations": 2, "beta": 0.01, "mask_zero_std_groups": True}
    return {
        "grpo_batch": GRPOConfig(**common, scale_rewards="batch"),
        "dapo_normalize_then_sum": GRPOConfig(**common, loss_type="dapo", combine="normalize_then_sum"),
        "dr_grpo": GRPOConfig(**common, loss_type="dr_grpo", max_completion_length=1),
    }


def worker(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        vdm = policy()
        sampled = rollout(vdm)
        n = GROUPS * G // world
        rows = slice(rank * n, (rank + 1) * n)
        results = {}
        for name, grpo in configs().items():
            loss, grads = loss_and_gradients(vdm, rows_of(sampled, rows), REWARDS[rows], grpo)
            for grad in grads.values():  # what DDP does with the processes' gradients
                dist.all_reduce(grad)
                grad /= world
            dist.all_reduce(loss)
            results[name] = (loss / world, grads)
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict:
    out = Path(tmp_path_factory.mktemp("ddp")) / "rank0.pt"
    mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return torch.load(out)


@pytest.mark.parametrize("name", list(configs()))
def test_two_processes_give_the_one_process_loss_and_gradients(two_processes, name):
    torch.manual_seed(0)
    vdm = policy()
    loss, grads = loss_and_gradients(vdm, rollout(vdm), REWARDS, configs()[name])
    spread_loss, spread_grads = two_processes[name]
    assert float(loss) != 0.0 and grads
    torch.testing.assert_close(spread_loss, loss, rtol=1e-5, atol=1e-7)
    assert spread_grads.keys() == grads.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(spread_grads[key], grad, rtol=1e-4, atol=1e-7)
