"""Build hook: compile the optional C fast path (``upscale_async/_spec/_plain_c.pyx``) with Cython.

Run by hatchling for every wheel, editable ones included (``pip install .``, ``pip install -e .``).
When Cython, setuptools or a working C compiler is missing, or the build fails for any other
reason, it warns and the package installs without the extension: the pure-Python fast path
(``_plain.py``) then runs, with the same results. ``UPSCALE_ASYNC_NO_EXTENSIONS=1`` at build time
skips the build. An editable install builds the module in place, next to its source (and removes
a stale one it cannot rebuild); a wheel gets it added from a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
import traceback
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "upscale_async._spec._plain_c"
SOURCE = "upscale_async/_spec/_plain_c.pyx"
NO_EXTENSIONS = "UPSCALE_ASYNC_NO_EXTENSIONS"


def _built_name() -> str:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or (".pyd" if os.name == "nt" else ".so")
    return MODULE.replace(".", "/") + suffix


class CompiledFastPathHook(BuildHookInterface):
    """Compile ``_plain_c`` if possible; never fail the build for it."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        editable = version == "editable"
        if os.environ.get(NO_EXTENSIONS, "") not in ("", "0"):
            self._say(f"{NO_EXTENSIONS} is set: not building the C fast path (pure Python)")
            if editable:
                self._remove_stale(root)
            return
        work = Path(tempfile.mkdtemp(prefix="upscale_async_build_"))
        self._work = work
        try:
            out = root if editable else work / "lib"
            built = self._compile(root, out, work)
        except (Exception, SystemExit) as exc:  # any failure: pure Python, never a failed install
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().rstrip(".")
            self.app.display_warning(
                "upscale_async: the optional C fast path was not built, so the pure-Python "
                f"checks will run (same results, slower): {detail}. To build it, reinstall "
                "with a C compiler (gcc or clang) present; pip fetches Cython for the build."
            )
            if editable:
                self._remove_stale(root)
            shutil.rmtree(work, ignore_errors=True)
            return
        if editable:
            shutil.rmtree(work, ignore_errors=True)
        else:  # added to the wheel from the temporary directory, removed in finalize()
            build_data["force_include"][str(built)] = _built_name()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        self._say(f"built the C fast path: {built.name}")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    def _say(self, message: str) -> None:
        self.app.display_info(f"upscale_async: {message}")

    def _remove_stale(self, root: Path) -> None:
        stale = root / _built_name()
        if stale.exists():
            stale.unlink()
            self._say(f"removed {stale.name}, built earlier: the pure-Python checks run")

    def _compile(self, root: Path, out: Path, work: Path) -> Path:
        # Imported here: without them the build goes on without the extension.
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension

        cwd = os.getcwd()
        os.chdir(root)  # setuptools and Cython want paths relative to the project
        try:
            extension = Extension(MODULE, [SOURCE])
            modules = cythonize(
                [extension],
                build_dir=str(work / "c"),
                quiet=True,
                compiler_directives={"language_level": 3},
            )
            dist = Distribution({"name": "upscale_async", "ext_modules": modules})
            command: Any = dist.get_command_obj("build_ext")
            command.build_lib = str(out)
            command.build_temp = str(work / "obj")
            command.ensure_finalized()
            command.run()
        finally:
            os.chdir(cwd)
        built = out / _built_name()
        if not built.exists():
            raise RuntimeError(f"the build reported success but {built} is missing")
        return built


if __name__ == "__main__":  # pragma: no cover - a hint for someone running this file
    sys.exit("hatch_build.py is run by hatchling during 'pip install'; it is not a script")
