"""models/compile.py: without a C++ compiler, torch.compile falls back to eager with one warning."""

import logging

import torch

from vans_pipelines.models import compile as compile_module
from vans_pipelines.models.tiny import TinyVDMSpec, build_tiny_vdm
from vans_pipelines.models.vdm import Conditioning


def test_no_cpu_compiler_means_eager_and_one_warning(tokenizer, monkeypatch, caplog):
    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    compile_module._cpu_compiler.cache_clear()
    monkeypatch.delattr(compile_module.compiler_available, "warned", raising=False)
    vdm = build_tiny_vdm(tokenizer, TinyVDMSpec(), Conditioning(context_frames=2))
    try:
        with caplog.at_level(logging.WARNING, logger=compile_module.__name__):
            vdm.compile()
            vdm.compile()
        assert vdm._compiled.get("transformer", vdm.transformer) is vdm.transformer
        assert vdm._compiled.get("decoder", vdm.vae.decoder) is vdm.vae.decoder
        warnings = [r for r in caplog.records if "no C++ compiler" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        compile_module._cpu_compiler.cache_clear()


def test_a_gpu_needs_no_cpu_compiler(monkeypatch):
    monkeypatch.setattr(compile_module.shutil, "which", lambda name: None)
    compile_module._cpu_compiler.cache_clear()
    try:
        assert compile_module.compiler_available(torch.device("cuda"))
    finally:
        compile_module._cpu_compiler.cache_clear()
