"""Every ``phoenix/...`` event has one home, ``src/events.rs``: no other file of the runtime
spells one of its tags in code, so a tag or its fields cannot drift between the Rust core,
the Python side and the reactor wiring. Comments and docstrings name tags in backticks; a
string literal that starts one is what this test refuses. The tests themselves spell the
tags out on purpose: they hold the wire format to what operators' reactors match."""

from __future__ import annotations

import re
from pathlib import Path

from phoenix_salt import _core
from phoenix_salt.reactor import REACTIONS

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "src" / "events.rs"
# Where the runtime's code lives: the Rust core, the Python package (the Salt modules'
# folder links back to the repository's _engines, _runners, ... and is read there), and
# the reactor files.
SOURCES = [
    *(ROOT / "src").rglob("*.rs"),
    *(p for p in (ROOT / "python" / "phoenix_salt").rglob("*.py") if "salt_modules" not in p.parts),
    *(ROOT / "_engines").glob("*.py"),
    *(ROOT / "_runners").glob("*.py"),
    *(ROOT / "_beacons").glob("*.py"),
    *(ROOT / "_modules").glob("*.py"),
    *(ROOT / "reactor").glob("*.sls"),
]
# A string literal that begins an event tag, in Rust ("...", format!("...")) or Python.
TAG_LITERAL = re.compile(r"""["']phoenix/(instance|masters|message|key|highstate)/""")


def test_no_file_but_the_events_module_spells_an_event_tag() -> None:
    assert HOME.exists()
    assert TAG_LITERAL.search(HOME.read_text()), "the home itself must build the tags"
    checked = [p for p in SOURCES if p.resolve() != HOME]
    # The scan covers the places that fired events before they had one home.
    names = {p.relative_to(ROOT).as_posix() for p in checked}
    for expected in (
        "src/replacement/mod.rs",
        "src/highstate/mod.rs",
        "python/phoenix_salt/keys.py",
        "python/phoenix_salt/sns.py",
        "python/phoenix_salt/reactor.py",
        "_engines/instance_manager.py",
        "reactor/instance_terminated.sls",
    ):
        assert expected in names, expected
    spelled = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in checked
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if TAG_LITERAL.search(line)
    ]
    assert spelled == [], "event tags belong in src/events.rs:\n" + "\n".join(spelled)


def test_the_reactor_wiring_takes_the_termination_tags_from_the_core() -> None:
    assert (_core.INSTANCE_TERMINATED_TAGS, "instance_terminated.sls") in REACTIONS
    assert _core.INSTANCE_TERMINATED_TAGS.startswith(_core.INSTANCE_TAG_PREFIX)


def test_the_events_python_fires_are_built_by_the_core_with_their_fields() -> None:
    pinned = _core.key_pinned_by_operator_event("i-1", "minion", "ab:cd", "operator on i-m")
    assert pinned == {
        "tag": "phoenix/key/pinned",
        "data": {
            "id": "i-1",
            "role": "minion",
            "fingerprint": "ab:cd",
            "pinned_by": "operator on i-m",
            "trust": "operator",
        },
    }
    mismatch = _core.key_mismatch_event("i-1", "pending", "ab", "cd", "deleted", "i-m")
    assert mismatch["tag"] == "phoenix/key/mismatch"
    assert mismatch["data"] == {
        "id": "i-1",
        "key_state": "pending",
        "fingerprint": "ab",
        "pinned": "cd",
        "action": "deleted",
        "master": "i-m",
    }
    done = [{"id": f"i-{n}", "action": "pre_seed", "result": "done"} for n in range(3)]
    reconciled = _core.key_reconciled_event("i-m", done, {"pre_seed_done": 3})
    assert reconciled == {
        "tag": "phoenix/key/reconciled",
        "data": {"master": "i-m", "actions": done, "counts": {"pre_seed_done": 3}},
    }
    rejected = _core.push_rejected_event("m-1", "invalid", "bad signature")
    assert rejected == {
        "tag": "phoenix/message/rejected",
        "data": {
            "message_id": "m-1",
            "delivery": "sns_push",
            "reason": "invalid",
            "error": "bad signature",
        },
    }
