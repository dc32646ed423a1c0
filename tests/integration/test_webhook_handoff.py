"""The broker webhook's connect: the answer goes out first; the rulebook's playbook gets the event after the hand-off
delay, so its start does not compete with the desktop the user just got.

Here and not under tests/unit: ansible-test's unit tree does not carry extensions/, where the source lives."""

import asyncio
import pathlib
import runpy

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE = ROOT / "extensions" / "eda" / "plugins" / "event_source" / "broker_webhook.py"


class Waker:
    def __init__(self):
        self.woken = []

    def wake(self, user, desktop):
        self.woken.append((user, desktop))
        return {"desktop": desktop or "desk-" + user, "path": "saved", "seconds": 0.5}


def request(action):
    return {"user": "alice", "action": action, "desktop": "desk-alice", "broker": "test", "extra": {},
            "peer": "127.0.0.1"}


def exchange(handoff_delay, action="connect"):
    handler_cls = runpy.run_path(str(SOURCE))["_Handler"]

    async def scenario():
        queue = asyncio.Queue()
        handler = handler_cls(queue, Waker(), handoff_delay=handoff_delay)
        status, answer = await handler(request(action))
        queued_at_answer = queue.qsize()
        event = await asyncio.wait_for(queue.get(), 5)
        return status, answer, queued_at_answer, event

    return asyncio.run(scenario())


def test_a_woken_connect_is_answered_before_its_event_is_queued():
    status, answer, queued_at_answer, event = exchange(0.2)
    assert status == 200 and answer["path"] == "saved"
    assert queued_at_answer == 0  # the playbook had not been started when the broker got its answer
    session = event["shadowdesk_session"]
    assert session["action"] == "connect" and session["fast_path"]["path"] == "saved"


def test_without_a_delay_and_for_disconnects_the_event_is_queued_with_the_answer():
    assert exchange(0.0)[2] == 1
    status, _answer, queued_at_answer, event = exchange(0.2, action="disconnect")
    assert status == 202 and queued_at_answer == 1 and event["shadowdesk_session"]["action"] == "disconnect"
