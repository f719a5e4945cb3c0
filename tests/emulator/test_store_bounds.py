from __future__ import annotations

from bridge.emulator.store import JOURNAL_SIZE, EmulatorStore


def test_journal_keeps_only_the_newest_entries():
    store = EmulatorStore()
    for index in range(JOURNAL_SIZE + 5):
        store.journal.append({"index": index})
    assert len(store.journal) == JOURNAL_SIZE
    assert store.journal[0]["index"] == 5
