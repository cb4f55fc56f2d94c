"""Install Backend and Check Backend without the network: the pip commands for each platform and
CUDA case, the prebuilt-gsplat-or-JIT choice, consent, and what Check Backend reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from masksplat_blender import client as client_module
from masksplat_blender.client import (
    GSPLAT,
    PINNED,
    TORCH_CPU,
    TORCH_CUDA,
    BackendError,
    gsplat_commands,
    gsplat_index_tag,
    install_backend_venv,
    install_commands,
)

PIP = ["-m", "pip", "install", "--disable-pip-version-check"]


@pytest.mark.parametrize(
    ("platform", "python"),
    [("linux", "venv/bin/python"), ("win32", "venv/Scripts/python.exe"), ("darwin", "venv/bin/python")],
)
def test_cpu_commands_per_platform(tmp_path, platform, python):
    commands = install_commands(tmp_path / "venv", "cpu", platform)
    python = str(tmp_path / python)
    assert all(c[:5] == [python, *PIP] for c in commands)
    assert commands[0][5:] == ["--upgrade", "pip"]
    torch = commands[1][5:]
    if platform == "darwin":  # PyPI's torch is the CPU (and Metal) build there
        assert torch == [TORCH_CPU]
    else:
        assert torch == [TORCH_CPU, "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert commands[2][5:] == list(PINNED)
    assert not any("gsplat" in arg for c in commands for arg in c)


@pytest.mark.parametrize("platform", ["linux", "win32"])
def test_cuda_commands_pin_torch_from_its_cuda_index(tmp_path, platform):
    commands = install_commands(tmp_path / "venv", "cuda", platform)
    assert commands[1][5:] == [TORCH_CUDA, "--index-url", "https://download.pytorch.org/whl/cu124"]
    assert commands[2][5:] == list(PINNED)
    every = [*PINNED, TORCH_CUDA, GSPLAT]
    assert all("==" in requirement for requirement in every)  # every package pinned to a tested version
    assert {r.split("==")[0] for r in every} >= {"torch", "gsplat", "numba", "transformers", "safetensors"}


def test_cuda_is_refused_on_a_mac_and_unknown_flavours(tmp_path):
    with pytest.raises(BackendError, match="NVIDIA GPU on Linux or Windows"):
        install_commands(tmp_path, "cuda", "darwin")
    with pytest.raises(ValueError, match="flavour"):
        install_commands(tmp_path, "rocm")


@pytest.mark.parametrize(
    ("torch", "cuda", "tag"),
    [("2.4.1+cu124", "12.4", "pt24cu124"), ("2.4.0", "12.1", "pt24cu121"), ("2.3.1+cu118", "11.8", "pt23cu118"),
     ("2.13.0+cu130", "13.0", "pt213cu130"), ("2.13.0+cpu", None, None)],  # fmt: skip
)
def test_gsplat_comes_from_the_index_of_the_installed_torch_cuda_pair(torch, cuda, tag):
    assert gsplat_index_tag(torch, cuda) == tag
    dependencies, prebuilt, fallback = gsplat_commands("py", torch, cuda)
    assert dependencies[:5] == ["py", *PIP] and "ninja" in dependencies
    if tag is None:
        assert prebuilt is None
    else:
        assert prebuilt == ["py", *PIP, "--no-deps", GSPLAT, "--index-url", f"https://docs.gsplat.studio/whl/{tag}"]
    assert fallback == ["py", *PIP, "--no-deps", GSPLAT]  # PyPI's: compiles its CUDA code on first use


@pytest.fixture
def fake_install(monkeypatch):
    """install_backend_venv with venv creation, pip and the torch query recorded, not run."""
    ran, created = [], []
    monkeypatch.setattr(client_module.venv.EnvBuilder, "create", lambda self, folder: created.append(Path(folder)))
    state = {"fail": lambda command: False, "torch": ("2.4.1+cu124", "12.4")}

    def run_pip(command, step, total, progress):
        assert isinstance(command, list) and all(isinstance(a, str) for a in command)
        ran.append(command)
        if progress:
            progress(step, total, f"Collecting {command[-1]}")
        return (not state["fail"](command)), "ERROR: no matching distribution"

    monkeypatch.setattr(client_module, "_run_pip", run_pip)
    monkeypatch.setattr(client_module, "_installed_torch", lambda python: state["torch"])
    return ran, created, state


def test_cuda_install_takes_the_prebuilt_gsplat(tmp_path, fake_install):
    ran, created, _ = fake_install
    steps = []
    result = install_backend_venv(tmp_path / "venv", "cuda", lambda *a: steps.append(a), allow_network=True)
    assert created == [tmp_path / "venv"] and result.warnings == []
    assert "prebuilt for torch 2.4.1+cu124 with CUDA 12.4" in result.notes[0]
    assert ran[-1][-2:] == ["--index-url", "https://docs.gsplat.studio/whl/pt24cu124"]
    assert [s[0] for s in steps] == sorted(s[0] for s in steps) and {s[1] for s in steps} == {5}  # progress, in order


def test_cuda_install_falls_back_to_the_jit_build_with_a_clear_warning(tmp_path, fake_install):
    ran, _, state = fake_install
    state["fail"] = lambda command: "docs.gsplat.studio" in " ".join(command)  # no prebuilt wheel for this pair
    result = install_backend_venv(tmp_path / "venv", "cuda", allow_network=True)
    assert ran[-1][-1] == GSPLAT and "--index-url" not in ran[-1]
    assert "compiles its CUDA code the first time it runs" in result.warnings[0] and "MSVC" in result.warnings[0]


def test_a_failing_pip_step_is_an_install_error(tmp_path, fake_install):
    _, _, state = fake_install
    state["fail"] = lambda command: TORCH_CPU in command
    with pytest.raises(BackendError) as err:
        install_backend_venv(tmp_path / "venv", "cpu", allow_network=True)
    assert err.value.kind == "install_failed" and "no matching distribution" in str(err.value)


def test_without_consent_nothing_is_created(tmp_path, fake_install):
    ran, created, _ = fake_install
    with pytest.raises(BackendError) as err:
        install_backend_venv(tmp_path / "venv", "cuda", allow_network=False)
    assert err.value.kind == "offline" and "Online access is off" in str(err.value)
    assert ran == [] and created == []


def test_info_says_which_cuda_torch_was_built_for_and_whether_gsplat_is_prebuilt(tmp_path):
    """A stand-in gsplat package that ships its compiled code (csrc.*.so) next to one that does not."""
    reports = {}
    for prebuilt in (True, False):
        folder = tmp_path / str(prebuilt) / "gsplat"
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("__version__ = '1.5.3'\n")
        if prebuilt:
            (folder / "csrc.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder.parent), str(ROOT)])}
        proc = subprocess.run([sys.executable, "-m", "masksplat_blender.backend", "--info"], env=env, capture_output=True, text=True, timeout=300)
        reports[prebuilt] = json.loads(proc.stdout)
    import torch

    for info in reports.values():
        assert info["torch"] == torch.__version__ and info["torch_cuda"] == torch.version.cuda and info["gsplat"] is True
    assert reports[True]["gsplat_prebuilt"] is True and reports[False]["gsplat_prebuilt"] is False


def test_check_backend_says_what_it_found(installed_addon):
    describe = installed_addon.ui.backend_ops.describe_backend
    cuda = {"torch": "2.4.1+cu124", "torch_cuda": "12.4", "cuda": True, "gsplat": True, "gsplat_prebuilt": True, "numba": True}
    line = describe("/venv/bin/python", "managed environment", cuda)
    assert "torch 2.4.1+cu124 (CUDA 12.4)" in line and "a CUDA device" in line and "gsplat prebuilt" in line
    jit = describe("/p", "preferences", {**cuda, "gsplat_prebuilt": False})
    assert "gsplat compiles on first use" in jit
    cpu = describe("/p", "this Python", {"torch": "2.13.0+cpu", "torch_cuda": None, "cuda": False, "gsplat": False})
    assert "(CPU build)" in cpu and "no CUDA device" in cpu and "no gsplat" in cpu
