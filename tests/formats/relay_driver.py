"""Drives a stream relay the way ``sse.pump`` does, synchronously: feed every upstream event, decide whenever
the relay holds complete tool calls, end. Shared by the three API test modules."""

from __future__ import annotations


def allow_all(pending):
    return [c.id for c in pending], None


def run_relay(relay, events, decide=allow_all):
    out = []
    for ev in events:
        out += relay.feed(ev)
        while relay.awaiting_decision:
            out += relay.decide(*decide(relay.pending))
    out += relay.end()
    while relay.awaiting_decision:
        out += relay.decide(*decide(relay.pending))
    return out
