"""One ClientApp task of the site's SuperNode, answered by the installed pathloop ClientApp.

Flower's ``flwr-clientapp`` pulls a task from the SuperNode's Runtime API, unpacks the run's
app bundle, puts it on ``sys.path`` and imports whatever ClientApp the bundle names. This
process runs the same steps with Flower's own functions, but for that one: it checks the
bundle (:func:`~.bundle.check_bundle`) and answers with the installed
:data:`pathloop.client.federation.client_app.app`. A bundle that is not pathloop's gets an
error reply (:data:`BUNDLE_REFUSED`), so the run's ServerApp sees the refusal; nothing of
it is unpacked, written or imported.

Started by :mod:`~.site_node` once per task, as
``python -m pathloop.client.federation.clientapp_task --runtime-api-address HOST:PORT``
with the task's token in the environment (:data:`~.site_node.TOKEN_VARIABLE`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from flwr.app import Context, Error, Message
from flwr.common.constant import ErrorCode, SubStatus
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.exit import ExitCode, flwr_exit, register_signal_handlers
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
)
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.telemetry import EventType
from flwr.supernode.runtime.run_clientapp import (
    pull_task_input,
    push_message,
    push_task_output,
)

from pathloop.client.errors import ProtocolError
from pathloop.client.federation.bundle import check_bundle
from pathloop.client.federation.client_app import app
from pathloop.client.federation.site_node import TOKEN_VARIABLE

logger = logging.getLogger(__name__)

#: Error code of the reply to a run whose bundle is not pathloop's.
BUNDLE_REFUSED = 3002


def answer_task(message: Message, context: Context, content: bytes, digest: str
                ) -> tuple[Message, str]:
    """The reply to one message of a run whose bundle is ``content``; and the task's details.

    The installed pathloop ClientApp answers when the bundle is pathloop's; otherwise the
    reply is an error naming why the bundle was refused, and the details say so too.
    """
    try:
        check_bundle(content, digest)
    except ProtocolError as error:
        logger.error("run %s refused: %s (this site runs only pathloop's own ClientApp)",
                     message.metadata.run_id, error)
        reason = f"the site runs only pathloop's own ClientApp: {error}"
        return Message(Error(code=BUNDLE_REFUSED, reason=reason), reply_to=message), reason
    return app(message=message, context=context), ""


def run_task(runtime_api_address: str, token: str, parent_pid: int | None) -> None:
    """Pull the task the token names, answer it, push the reply; exit (Flower's codes)."""
    if parent_pid is not None:
        start_parent_process_monitor(parent_pid)
    retry_invoker = make_simple_http_retry_invoker()
    client = RuntimeHttpClient.from_server_address(
        server_address=runtime_api_address, insecure=True, root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                      RuntimeTokenHttpInterceptor(token)],
        retry_invoker=retry_invoker)
    heartbeat: HeartbeatSender | None = None
    context: Context | None = None
    outcome = {"status": SubStatus.FAILED, "details": "the task failed before it ran"}

    def on_exit() -> None:  # Flower's order: final status and context, then close
        retry_invoker.max_tries = 1
        push_task_output(client=client, context=context, sub_status=outcome["status"],
                         details=outcome["details"])
        if heartbeat is not None and heartbeat.is_running:
            heartbeat.stop()
        client.close()

    register_signal_handlers(event_type=EventType.FLWR_CLIENTAPP_RUN_LEAVE,
                             exit_message="Task stopped.", exit_handlers=[on_exit])
    exit_code = ExitCode.SUCCESS
    message: Message | None = None
    reply: Message | None = None
    try:
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        heartbeat.start()
        message, context, _, fab = pull_task_input(client)
        reply, details = answer_task(message, context, fab.content, fab.hash_str)
        outcome = {"status": SubStatus.FAILED if details else SubStatus.COMPLETED,
                   "details": details}
    except Exception:  # a bug or a lost SuperNode: its text stays in the site's log
        logger.exception("ClientApp task failed")
        exit_code = ExitCode.TASK_PROC_EXCEPTION
        if message is not None:
            reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION,
                                  reason="internal error at the site (see its log)"),
                            reply_to=message)
    if reply is not None and context is not None:
        try:
            push_message(client, reply, context)
        except Exception:
            logger.exception("pushing the reply to the SuperNode failed")
            exit_code = ExitCode.CLIENTAPP_COMMUNICATION_ERROR
    flwr_exit(code=exit_code, event_type=EventType.FLWR_CLIENTAPP_RUN_LEAVE)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``--runtime-api-address``, ``--parent-pid``; the token from the env."""
    parser = argparse.ArgumentParser(description="Answer one ClientApp task with pathloop's "
                                                 "installed ClientApp.")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_VARIABLE, "").strip()
    if not token:
        sys.exit(f"{TOKEN_VARIABLE}: no task token in the environment")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_task(args.runtime_api_address, token, args.parent_pid)


if __name__ == "__main__":
    main()


__all__ = ["BUNDLE_REFUSED", "answer_task", "main", "run_task"]
