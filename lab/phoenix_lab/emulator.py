"""The AWS emulator (moto's server mode) as a child process on loopback."""

from __future__ import annotations

import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from phoenix_lab.ports import free_port
from phoenix_lab.processes import ManagedProcess, wait_for

REGION = "us-east-1"


class Emulator:
    """moto's server on ``host`` with a free port; ``env()`` points the AWS SDKs at it."""

    def __init__(self, workdir: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port([host])
        self.process = ManagedProcess(
            "aws-emulator",
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(self.port)],
            log_path=workdir / "aws-emulator.log",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for anything that talks to the emulator: the endpoint and fake
        credentials, so nothing ever reaches real AWS."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Never look up IMDS or a real profile from a test or the demo.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def start(self, timeout: float = 30.0) -> None:
        self.process.start()
        wait_for(self.ready, timeout, f"the AWS emulator on {self.url}")

    def ready(self) -> bool:
        if not self.process.running():
            raise RuntimeError(f"the AWS emulator exited:\n{self.process.log_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Forgets every resource: each test starts from an empty AWS."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def pause(self) -> None:
        """Freezes the emulator (SIGSTOP): calls hang until :meth:`resume`, like an AWS
        endpoint that stopped answering."""
        self.process.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.signal_group(signal.SIGCONT)

    def stop(self) -> None:
        self.process.stop()
