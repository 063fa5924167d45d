"""Sans-IO codecs, bytes <-> events, no sockets: ``postfix_policy`` (the policy delegation protocol, compiled
by mypyc at install), ``smtp`` (reply lines, dot-stuffing), ``milter`` (the Sendmail/Postfix milter
protocol, version 6).

May import: ``core``, ``errors``.
"""
