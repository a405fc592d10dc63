"""What `dltrain --version` and `dltrain env` report: versions, the Keras backend, the GPUs, the
machine. `--version` reads installed packages' metadata and the NVIDIA driver's list, so it stays
instant; `env` also starts TensorFlow (quietly) to report the GPUs it sees and how it was built."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from dltrain import __version__

NO_GPU = "none"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def keras_backend() -> str:
    """The backend Keras starts on: KERAS_BACKEND, else the one in keras.json, else tensorflow
    (read without importing Keras, as Keras itself reads it at import)."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    try:
        return json.loads((home / "keras.json").read_text()).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def driver_gpus() -> list[str] | None:
    """The NVIDIA GPUs the driver lists (`nvidia-smi -L`); None without a driver."""
    try:
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return [line.split(":", 1)[1].split("(UUID")[0].strip() for line in result.stdout.splitlines() if ":" in line]


def tensorflow_gpus() -> dict:
    """The GPUs TensorFlow sees and what it was built with (imports TensorFlow, quietly)."""
    from dltrain.core.console import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (ValueError, RuntimeError):
            names.append(gpu.name)
    build = tf.sysconfig.get_build_info()
    return {
        "gpus": names,
        "cuda_build": bool(build.get("is_cuda_build")),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
    }


def version_report() -> dict:
    """dltrain, Python, TensorFlow, Keras and its backend, the GPUs the driver lists (no import of TensorFlow)."""
    return {
        "dltrain": __version__,
        "python": platform.python_version(),
        "tensorflow": package_version("tensorflow") or package_version("tensorflow-cpu"),
        "keras": package_version("keras"),
        "keras_backend": keras_backend(),
        "gpus": driver_gpus(),
    }


def memory_bytes() -> dict[str, int | None]:
    found: dict[str, int | None] = {"total": None, "available": None}
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                key, _, value = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    found["total" if key == "MemTotal" else "available"] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        found["total"] = pages * size if pages > 0 and size > 0 else None
    return found


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_report() -> dict:
    """Everything a bug report needs about this machine and its software."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    report = version_report()
    report.update(
        python_executable=sys.executable,
        numpy=package_version("numpy"),
        jax=package_version("jax"),
        platform=platform.platform(),
        cpu=cpu_name(),
        cpu_cores=os.cpu_count(),
        cpu_cores_usable=usable,
        memory=memory_bytes(),
        tensorflow_gpus=tensorflow_gpus(),
    )
    return report


def gpu_line(gpus: list[str] | None) -> str:
    if gpus is None:
        return f"{NO_GPU} (no NVIDIA driver found)"
    return ", ".join(gpus) if gpus else NO_GPU


def version_rows(report: dict) -> list[tuple[str, str]]:
    return [
        ("dltrain", report["dltrain"]),
        ("python", report["python"]),
        ("tensorflow", report["tensorflow"] or "not installed"),
        ("keras", f"{report['keras'] or 'not installed'} (backend {report['keras_backend']})"),
        ("gpus", gpu_line(report["gpus"])),
    ]


def environment_rows(report: dict) -> list[tuple[str, str]]:
    gib = lambda value: f"{value / 2**30:.1f} GiB" if value else "unknown"  # noqa: E731
    seen = report["tensorflow_gpus"]
    built = f"CUDA {seen['cuda']}, cuDNN {seen['cudnn']}" if seen["cuda_build"] else "without CUDA"
    return [
        *version_rows(report)[:4],
        ("gpus (driver)", gpu_line(report["gpus"])),
        ("gpus (tensorflow)", f"{', '.join(seen['gpus']) or NO_GPU} (TensorFlow built {built})"),
        ("numpy", report["numpy"] or "not installed"),
        ("jax", report["jax"] or "not installed"),
        ("platform", report["platform"]),
        ("cpu", f"{report['cpu']} ({report['cpu_cores_usable']} of {report['cpu_cores']} logical cores usable)"),
        ("memory", f"{gib(report['memory']['total'])} total, {gib(report['memory']['available'])} available"),
        ("executable", report["python_executable"]),
    ]


def aligned(rows: list[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in rows)
    return "".join(f"{key:<{width}}  {value}\n" for key, value in rows)
