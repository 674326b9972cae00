"""The scorers in force on a server, as an automatic canary promotion waits for them."""

from __future__ import annotations

from runtime.evaluation.attachments import AttachmentBoard
from runtime.evaluation.sampling import Attachment


def test_the_board_names_its_static_scorers_and_those_attached_to_served_models() -> None:
    board = AttachmentBoard([Attachment(name="lowercase")])
    assert board.names() == {"lowercase"}
    board.update("m-1", [Attachment(name="helpful"), Attachment(name="lowercase"), Attachment("off", 0.0)])
    assert board.names() == {"lowercase", "helpful"}  # a scorer sampling nothing is not waited for
