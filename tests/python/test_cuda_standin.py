"""trackpoint's CUDA path end to end, on a machine without a GPU.

Builds the CUDA runtime stand-in (tests/cuda_standin/cudart_standin.cc) as
libcudart.so with the system's C++ compiler, then runs child processes with
its folder first in LD_LIBRARY_PATH, so that the installed package's
CudaBackend loads it exactly as it loads the real runtime: the cases of
cuda_standin_cases.py, the GPU staging benchmark, and the no-device and
incomplete-runtime messages.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "cuda_standin" / "cudart_standin.cc"
BENCH = HERE.parent.parent / "bench" / "staging.py"


def _compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build(out_dir: Path, *defines: str) -> Path:
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C++ compiler to build the CUDA runtime stand-in")
    out_dir.mkdir(parents=True, exist_ok=True)
    library = out_dir / "libcudart.so"
    subprocess.run([compiler, "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread",
                    *[f"-D{d}" for d in defines], "-o", str(library), str(SOURCE)],
                   check=True)
    return out_dir


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("cudart_standin"))


def _run(args, library_dir: Path, **env):
    environment = dict(os.environ, LD_LIBRARY_PATH=str(library_dir), **env)
    return subprocess.run([sys.executable, *args], env=environment, cwd=HERE,
                          capture_output=True, text=True, timeout=300)


def test_cuda_tensor_checkpoints_over_the_standin_runtime(standin):
    child = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "cuda_standin_cases.py"],
                 standin, TRACKPOINT_CUDA_STANDIN="1")
    report = child.stdout + child.stderr
    assert child.returncode == 0, report
    assert "8 passed" in report and "skipped" not in report, report


REASON = "from trackpoint import _core; print(_core.cuda_unavailable_reason())"


def test_a_runtime_without_devices_is_reported_as_such(standin):
    child = _run(["-c", REASON], standin, CUDART_STANDIN_DEVICES="0")
    assert child.returncode == 0, child.stderr
    reason = child.stdout.strip()
    assert reason.startswith("no usable CUDA device (runtime "), reason
    assert "libcudart.so" in reason
    assert reason.endswith("cudaGetDeviceCount failed: no CUDA-capable device is "
                           "detected (CUDA error 100)"), reason


def test_a_runtime_missing_a_function_is_reported_by_name(tmp_path):
    incomplete = _build(tmp_path / "incomplete", "cudaEventSynchronize=cudaEventSynchronize_gone")
    child = _run(["-c", REASON], incomplete)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == (
        "CUDA runtime not available: libcudart.so has no cudaEventSynchronize")


def test_the_gpu_staging_benchmark_runs_over_the_standin(standin):
    # Its numbers mean nothing here; this shows its CUDA path runs.
    child = _run([str(BENCH), "--sizes-mib", "2", "--chunk-mib", "1", "--rounds", "1",
                  "--repeats", "1"], standin)
    assert child.returncode == 0, child.stdout + child.stderr
    assert "GPU cuda:0, device to host" in child.stdout, child.stdout
    rows = [line.split() for line in child.stdout.splitlines() if "2 MiB" in line]
    assert [row[2] for row in rows] == ["no", "yes"], child.stdout  # without, with CRC
    assert all(float(row[3]) > 0 and float(row[4]) > 0 for row in rows), child.stdout
