"""Sans-IO codecs, bytes <-> events, no sockets: ``postfix_policy`` (the policy delegation protocol, compiled
by mypyc at install), ``smtp`` (reply lines, dot-stuffing).

May import: ``core``, ``errors``.
"""
