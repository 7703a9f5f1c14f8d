"""The course's Jupyter kernel, ``gan-course``: IPython with the course's environment.

Every notebook of the course names this kernel, and JupyterLab (``make lab``), nbgrader,
the build pipeline and the sandboxed grading kernel start it. It is the ordinary IPython
kernel, started by ``python -m gancourse.kernel`` so that :func:`gantools.runtime.configure`
runs before any cell: oneDNN is on even in a notebook whose first cell imports TensorFlow.
A value the user set (``TF_ENABLE_ONEDNN_OPTS=0 make lab``) is kept. The environment is
not written into ``kernel.json``, where Jupyter would let it override the user's.

``python -m gancourse.kernel install`` installs the kernel spec into this Python's prefix
(the virtual environment; ``make venv`` does it), ``--user`` into the user's Jupyter folder.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import gantools  # noqa: F401 - applies the course's environment before TensorFlow loads

KERNEL_NAME = "gan-course"
DISPLAY_NAME = "Python 3 (GAN course)"


def kernel_argv(python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "gancourse.kernel", "-f", "{connection_file}"]


def metadata() -> dict:
    """The ``kernelspec`` entry of a course notebook's metadata."""
    return {"name": KERNEL_NAME, "display_name": DISPLAY_NAME, "language": "python"}


def installed_spec():
    """The installed ``gan-course`` kernel spec, or None."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return None


def install(user: bool = False, prefix: str | None = None) -> str:
    """Install the kernel spec; returns the folder it went to."""
    import tempfile

    from ipykernel.kernelspec import RESOURCES
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        spec = {"argv": kernel_argv(), "display_name": DISPLAY_NAME, "language": "python",
                "metadata": {"debugger": True}}
        (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        for logo in Path(RESOURCES).glob("logo-*.png"):
            (Path(tmp) / logo.name).write_bytes(logo.read_bytes())
        if not user and prefix is None:
            prefix = sys.prefix
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user,
                                                       prefix=None if user else prefix)


@functools.cache
def ensure_installed() -> None:
    """Install the kernel spec unless one that starts this Python is installed already
    (looked up once per process)."""
    spec = installed_spec()
    if spec is None or spec.argv != kernel_argv():
        try:
            install()
        except OSError as err:  # a read-only prefix (a system Python): the user's folder
            try:
                install(user=True)
            except OSError:
                raise RuntimeError(
                    f"could not install the {KERNEL_NAME!r} Jupyter kernel ({err}); run "
                    "`python -m gancourse.kernel install --user`, or `make venv`.") from err


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        parser = argparse.ArgumentParser(prog="python -m gancourse.kernel install",
                                         description="Install the gan-course Jupyter kernel.")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true",
                           help="into the user's Jupyter folder instead of this Python's prefix")
        where.add_argument("--prefix", help="into PREFIX/share/jupyter/kernels")
        args = parser.parse_args(argv[1:])
        print(f"installed the {KERNEL_NAME!r} kernel in {install(args.user, args.prefix)}")
        return 0
    # importing gantools (above) applied the course's environment
    from ipykernel import kernelapp

    sys.argv = [sys.argv[0], *argv]
    kernelapp.launch_new_instance()
    return 0


if __name__ == "__main__":
    sys.exit(main())
