"""A site's node in the federation: Flower's SuperNode plus pathloop's own task launcher.

The SuperNode runs with ``--isolation process``: it talks to the SuperLink and keeps the
run's messages, but starts nothing itself (in Flower's default mode it starts
``flower-superexec``, which starts ``flwr-clientapp``, which imports the ClientApp the run's
bundle names). This process starts the SuperNode as its child, asks its Runtime API on
loopback for ClientApp tasks, and answers each in a process of its own
(:mod:`~.clientapp_task`: the installed pathloop ClientApp, never the bundle's code). It
asks for ClientApp tasks only: a run of another kind (an agent app …) is left unanswered.

It ends when the SuperNode ends (with its exit code), and stops the SuperNode and its tasks
when it is stopped. ``pathloop site join`` and the loopback deployment run it as::

    python -m pathloop.client.federation.site_node --runtime-api-address 127.0.0.1:9094 \\
        -- flower-supernode … --isolation process --host 127.0.0.1 --port 9094
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType

import httpx
from flwr.proto.runtime_pb2 import AcquireTaskRequest
from flwr.supercore.constant import TaskType
from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient

logger = logging.getLogger(__name__)

TASK_MODULE = "pathloop.client.federation.clientapp_task"
#: The environment variable a task's Runtime API token travels in (a command line is
#: visible to every local user, a process's environment only to its own).
TOKEN_VARIABLE = "PATHLOOP_TASK_TOKEN"
POLL_SECONDS = 1.0


def run_site_node(supernode: list[str], runtime_api_address: str,
                  env: Mapping[str, str]) -> int:
    """Run the SuperNode ``supernode`` and answer its ClientApp tasks until it exits.

    ``runtime_api_address`` is the SuperNode's Runtime API (``127.0.0.1:<its --port>``);
    ``env`` the environment of the SuperNode and of every task. Returns the SuperNode's
    exit code.
    """
    node = subprocess.Popen(supernode, env=dict(env))
    tasks: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for process in (node, *tasks):
            if process.poll() is None:
                process.terminate()
        for process in (node, *tasks):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    retry = make_simple_http_retry_invoker()
    retry.max_tries = 1  # a SuperNode not up yet is polled again below, not retried inside
    client = RuntimeHttpClient.from_server_address(
        server_address=runtime_api_address, insecure=True, root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
        retry_invoker=retry)
    try:
        while node.poll() is None:
            tasks = [task for task in tasks if task.poll() is None]
            token = _acquire_task(client)
            if token is not None:
                tasks.append(_start_task(token, runtime_api_address, env))
            else:
                time.sleep(POLL_SECONDS)
    finally:
        client.close()
    return int(node.returncode)


def _acquire_task(client: RuntimeHttpClient) -> str | None:
    """The token of a ClientApp task the SuperNode holds, if any."""
    try:
        reply = client.AcquireTask(AcquireTaskRequest(
            supported_task_types=[str(TaskType.CLIENT_APP)]))
    except httpx.HTTPError as error:  # the SuperNode is starting, or reconnecting
        logger.debug("Runtime API not answering: %s", error)
        return None
    if not reply.HasField("task") or not reply.token:
        return None
    if reply.task.type != TaskType.CLIENT_APP:  # asked for ClientApp tasks only
        logger.error("task %s of type %r not answered: this site runs only pathloop's "
                     "ClientApp", reply.task.task_id, reply.task.type)
        return None
    logger.info("run %s: answering task %s", reply.task.run_id, reply.task.task_id)
    return str(reply.token)


def _start_task(token: str, runtime_api_address: str, env: Mapping[str, str]
                ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", TASK_MODULE, "--runtime-api-address",
               runtime_api_address, "--parent-pid", str(os.getpid())]
    return subprocess.Popen(command, env={**env, TOKEN_VARIABLE: token})


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``--runtime-api-address ADDRESS -- SUPERNODE-COMMAND…``."""
    parser = argparse.ArgumentParser(description="Run a SuperNode whose ClientApp tasks "
                                                 "only pathloop's installed ClientApp answers.")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("supernode", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.supernode[1:] if args.supernode[:1] == ["--"] else args.supernode
    if not command:
        parser.error("no SuperNode command after --")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per poll
    sys.exit(run_site_node(command, args.runtime_api_address, os.environ))


if __name__ == "__main__":
    main()


__all__ = ["TASK_MODULE", "TOKEN_VARIABLE", "main", "run_site_node"]
