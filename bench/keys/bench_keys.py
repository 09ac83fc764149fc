"""Benchmark: the key-reconcile plan of `_core` against a plain-Python reference.

Builds a registry and this master's keys with a realistic mix (most minions running, pinned
and accepted; some launching with pending keys; terminated instances with keys left behind;
ids the registry does not know; a few mismatched keys), plans them with
`phoenix_salt._core.plan_key_actions` and with the set-based reference below, which applies the
same rules, checks both plans are equal, and prints median times. Then times n = 1k, 10k, 100k
to show how the time grows. Prints numbers only: no timing assertion.

    .venv/bin/python bench/keys/bench_keys.py
"""

import base64
import hashlib
import random
import re
import statistics
import time
from collections import defaultdict

from phoenix_salt import _core

# --- the reference planner: the same rules as src/keys/plan.rs, in plain Python ------------

INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
LIVE = frozenset({"launching", "running"})
REGISTRY_ORDER = {"launching": 0, "running": 1, "terminating": 2, "terminated": 3}
KEY_ORDER = {"accepted": 0, "pending": 1, "rejected": 2, "denied": 3}
RANK = {"delete": 0, "reject": 1, "pin": 2, "accept": 3, "pre_seed": 4}
BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
ASCII_SPACE = " \t\n\r\x0b\x0c"
CONFLICT = object()


def pem_finger(pem):
    """Salt's fingerprint of a PEM public key, or None where Phoenix refuses the text."""
    if len(pem) > 64 * 1024:
        return None
    parts = pem.split("\n")
    lines = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    lines = [line for line in lines if line.strip(ASCII_SPACE)]
    if len(lines) < 3 or not well_formed(lines):
        return None
    digest = hashlib.sha256("".join(lines[1:-1]).replace("\r\n", "\n").encode()).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def well_formed(lines):
    """One PUBLIC KEY block: matching BEGIN and END lines around base64 lines."""
    begin, end = lines[0].strip(ASCII_SPACE), lines[-1].strip(ASCII_SPACE)
    label = begin.removeprefix("-----BEGIN ").removesuffix("-----")
    return (
        begin == f"-----BEGIN {label}-----"
        and end == f"-----END {label}-----"
        and "-" not in label
        and label.endswith("PUBLIC KEY")
        and all(set(line.strip(ASCII_SPACE)) <= BASE64 for line in lines[1:-1])
    )


def reference_plan(registry, local, unmanaged):
    unmanaged = set(unmanaged)
    known = {}
    for minion in registry:
        mid = minion["id"]
        if mid in unmanaged or not INSTANCE_ID.fullmatch(mid):
            continue
        pinned = minion.get("pinned")
        if mid not in known:
            known[mid] = [minion["state"], pinned]
            continue
        entry = known[mid]
        if REGISTRY_ORDER[minion["state"]] > REGISTRY_ORDER[entry[0]]:
            entry[0] = minion["state"]
        if pinned is None or entry[1] is CONFLICT:
            continue
        if entry[1] is None:
            entry[1] = pinned
        elif entry[1]["fingerprint"] == pinned["fingerprint"]:
            entry[1] = min(entry[1], pinned, key=lambda pin: pin["public_key"])
        else:
            entry[1] = CONFLICT

    keys = defaultdict(set)
    for key in local:
        if key["id"] in known:
            keys[key["id"]].add((key["state"], key["fingerprint"]))

    actions = []
    for mid, (state, pinned) in known.items():
        plan_minion(mid, state, pinned, keys.get(mid, set()), actions)
    actions.sort(key=order)
    return actions


def plan_minion(mid, state, pinned, keys, actions):
    if state not in LIVE:
        for key_state, finger in keys:
            actions.append(delete(mid, key_state, finger, "terminated"))
        return
    if pinned is CONFLICT:
        return
    accepted = {finger for key_state, finger in keys if key_state == "accepted"}
    pending = {finger for key_state, finger in keys if key_state == "pending"}
    expected = expected_fingerprint(mid, pinned, accepted, pending, actions)
    if expected is None:
        return

    good_accepted = expected in accepted
    for finger in pending:
        if finger == expected:
            actions.append({"action": "accept", "id": mid, "fingerprint": finger})
        elif good_accepted:
            actions.append(delete(mid, "pending", finger, "mismatch", expected))
        else:
            actions.append(
                {"action": "reject", "id": mid, "fingerprint": finger, "pinned": expected}
            )

    kept = good_accepted or any(s in ("pending", "rejected") for s, _ in keys)
    if pinned is not None and not kept and pem_finger(pinned["public_key"]) == expected:
        actions.append(
            {
                "action": "pre_seed",
                "id": mid,
                "fingerprint": expected,
                "public_key": pinned["public_key"],
            }
        )


def expected_fingerprint(mid, pinned, accepted, pending, actions):
    """The pin, else the one accepted key, else the one pending key (pinned now); or None."""
    if pinned is not None:
        expected = pinned["fingerprint"]
        for finger in accepted - {expected}:
            actions.append(delete(mid, "accepted", finger, "mismatch", expected))
        return expected
    candidates, state = (accepted, "accepted") if accepted else (pending, "pending")
    if len(candidates) != 1:
        return None
    expected = next(iter(candidates))
    actions.append({"action": "pin", "id": mid, "state": state, "fingerprint": expected})
    return expected


def delete(mid, state, finger, reason, pinned=None):
    action = {"action": "delete", "id": mid, "state": state, "fingerprint": finger}
    action["reason"] = reason
    if pinned is not None:
        action["pinned"] = pinned
    return action


def order(action):
    """The plan's order: id, the order to carry actions out, then the remaining fields."""
    kind = action["action"]
    state = KEY_ORDER[action["state"]] if "state" in action else -1
    reason = (0, "") if action.get("reason") != "mismatch" else (1, action["pinned"])
    last = action.get("pinned", "") if kind == "reject" else action.get("public_key", "")
    return (action["id"], RANK[kind], state, action["fingerprint"], reason, last)


# --- the data -------------------------------------------------------------------------------


def make_pem(rng):
    """A public key shaped like a 2048-bit RSA key in PEM (random body)."""
    body = base64.b64encode(rng.randbytes(294)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def fake_finger(rng):
    return ":".join(f"{b:02x}" for b in rng.randbytes(32))


def make_world(n, seed=20):
    """`n` registry minions and about `n` local keys, in a realistic mix."""
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    world = {"registry": [], "local": [], "unmanaged": ["salt-master-local", "bastion-01"]}
    for i in range(n):
        mid = f"i-{i:017x}" if i % 10 else f"i-{i % (16**8):08x}"
        roll = rng.random()
        if roll < 0.78:
            running_pinned(world, rng, mid)
        elif roll < 0.85:  # launching, first key pending (or not sent yet)
            world["registry"].append({"id": mid, "state": "launching", "pinned": None})
            if rng.random() < 0.9:
                add_key(world, mid, "pending", fake_finger(rng))
        elif roll < 0.86:  # accepted by hand, not pinned yet
            world["registry"].append({"id": mid, "state": "running", "pinned": None})
            add_key(world, mid, "accepted", fake_finger(rng))
        elif roll < 0.99:
            leaving(world, rng, mid, "terminated" if roll < 0.96 else "terminating")
        else:  # an instance the operator keeps out of Phoenix's hands
            world["registry"].append({"id": mid, "state": "running", "pinned": None})
            world["unmanaged"].append(mid)
            add_key(world, mid, "pending", fake_finger(rng))
    for j in range(n * 2 // 100):  # instances not registered yet
        add_key(world, f"i-{0xF000000 + j:017x}", "pending", fake_finger(rng))
    for j in range(n * 5 // 100):  # the operator's own minions
        add_key(world, f"web-{j:05d}", "accepted", fake_finger(rng))
    rng.shuffle(world["registry"])
    rng.shuffle(world["local"])
    return world["registry"], world["local"], world["unmanaged"]


def add_key(world, mid, state, finger):
    world["local"].append({"id": mid, "state": state, "fingerprint": finger})


def running_pinned(world, rng, mid):
    """Mostly accepted with the pinned key; some new here, pending, or mismatched."""
    pem = make_pem(rng)
    finger = pem_finger(pem)
    world["registry"].append(
        {"id": mid, "state": "running", "pinned": {"fingerprint": finger, "public_key": pem}}
    )
    sub = rng.random()
    if sub < 0.90:
        add_key(world, mid, "accepted", finger)
    elif sub < 0.93:  # new on this master: pre-seeded
        pass
    elif sub < 0.95:
        add_key(world, mid, "pending", finger)
    elif sub < 0.98:
        state = ("pending", "accepted", "rejected")[int((sub - 0.95) * 100)]
        add_key(world, mid, state, fake_finger(rng))
    else:
        add_key(world, mid, "accepted", finger)
        add_key(world, mid, "denied", fake_finger(rng))


def leaving(world, rng, mid, state):
    """A terminating or terminated instance, keys often left behind."""
    world["registry"].append({"id": mid, "state": state, "pinned": None})
    sub = rng.random()
    if state == "terminating" or sub < 0.5:
        add_key(world, mid, "accepted", fake_finger(rng))
    elif sub < 0.6:
        add_key(world, mid, rng.choice(["pending", "rejected", "denied"]), fake_finger(rng))


# --- timing ---------------------------------------------------------------------------------


def median_ms(runs, fn, *args):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    print("key-reconcile plan: _core.plan_key_actions vs the plain-Python reference")
    print(
        f"{'n':>7} {'local':>7} {'actions':>8} {'core ms':>9} {'ref ms':>9} {'ratio':>6} "
        f"{'core us/entry':>14} {'ref us/entry':>13}"
    )
    for n, runs in [(1_000, 21), (10_000, 11), (100_000, 5)]:
        world = make_world(n)
        registry, local, _ = world
        core = _core.plan_key_actions(*world, trust="first_key")
        reference = reference_plan(*world)
        if core != reference:
            pairs = zip(core, reference, strict=False)
            first = next(
                (i for i, (a, b) in enumerate(pairs) if a != b), min(len(core), len(reference))
            )
            raise SystemExit(
                f"plans differ at n={n} ({len(core)} vs {len(reference)} actions), "
                f"first at action {first}"
            )
        core_ms = median_ms(runs, lambda *w: _core.plan_key_actions(*w, trust="first_key"), *world)
        ref_ms = median_ms(runs, reference_plan, *world)
        entries = len(registry) + len(local)
        print(
            f"{n:>7} {len(local):>7} {len(core):>8} {core_ms:>9.2f} {ref_ms:>9.2f} "
            f"{ref_ms / core_ms:>5.1f}x {core_ms * 1000 / entries:>14.3f} "
            f"{ref_ms * 1000 / entries:>13.3f}"
        )
    counts = defaultdict(int)
    for action in core:
        counts[action["action"]] += 1
    print("actions at the largest n:", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
