"""Headless Chromium for the HTML view tests: found on PATH, or installed from Debian's packages."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


@functools.cache
def chromium_binary() -> str:
    """The path of a Chromium binary, installing Debian's ``chromium`` package when missing (as root).

    Raises:
        RuntimeError: Chromium is missing and cannot be installed here; the message says what to do.
    """
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True, env=env, timeout=900
        )
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        if found:
            return found
    raise RuntimeError(
        "the HTML view tests need headless Chromium: install Debian's package (`apt-get install chromium`) "
        "or put a `chromium` binary on PATH"
    )
