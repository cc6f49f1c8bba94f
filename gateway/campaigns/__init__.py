"""Outbound call campaigns: dial contact lists through Twilio and hand the answers to bots.

Pure modules first, then the adapters:

- ``zones`` (phone numbers -> E.164 and time zones), ``windows`` (calling windows in the
  callee's local time), ``pacing`` (calls per second, calls at once), ``outcomes`` (call
  results and per-outcome retries), ``permit`` (the one "may we call now" check every new
  call passes): the scheduling core, with time passed in;
- ``spec`` (the campaign YAML), ``contacts`` (CSV and do-not-call lists, bad rows reported),
  ``answer`` (the TwiML a call runs), ``setup`` (create a campaign);
- ``store`` (SQLite or PostgreSQL: claims, leases, attempts, outcomes), ``carrier`` (the REST
  seam, Twilio behind it);
- ``dialler`` (the asyncio loop), ``preflight`` (does the gateway route the campaign's calls
  as its plan does), ``api`` (Twilio callbacks and the management API), ``progress``,
  ``export``, ``simulate`` (a whole campaign against the simulated phone network), ``cli``
  (``overtalk campaign ...``).

Modules are imported where used: ``overtalk`` imports only ``cli`` at start-up.
"""
