"""deploy/README.md's install and first-run commands, as a checkout prints them: the
first block runs on the build machine in the checkout, the others as root in a booted
root with the checkout's dist/ copied to /root/dist."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

from tests.deploy.booted import BootedRoot

SECTIONS = ("## 2. Install the package", "## 3. First run")
BUILD_MARK = "# on the build machine"
DAY = "2022-09-12"                  # the bundled office capture's day
STATE = "/var/lib/madoc /var/lib/madoc-collector /var/cache/madoc /var/log/madoc"


def guide_commands(checkout: Path) -> list[str]:
    """The shell blocks of the checkout's guide's install and first-run sections, in order."""
    text = (checkout / "deploy" / "README.md").read_text()
    blocks: list[str] = []
    for heading in SECTIONS:
        start = text.index(heading)
        end = text.index("\n## ", start + 1)
        blocks += re.findall(r"```sh\n(.*?)```", text[start:end], re.S)
    return blocks


@functools.cache
def build_package(checkout: Path) -> Path:
    """The guide's build step run in the checkout (a fresh dist/), once a session;
    returns dist/."""
    build = guide_commands(checkout)[0]
    shutil.rmtree(checkout / "dist", ignore_errors=True)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", build], cwd=checkout,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the build step failed in {checkout}:\n{done.stderr[-4000:]}"
    return checkout / "dist"


def install_and_first_run(root: BootedRoot, checkout: Path) -> None:
    """The guide's steps after the build, in the booted root, with the checkout's
    package (already built) in /root/dist."""
    shutil.copytree(checkout / "dist", root.path / "root/dist")
    root.must("apt-get update -qq")
    for step in guide_commands(checkout)[1:]:
        root.must(step)
