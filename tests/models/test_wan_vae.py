import copy

import pytest
import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm

from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vdm import Conditioning
from vans_pipelines.models.wan_vae import SingleFrameCausalConv3d, SumOfSquaresRMSNorm, use_fast_vae_paths


def vae_pair(temporal_downsample):
    """A random tiny Wan VAE and a copy switched to the fast paths."""
    torch.manual_seed(0)
    plain = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 2],
        num_res_blocks=1,
        temperal_downsample=temporal_downsample,
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    ).eval()
    return plain, use_fast_vae_paths(copy.deepcopy(plain))


@pytest.mark.parametrize(
    ("temporal_downsample", "frames"),
    [([False, False], 1), ([False, False], 3), ([False, True], 1), ([False, True], 5)],
)
def test_encode_and_decode_are_unchanged(temporal_downsample, frames):
    """Without temporal compression (the tiny default) and with it (Wan2.1-style: the first chunk is one
    frame, the later ones go through the cached 3D path)."""
    plain, fast = vae_pair(temporal_downsample)
    video = torch.rand(2, 3, frames, 16, 16) * 2 - 1
    with torch.no_grad():
        z_plain, z_fast = plain.encode(video).latent_dist.mode(), fast.encode(video).latent_dist.mode()
        torch.testing.assert_close(z_fast, z_plain, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(
            fast.decode(z_plain).sample, plain.decode(z_plain).sample, atol=1e-5, rtol=1e-4
        )


def test_gradients_reach_the_same_weights():
    """The VAE fit trains through the fast path: every weight's gradient equals the 3D path's (the
    zero-padded kernel slices get zero gradient in both)."""
    plain, fast = vae_pair([False, False])
    frames = torch.rand(4, 3, 1, 16, 16) * 2 - 1
    grads = []
    for vae in (plain, fast):
        vae.zero_grad()
        recon = vae.decode(vae.encode(frames).latent_dist.mode()).sample
        (recon - frames).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in vae.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-4, msg=name)
    conv = next(m for m in fast.modules() if isinstance(m, SingleFrameCausalConv3d) and m.kernel_size[0] == 3)
    assert conv.weight.grad[:, :, :2].abs().max() == 0 and conv.weight.grad[:, :, 2].abs().max() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channel_first", [True, False])
def test_the_sum_of_squares_norm_equals_wans_with_its_gradients(channel_first, dtype):
    torch.manual_seed(0)
    wan = WanRMS_norm(6, channel_first=channel_first, images=False, bias=True)
    torch.nn.init.normal_(wan.gamma)
    torch.nn.init.normal_(wan.bias)
    ours = copy.deepcopy(wan)
    ours.__class__ = SumOfSquaresRMSNorm
    shape = (2, 6, 3, 4, 5) if channel_first else (2, 3, 4, 5, 6)
    x = torch.randn(shape).to(dtype)
    x[0] = 0  # F.normalize's eps: an all-zero vector stays zero
    outs = []
    for norm in (wan, ours):
        xi = x.clone().requires_grad_()
        out = norm.to(dtype)(xi)
        out.float().square().sum().backward()
        outs.append((out, xi.grad, norm.gamma.grad))
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-2, "rtol": 1e-2}
    for a, b in zip(outs[0], outs[1], strict=True):
        torch.testing.assert_close(b, a, **tol)


def test_every_vdm_uses_the_fast_paths_and_saves_the_same_keys(tokenizer, tmp_path):
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning())
    convs = [m for m in vdm.vae.modules() if isinstance(m, WanCausalConv3d)]
    assert convs and all(type(m) is SingleFrameCausalConv3d for m in convs)
    norms = [m for m in vdm.vae.modules() if isinstance(m, WanRMS_norm)]
    assert norms and all(type(m) is SumOfSquaresRMSNorm for m in norms)
    vdm.save_pretrained(tmp_path)
    plain = AutoencoderKLWan.from_pretrained(tmp_path / "vae")
    assert plain.state_dict().keys() == vdm.vae.state_dict().keys()
    loaded = type(vdm).from_pretrained(tmp_path)
    assert all(
        type(m) is SingleFrameCausalConv3d for m in loaded.vae.modules() if isinstance(m, WanCausalConv3d)
    )
