"""What the lab DNS server (``dns_server.py`` on 127.0.0.1) serves: the look-alikes of army.mil.

army.ml     MX at a catch-all provider (two hosts)      -> accepts mail
arny.mil    MX at the same provider                     -> accepts mail, same provider group
army.il     A only                                      -> accepts mail (implicit MX)
army.mit    MX 0 .                                      -> null MX (RFC 7505)
armymil.com NS only                                     -> registered, no mail
army.ril    answered SERVFAIL (a broken zone)           -> unknown (lookup failed)
everything else                                         -> NXDOMAIN (unregistered)
"""

from __future__ import annotations

ZONES: dict[str, dict[str, list[str]]] = {
    "army.ml": {
        "NS": ["ns1.parking.example."],
        "MX": ["10 mx1.catchall.example.", "20 mx2.catchall.example."],
    },
    "arny.mil": {"NS": ["ns1.parking.example."], "MX": ["10 mx1.catchall.example."]},
    "army.il": {"NS": ["ns1.parking.example."], "A": ["192.0.2.7"]},
    "army.mit": {"NS": ["ns1.parking.example."], "MX": ["0 ."]},
    "armymil.com": {"NS": ["ns1.parking.example."]},
    "army.mil": {"NS": ["ns1.army.mil."], "MX": ["10 mx.army.mil."]},
}
FAILING = ("army.ril",)  # answered SERVFAIL at once: a failed look-up that costs no waiting
