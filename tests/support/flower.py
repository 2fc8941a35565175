"""An in-process Flower Grid whose "sites" are Python functions (for the server's tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flwr.app import Message
from flwr.supercore.task_identity import TaskIdentity

Site = Callable[[Message], Message | None]


class FakeGrid:
    """Delivers each message to its node's site function; ``None`` means no reply."""

    def __init__(self, sites: dict[int, Site], run_id: int = 1) -> None:
        # Messages take their run id from the process's task identity, as in a ServerApp.
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = 0
        TaskIdentity.task_id = 1
        self.sites = sites
        self.sent: list[Message] = []

    def get_node_ids(self) -> Iterable[int]:
        return list(self.sites)

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: float | None = None) -> Iterable[Message]:
        replies = []
        for message in messages:
            message.metadata.__dict__["_message_id"] = message.object_id  # as Flower's grid
            self.sent.append(message)
            reply = self.sites[message.metadata.dst_node_id](message)
            if reply is not None:
                replies.append(reply)
        return replies
