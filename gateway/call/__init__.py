"""The call core, written once for every carrier: session, playout, ledger, recording, registry.

A carrier adapter feeds a :class:`~gateway.call.session.CallSession` and gives it its transport;
everything a call does between the carrier and the engine, and what it costs, lives here.
"""
