from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.console_clients import (
    ClientCounter, client_transitions,
)


def test_first_viewer_connects_and_last_viewer_disconnects():
    assert client_transitions({}, {"d1": 1}) == [("d1", "connect", 1)]
    assert client_transitions({"d1": 1}, {"d1": 2}) == []
    assert client_transitions({"d1": 2}, {"d1": 1}) == []
    assert client_transitions({"d1": 1}, {}) == [("d1", "disconnect", 0)]
    assert client_transitions({"a": 1, "b": 0}, {"b": 3}) == [("a", "disconnect", 0), ("b", "connect", 3)]


def test_counter_needs_a_handshake_before_a_disconnect_counts():
    counter = ClientCounter()
    assert counter.detach("d1", "127.0.0.1:5000") == []  # a scanner that never completed the handshake
    assert counter.attach("d1", "127.0.0.1:5001") == [("d1", "connect", 1)]
    assert counter.attach("d1", "127.0.0.1:5002") == []
    assert counter.attach("d1", "127.0.0.1:5002") == []  # the same client twice is one client
    assert counter.detach("d1", "127.0.0.1:5001") == []
    assert counter.count("d1") == 1
    assert counter.detach("d1", "127.0.0.1:5002") == [("d1", "disconnect", 0)]
    assert counter.count("d1") == 0


def test_forgetting_a_stopped_desktop_drops_its_clients_silently():
    counter = ClientCounter()
    counter.attach("d1", "c1")
    counter.forget("d1")
    assert counter.count("d1") == 0
    assert counter.detach("d1", "c1") == []
    assert counter.attach("d1", "c1") == [("d1", "connect", 1)]
